"""Cleora beyond one in-memory matrix: out-of-core blocks and Dask workers equal the local path."""

import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from sketchrec.graph import Cleora, Graph
from sketchrec.graph.outofcore import block_slices, embed_out_of_core

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def graph(n=4000, e=30000, seed=0):
    rng = np.random.default_rng(seed)
    return Graph.from_edges(rng.integers(0, n, e), rng.integers(0, n, e),
                            rng.random(e).astype(np.float32) + 0.5, n_nodes=n)


def test_block_slices():
    assert block_slices(10, 4) == [(0, 4), (4, 8), (8, 10)]
    with pytest.raises(ValueError):
        block_slices(10, 0)


@pytest.mark.parametrize("block_dims", [7, 16, 40])
def test_out_of_core_equals_in_memory(tmp_path, block_dims):
    g = graph()
    ref = Cleora(dim=40, iterations=3, progress=False).fit(g).vectors_
    emb = embed_out_of_core(g, 40, 3, tmp_path, block_dims=block_dims, chunk_bytes=10_000, progress=False)
    assert isinstance(emb.vectors, np.memmap)
    np.testing.assert_allclose(np.asarray(emb.vectors), ref, atol=1e-6)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["embeddings.npy"]  # block files cleaned up


@pytest.mark.slow
def test_out_of_core_runs_where_in_memory_cannot():
    """T is 195 MiB; the process may allocate only 120 MiB more (RLIMIT_DATA) after warm-up."""
    code = textwrap.dedent(f"""
        import resource, sys, tempfile, numpy as np
        sys.path.insert(0, {ROOT!r})
        from sketchrec.graph import Graph, Cleora
        from sketchrec.graph.outofcore import embed_out_of_core
        rng = np.random.default_rng(0); n = 200_000
        g = Graph.from_edges(rng.integers(0, n, 400_000), rng.integers(0, n, 400_000), n_nodes=n)
        tiny = Graph.from_edges([0, 1], [1, 2])
        Cleora(dim=4, iterations=1, progress=False).fit(tiny)
        embed_out_of_core(tiny, 4, 1, tempfile.mkdtemp(), progress=False)
        data = int(open("/proc/self/status").read().split("VmData:")[1].split()[0]) * 1024
        limit = data + 120 * 2**20
        resource.setrlimit(resource.RLIMIT_DATA, (limit, limit))
        try:
            if sys.argv[1] == "memory":
                Cleora(dim=256, iterations=2, progress=False).fit(g)
            else:
                emb = embed_out_of_core(g, 256, 2, tempfile.mkdtemp(), block_dims=16, progress=False)
                assert abs(float(np.linalg.norm(emb.vectors[-3:], axis=1).mean()) - 1) < 1e-5
            print("OK")
        except MemoryError:
            print("MemoryError")
    """)
    outs = {mode: subprocess.run([sys.executable, "-c", code, mode], capture_output=True, text=True,
                                 timeout=300).stdout.strip().splitlines()[-1]
            for mode in ("memory", "out-of-core")}
    assert outs == {"memory": "MemoryError", "out-of-core": "OK"}


@pytest.mark.slow
def test_dask_local_cluster_equals_local_path():
    distributed = pytest.importorskip("dask.distributed")
    from sketchrec.graph.distributed import embed_distributed
    g = graph(3000, 20000)
    ref = Cleora(dim=48, iterations=3, progress=False).fit(g).vectors_
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        emb = embed_distributed(g, client, dim=48, iterations=3, timeout=120)
        assert emb.provenance["workers"] == 2 and emb.provenance["block_dims"] == 24
        np.testing.assert_allclose(emb.vectors, ref, atol=1e-6)
        uneven = embed_distributed(g, client, dim=48, iterations=3, block_dims=20, timeout=120)
        np.testing.assert_allclose(uneven.vectors, ref, atol=1e-6)
