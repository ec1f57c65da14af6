"""Cleora on a Dask cluster: embedding dimensions split across workers.

Each worker holds the propagation matrix (sent once from the client) and
some column blocks of T, pinned to it. One iteration is: every block
computes M·T_b and its squared row norms (on its worker); the client sums the
norms of all blocks (n float64 per block, in a fixed block order) and sends
the sum back; every block divides by its root. Only the norms travel per
iteration; T never leaves the workers until the end. T0 blocks are made on
the workers from the same hash as the local path, so the result equals
`Cleora.fit` to float rounding.

    from dask.distributed import Client
    client = Client("tcp://scheduler:8786")      # or LocalCluster() on one machine
    emb = embed_distributed(graph, client, dim=1024, iterations=4, block_dims=128)
"""

from __future__ import annotations

import time

import numba
import numpy as np

from sketchrec._optional import require
from sketchrec.data.embeddings import Embeddings
from sketchrec.graph import kernels
from sketchrec.graph.build import Graph
from sketchrec.graph.cleora import propagation_operator
from sketchrec.graph.outofcore import block_slices


def _task_threads(threads: int) -> None:
    # A worker runs its own tasks in parallel; numba threads on top would
    # oversubscribe the cores (and OpenMP spin-waiting starves the event loop).
    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


def _init_block(n: int, c0: int, c1: int, seed: int, threads: int) -> np.ndarray:
    _task_threads(threads)
    block = np.empty((n, c1 - c0), dtype=np.float32)
    kernels.init_uniform(block, 0, c0, seed)
    return block


def _propagate_block(m, dense: np.ndarray, threads: int) -> tuple[np.ndarray, np.ndarray]:
    _task_threads(threads)
    out = np.empty_like(dense)
    sq = np.zeros(dense.shape[0], dtype=np.float64)
    kernels.spmm_rows(kernels.row_chunks(m.indptr), m.indptr, m.indices, m.data, dense, out, sq)
    return out, sq


def _first(pair):
    return pair[0]


def _second(pair):
    return pair[1]


def _sum_norms(*parts: np.ndarray) -> np.ndarray:
    total = np.zeros_like(parts[0])
    for p in parts:  # fixed order: deterministic
        total += p
    return total


def _scale(block: np.ndarray, sq: np.ndarray, threads: int) -> np.ndarray:
    _task_threads(threads)
    kernels.scale_rows(block, sq)
    return block


def embed_distributed(graph: Graph, client, dim: int = 256, iterations: int = 4, *,
                      block_dims: int | None = None, seed: int = 0,
                      propagation: str = "left", threads_per_task: int = 1,
                      timeout: float | None = None) -> Embeddings:
    """Cleora with T's column blocks spread over the workers of a dask.distributed Client.

    block_dims: width of a block (default: dim split evenly over the workers).
    threads_per_task: numba threads inside one task (workers already run tasks in parallel).
    timeout: seconds to wait for the result before raising TimeoutError.
    """
    wait = require("dask.distributed", "distributed Cleora").wait
    t0 = time.perf_counter()
    workers = sorted(client.scheduler_info()["workers"])
    n_workers = max(len(workers), 1)
    block_dims = block_dims or -(-dim // n_workers)
    blocks = block_slices(dim, block_dims)
    m = propagation_operator(graph.adjacency, propagation)
    n = graph.n_nodes
    # Every block is pinned to one worker, and the graph is sent to each worker
    # from the client: no worker-to-worker transfers (measured here: broadcast
    # scatters and peer fetches could stall under full CPU load).
    home = [workers[b % n_workers] for b in range(len(blocks))]
    # hash=False: a fresh key per call. With content-hashed keys, a second call on the same graph
    # reuses the key the first call's futures are releasing, and the scheduler drops the data
    # under it ('computation on lost data').
    m_on = {w: client.scatter(m, workers=[w], hash=False) for w in set(home)}
    submit = lambda fn, b, *args: client.submit(fn, *args, workers=[home[b]], pure=False)  # noqa: E731
    t_blocks = [submit(_init_block, b, n, c0, c1, seed, threads_per_task) for b, (c0, c1) in enumerate(blocks)]
    for _ in range(iterations):
        pairs = [submit(_propagate_block, b, m_on[home[b]], t, threads_per_task) for b, t in enumerate(t_blocks)]
        outs = [submit(_first, b, p) for b, p in enumerate(pairs)]
        # the reduction of row norms happens on the client, in block order
        norms = _sum_norms(*client.gather([submit(_second, b, p) for b, p in enumerate(pairs)]))
        norms_on = {w: client.scatter(norms, workers=[w], hash=False) for w in set(home)}
        t_blocks = [submit(_scale, b, o, norms_on[home[b]], threads_per_task) for b, o in enumerate(outs)]
    wait(t_blocks, timeout=timeout)
    nodes = graph.embedded_nodes()
    vectors = np.hstack(client.gather(t_blocks))
    if len(nodes) != n:
        vectors = vectors[nodes]
    return Embeddings(vectors, graph.node_ids(nodes),
                      {"method": "cleora", "mode": "dask", "dim": dim, "iterations": iterations,
                       "propagation": propagation, "seed": seed, "block_dims": block_dims,
                       "workers": n_workers, "nodes": n, "stored_edges": graph.n_edges,
                       "seconds": time.perf_counter() - t0})
