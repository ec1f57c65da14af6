"""`write_profiles`: EMDE profiles of every row of a log read in buffers, written to Parquet, equal
to `EMDE.profile` of the rows in memory."""

import numpy as np
import pyarrow.parquet as pq
import scipy.sparse as sp

from sketchrec.data.sessions import Sessions
from sketchrec.data.stream import SessionStream, write_session_log
from sketchrec.eval.profiles import write_profiles
from sketchrec.models.emde import EMDE


def test_profiles_of_a_stream_equal_the_in_memory_profiles(tmp_path):
    rng = np.random.default_rng(0)
    rows = Sessions.from_lists([list(rng.integers(0, 40, rng.integers(2, 9))) for _ in range(250)], 40)
    write_session_log(rows, tmp_path / "log", sessions_per_group=30)
    model = EMDE(inputs=("all:cleora:1", "last:cleora:0"), outputs=("cleora:1",), n_sketches=3, n_bits=4,
                 hidden=16, epochs=0, progress=False, threads=1).fit(rows)
    stats = write_profiles(model, SessionStream(tmp_path / "log", buffer_events=200, n_items=40),
                           tmp_path / "profiles.parquet", batch_rows=20)
    table = pq.read_table(tmp_path / "profiles.parquet")
    assert pq.ParquetFile(tmp_path / "profiles.parquet").metadata.num_row_groups == 13    # 250 rows, 20 a group
    assert stats["rows"] == len(rows) and table.column("row_id").to_pylist() == list(range(len(rows)))
    indices, values = table.column("indices").combine_chunks(), table.column("values").combine_chunks()
    got = sp.csr_matrix((values.flatten().to_numpy(), indices.flatten().to_numpy(), indices.offsets.to_numpy()),
                        shape=(len(rows), model.n_inputs_))
    expected = model.profile(rows)
    assert stats["nonzeros"] == expected.nnz
    np.testing.assert_allclose(got.toarray(), expected.toarray(), rtol=1e-6)
