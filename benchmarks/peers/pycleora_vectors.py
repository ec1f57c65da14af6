"""pycleora 3.2.1's side of benchmarks/cleora_quality.py, run with pycleora's own virtualenv
(`/work/peers/cleora/bin/python`). Rows of every output are in our node order; a node without
edges gets a zero row, as ours does.

    python pycleora_vectors.py embed EDGES.npy N DIM IT1,IT2,... OUT   # OUT_<it>.npy per iteration count
    python pycleora_vectors.py t0 EDGES.npy N DIM OUT.npy              # initialize_deterministically(DIM, 0)
    python pycleora_vectors.py init N_ROWS DIM OUT.npy                 # T0 of a path graph, for its statistics
"""

import sys

import numpy as np
from pycleora import SparseMatrix, embed


def graph_of(edges_file: str) -> SparseMatrix:
    edges = np.load(edges_file)
    return SparseMatrix.from_iterator(iter([f"n{a}\tn{b}" for a, b in edges]), "a b")


def in_our_order(graph: SparseMatrix, vectors: np.ndarray, n: int) -> np.ndarray:
    index = {e: i for i, e in enumerate(graph.entity_ids)}
    order = np.array([index.get(f"n{i}", -1) for i in range(n)])        # -1: node without edges
    out = np.zeros((n, vectors.shape[1]), dtype=np.float32)
    out[order >= 0] = vectors[order[order >= 0]]
    return out


mode = sys.argv[1]
if mode == "embed":
    edges_file, n, dim, iterations, out = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
    graph = graph_of(edges_file)
    for it in (int(x) for x in iterations.split(",")):
        np.save(f"{out}_{it}.npy", in_our_order(graph, embed(graph, feature_dim=dim, num_iterations=it,
                                                              whiten=False), n))
elif mode == "t0":
    edges_file, n, dim, out = sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5]
    graph = graph_of(edges_file)
    np.save(out, in_our_order(graph, graph.initialize_deterministically(dim, 0), n))
elif mode == "init":
    lines = [f"n{i}\tn{i + 1}" for i in range(int(sys.argv[2]))]
    np.save(sys.argv[4], SparseMatrix.from_iterator(iter(lines), "a b").initialize_deterministically(int(sys.argv[3]), 0))
else:
    raise SystemExit(f"unknown mode {mode!r}: embed, t0 or init")
