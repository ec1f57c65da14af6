"""Rebuild re-packed dataset files byte for byte from their original sources.

When the datasets were staged, some files were not copied as is: pickles were
rewritten as gzipped text, text files were gzipped, Planetoid pickles became
CSV / npz / JSON. Their `FileSpec.recipe` names a converter here and the
original files it starts from (URLs at pinned commits, with sha256);
`sketchrec.data.download.fetch` downloads and checks those, runs the converter
into a temporary file and keeps the result only if its sha256 is the
registry's. So a converter must reproduce the staging's output exactly, down
to the gzip header; each one below says which bytes it fixes and why.

Every converter is ``fn(sources: list[Path], out: BinaryIO, *, name: str, **options)``:
`sources` are the verified original files in the recipe's order, `out` a
binary file opened for writing, `name` the base name of the file being built.

Pickles are read with `sketchrec.data.safe_pickle` (never `pickle.load`): the
session splits with no global allowed at all, the Planetoid ones with its
small numpy / scipy / defaultdict allowlist.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import shutil
import subprocess
from pathlib import Path
from typing import BinaryIO, Callable

from sketchrec.data import safe_pickle

__all__ = ["CONVERTERS", "get"]


# -- writing -----------------------------------------------------------------------

def _write_gzip(out: BinaryIO, name: str, text: str, *, sync_flush: bool = False) -> None:
    """Python's gzip at level 9 with mtime 0 and the member name `name` minus ".gz" (the staging's
    writer). `sync_flush` adds the Z_SYNC_FLUSH block pandas' text wrapper leaves before closing."""
    member = name[:-3] if name.endswith(".gz") else name
    with gzip.GzipFile(filename=member, mode="wb", compresslevel=9, fileobj=out, mtime=0) as gz:
        gz.write(text.encode())
        if sync_flush:
            gz.flush()


def gnu_gzip(sources: list[Path], out: BinaryIO, *, name: str, level: int = 6) -> None:
    """`gzip -n -<level> -c` of the one source: GNU gzip's deflate differs from zlib's, so the
    files the staging gzipped with the command line are rebuilt with the command line."""
    exe = shutil.which("gzip")
    if exe is None:
        raise RuntimeError(f"rebuilding {name} byte for byte needs the GNU `gzip` command "
                           f"(gzip -n -{level}), which is not on PATH: install gzip")
    out.flush()
    subprocess.run([exe, "-n", f"-{int(level)}", "-c", str(sources[0])], stdout=out, check=True)


def package_file(sources: list[Path], out: BinaryIO, *, name: str, package: str, path: str) -> None:
    """Copy `path` from the installed `package` (found without importing it)."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} is copied from the installed {package!r} package, which is not installed")
    src = Path(list(spec.submodule_search_locations)[0]) / path
    if not src.is_file():
        raise RuntimeError(f"{name}: {src} is not in the installed {package!r} package")
    with open(src, "rb") as fh:
        shutil.copyfileobj(fh, out)


# -- SR-GNN session pickles ----------------------------------------------------------

def _pickle(path: Path):
    with open(path, "rb") as fh:
        return safe_pickle.load(fh)


def _check_int_lists(obj, what: str) -> list[list[int]]:
    if not (isinstance(obj, list) and all(isinstance(s, list) and all(type(i) is int for i in s) for s in obj)):
        raise ValueError(f"{what}: expected a list of lists of ints")
    return obj


def _check_ints(obj, what: str) -> list[int]:
    if not (isinstance(obj, list) and all(type(i) is int for i in obj)):
        raise ValueError(f"{what}: expected a list of ints")
    return obj


def _test_split(path: Path):
    """SR-GNN test.txt -> (session_ids or None, prefixes, labels, times or None).

    Most sources pickle (prefixes, labels); CGENet's retailrocket pickles
    (session_ids, prefixes, labels, times)."""
    obj = _pickle(path)
    if isinstance(obj, tuple) and len(obj) == 2:
        ids, (prefixes, labels), times = None, obj, None
    elif isinstance(obj, tuple) and len(obj) == 4:
        ids, prefixes, labels, times = obj
        _check_ints(ids, f"{path.name} session ids")
        _check_ints(times, f"{path.name} times")
    else:
        raise ValueError(f"{path.name}: expected a tuple (prefixes, labels) or (session_ids, prefixes, "
                         f"labels, times), got {type(obj).__name__}")
    _check_int_lists(prefixes, f"{path.name} prefixes")
    _check_ints(labels, f"{path.name} labels")
    if not len(prefixes) == len(labels) == len(ids if ids is not None else labels):
        raise ValueError(f"{path.name}: the lists of the test split differ in length")
    return ids, prefixes, labels, times


def _items(items) -> str:
    return " ".join(map(str, items))


def sessions_train(sources: list[Path], out: BinaryIO, *, name: str) -> None:
    """all_train_seq.txt -> one session per line, item ids separated by spaces."""
    sessions = _check_int_lists(_pickle(sources[0]), sources[0].name)
    _write_gzip(out, name, "".join(_items(s) + "\n" for s in sessions))


def sessions_test_pairs(sources: list[Path], out: BinaryIO, *, name: str) -> None:
    """test.txt -> `prefix<TAB>label` lines in the source's order (retailrocket: with the
    session id and time, under a header)."""
    ids, prefixes, labels, times = _test_split(sources[0])
    if ids is None:
        text = "".join(f"{_items(p)}\t{label}\n" for p, label in zip(prefixes, labels))
    else:
        text = "session_id\tprefix\tlabel\ttime\n" + "".join(
            f"{s}\t{_items(p)}\t{label}\t{t}\n" for s, p, label, t in zip(ids, prefixes, labels, times))
    _write_gzip(out, name, text)


def sessions_test_sessions(sources: list[Path], out: BinaryIO, *, name: str) -> None:
    """test.txt -> whole test sessions, each its longest prefix + that prefix's label.

    SR-GNN lists a session's pairs longest prefix first, each next one the
    previous prefix without its last item; a pair that does not continue the
    previous one starts a new session. With session ids (retailrocket) the
    sessions are grouped by id instead, in order of first appearance.
    """
    ids, prefixes, labels, _ = _test_split(sources[0])
    if ids is None:
        lines = [_items(p + [label]) for i, (p, label) in enumerate(zip(prefixes, labels))
                 if not (i and p == prefixes[i - 1][:-1] and label == prefixes[i - 1][-1])]
        text = "".join(line + "\n" for line in lines)
    else:
        longest: dict[int, list[int]] = {}
        for s, p, label in zip(ids, prefixes, labels):
            if len(p) + 1 > len(longest.get(s, ())):
                longest[s] = p + [label]
        text = "session_id\titems\n" + "".join(f"{s}\t{_items(items)}\n" for s, items in longest.items())
    _write_gzip(out, name, text)


# -- Planetoid -------------------------------------------------------------------------

PLANETOID_PARTS = ("x", "y", "tx", "ty", "allx", "ally", "graph", "test.index")
PLANETOID_SPLIT_NOTE = ("Planetoid public split (Yang et al. 2016; Kipf & Welling 2017): train = first "
                        "len(y) nodes, val = next 500 nodes, test = ind.<name>.test.index")


def _planetoid(sources: list[Path]) -> dict:
    """The raw Planetoid files (in PLANETOID_PARTS order) -> dict of part -> object.

    Python-2 pickles of numpy arrays / scipy CSR matrices / defaultdict(list),
    read with the SCIENTIFIC allowlist; test.index is text (one node id a line).
    """
    if len(sources) != len(PLANETOID_PARTS):
        raise ValueError(f"Planetoid converters take the {len(PLANETOID_PARTS)} files {PLANETOID_PARTS}")
    parts = {}
    for part, path in zip(PLANETOID_PARTS, sources):
        if part == "test.index":
            parts[part] = [int(v) for v in path.read_text().split()]
            continue
        with open(path, "rb") as fh:
            parts[part] = safe_pickle.load(fh, allow=safe_pickle.SCIENTIFIC, encoding="latin1")
    return parts


def _planetoid_rows(p: dict):
    """Node id of each row of vstack(allx, tx): allx rows are nodes 0.., tx rows the test.index
    nodes in file order (Kipf & Welling's ordering)."""
    import numpy as np
    return np.r_[np.arange(p["ally"].shape[0]), np.asarray(p["test.index"], dtype=np.int64)]


def planetoid_edges(sources: list[Path], out: BinaryIO, *, name: str) -> None:
    """graph (dict of adjacency lists) -> `source,target`, each undirected edge once with
    source < target, sorted, self-loops dropped."""
    graph = _planetoid(sources)["graph"]
    edges = sorted({(min(s, d), max(s, d)) for s, nbrs in graph.items() for d in nbrs if s != d})
    out.write(("source,target\n" + "".join(f"{a},{b}\n" for a, b in edges)).encode())


def planetoid_labels(sources: list[Path], out: BinaryIO, *, name: str) -> None:
    """ally / ty one-hot rows -> `node,label` for every node of the graph; -1 where the row is
    all zeros or the node has no row (CiteSeer's isolated test-range nodes)."""
    import numpy as np
    p = _planetoid(sources)
    rows = _planetoid_rows(p)
    onehot = np.vstack([p["ally"], p["ty"]])
    has = onehot.sum(axis=1) > 0
    labels = np.full(len(p["graph"]), -1, dtype=np.int64)
    labels[rows[has]] = onehot[has].argmax(axis=1)
    out.write(("node,label\n" + "".join(f"{i},{label}\n" for i, label in enumerate(labels.tolist()))).encode())


def planetoid_features(sources: list[Path], out: BinaryIO, *, name: str) -> None:
    """allx / tx -> one float32 CSR row per node (zeros for nodes without a row), written by
    `scipy.sparse.save_npz(compressed=True)`. numpy writes the zip entries with the fixed
    1980-01-01 date, so the bytes depend only on the numpy / zlib versions."""
    import numpy as np
    import scipy.sparse as sp
    p = _planetoid(sources)
    rows = _planetoid_rows(p)
    clean = [sp.csr_matrix((m.data, m.indices, m.indptr), shape=m.shape) for m in (p["allx"], p["tx"])]
    stacked = sp.vstack(clean).tocsr()
    placement = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, np.arange(len(rows)))),
                              shape=(len(p["graph"]), len(rows)))
    features = (placement @ stacked).tocsr().astype(np.float32)
    features.sort_indices()
    buf = io.BytesIO()  # seekable: zipfile then writes no data descriptors
    sp.save_npz(buf, features, compressed=True)
    out.write(buf.getvalue())


def planetoid_split(sources: list[Path], out: BinaryIO, *, name: str) -> None:
    """The public split as JSON: train = first len(y) nodes, val = next 500, test = test.index."""
    p = _planetoid(sources)
    n_train = p["y"].shape[0]
    split = {"train": list(range(n_train)), "val": list(range(n_train, n_train + 500)),
             "test": p["test.index"], "note": PLANETOID_SPLIT_NOTE}
    out.write(json.dumps(split).encode())


# -- tables ------------------------------------------------------------------------------

def parquet_csv_gz(sources: list[Path], out: BinaryIO, *, name: str) -> None:
    """A Parquet table -> gzipped CSV as pandas' `to_csv(..., compression="gzip")` wrote it:
    header row, minimal quoting, empty field for null, "\\n" line ends, and the sync-flush block
    pandas' text wrapper adds before the gzip trailer."""
    import pyarrow.parquet as pq
    table = pq.read_table(sources[0])
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(table.column_names)
    writer.writerows(zip(*(column.to_pylist() for column in table.columns)))
    _write_gzip(out, name, buf.getvalue(), sync_flush=True)


CONVERTERS: dict[str, Callable] = {
    "gzip": gnu_gzip,
    "package-file": package_file,
    "sessions-train": sessions_train,
    "sessions-test-pairs": sessions_test_pairs,
    "sessions-test-sessions": sessions_test_sessions,
    "planetoid-edges": planetoid_edges,
    "planetoid-labels": planetoid_labels,
    "planetoid-features": planetoid_features,
    "planetoid-split": planetoid_split,
    "parquet-csv-gz": parquet_csv_gz,
}


def get(name: str) -> Callable:
    """The converter registered under `name`."""
    try:
        return CONVERTERS[name]
    except KeyError:
        raise ValueError(f"unknown converter {name!r}; known: {', '.join(sorted(CONVERTERS))}") from None
