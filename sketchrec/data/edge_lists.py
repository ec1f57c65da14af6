"""Your own graph files for the graph commands: edge lists and node labels, with raw node names.

Every file is anything `read_columns` reads (CSV/TSV, optionally gzipped, Parquet, JSON); node
names may be strings or integers. Names are mapped to 0-based node ids in order of first
appearance: the training edges first, then nodes seen only in the other files, so a test edge or
a labelled node that the training graph never saw still has a row (an isolated node: Cleora gives
it a random vector, which is the honest score for a node the graph knows nothing about).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from sketchrec.data.idmap import IdMap
from sketchrec.data.readers import read_columns


@dataclass
class EdgeSplit:
    """Training and test edges over one node numbering.

    train, test : (E, 2) int64 node ids; test may be empty (labels-only use).
    nodes : the IdMap from raw names to ids (`nodes.to_external(ids)` maps back).
    labels : per node, the label id, -1 where a node has no label (None without label files).
    label_names : the raw label values, indexed by label id.
    """

    train: np.ndarray
    test: np.ndarray
    nodes: IdMap
    labels: np.ndarray | None = None
    label_names: list | None = None

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)


def _names(path, columns: list[str]) -> list[pa.Array]:
    table = read_columns(str(path), columns=columns)
    if table.num_rows == 0:
        raise ValueError(f"{path}: no rows (columns {', '.join(map(repr, columns))})")
    out = []
    for name in columns:
        col = table.column(name).combine_chunks()
        if col.null_count:
            row = int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
            raise ValueError(f"{path}: column {name!r} is empty in data row {row + 1}")
        out.append(col)
    return out


def _common_type(arrays: list[pa.Array]) -> list[pa.Array]:
    # ids read as integers in one file and as text in another (e.g. '007'): compare them as text
    if len({a.type for a in arrays}) > 1:
        return [a.cast(pa.string()) for a in arrays]
    return arrays


def read_edge_split(train: str | Path, test: str | Path | None = None, *, source: str = "source",
                    target: str = "target") -> EdgeSplit:
    """Training (and held-out test) edges from files with a `source` and a `target` column."""
    arrays = _names(train, [source, target])
    if test is not None:
        arrays += _names(test, [source, target])
    arrays = _common_type(arrays)
    nodes, ids = IdMap.factorize(pa.concat_arrays(arrays), name="node")
    sizes = np.cumsum([0] + [len(a) for a in arrays])
    cols = [ids[sizes[i]:sizes[i + 1]].astype(np.int64) for i in range(len(arrays))]
    train_edges = np.stack(cols[:2], axis=1)
    test_edges = np.stack(cols[2:4], axis=1) if test is not None else np.zeros((0, 2), np.int64)
    return EdgeSplit(train_edges, test_edges, nodes)


def read_labelled_graph(edges: str | Path, train: str | Path, test: str | Path, *, source: str = "source",
                        target: str = "target", node: str = "node", label: str = "label"
                        ) -> tuple[EdgeSplit, np.ndarray, np.ndarray]:
    """A graph and node labels for node classification: (graph with `labels`, train node ids, test node ids).

    train, test : files with a `node` and a `label` column (one label per node; a node listed in
    both files is an error, since the test would then score nodes the classifier trained on).
    """
    edge_cols = _names(edges, [source, target])
    train_cols, test_cols = _names(train, [node, label]), _names(test, [node, label])
    names = _common_type([*edge_cols, train_cols[0], test_cols[0]])
    nodes, ids = IdMap.factorize(pa.concat_arrays(names), name="node")
    sizes = np.cumsum([0] + [len(a) for a in names])
    part = [ids[sizes[i]:sizes[i + 1]].astype(np.int64) for i in range(len(names))]
    train_idx, test_idx = part[2], part[3]
    for path, idx in ((train, train_idx), (test, test_idx)):
        if len(np.unique(idx)) != len(idx):
            raise ValueError(f"{path}: a node is listed twice (one label per node)")
    overlap = np.intersect1d(train_idx, test_idx)
    if len(overlap):
        raise ValueError(f"{len(overlap):,} node(s) are in both {train} and {test}, e.g. "
                         f"{nodes.to_external(overlap[:1])[0]!r}")
    label_values = _common_type([train_cols[1], test_cols[1]])
    label_map, label_ids = IdMap.factorize(pa.concat_arrays(label_values), name="label")
    labels = np.full(len(nodes), -1, np.int64)
    labels[np.r_[train_idx, test_idx]] = label_ids
    graph = EdgeSplit(np.stack(part[:2], axis=1), np.zeros((0, 2), np.int64), nodes, labels,
                      label_map.to_external(np.arange(len(label_map))))
    return graph, train_idx, test_idx
