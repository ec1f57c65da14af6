"""Cleora for graphs whose embedding matrix does not fit in memory.

T is kept on disk in column blocks (one raw float32 file of shape (n, b) per
block of b dimensions). An iteration reads one block at a time, propagates it
with the transition matrix (which stays in memory: O(|E|)), accumulates the
squared row norms over blocks in float64, writes the block back, and a second
pass divides every block by the row norms. Memory: M + two (n, b) blocks + n
float64 norms, whatever d is. The result is assembled row-chunk by row-chunk
into one .npy file and returned memory-mapped.

The same block step is what `sketchrec.graph.distributed` runs on Dask workers.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from sketchrec.data.embeddings import Embeddings
from sketchrec.graph import kernels
from sketchrec.graph.build import Graph
from sketchrec.graph.cleora import propagation_operator


def block_slices(dim: int, block_dims: int) -> list[tuple[int, int]]:
    """Column ranges [start, stop) of width block_dims covering 0..dim."""
    if block_dims < 1:
        raise ValueError(f"block_dims must be >= 1, got {block_dims}")
    return [(s, min(s + block_dims, dim)) for s in range(0, dim, block_dims)]


def embed_out_of_core(graph: Graph, dim: int, iterations: int, workdir: str | Path, *,
                      block_dims: int = 32, seed: int = 0, propagation: str = "left",
                      chunk_bytes: int = 32 * 2**20, progress: bool = True) -> Embeddings:
    """Cleora with T on disk; returns Embeddings whose vectors are a read-only memmap.

    Equal to the in-memory `Cleora` to float rounding (norms are summed over
    blocks instead of over one row). chunk_bytes bounds the row chunks used
    to make T0 and to assemble the result.
    """
    t0 = time.perf_counter()
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    m = propagation_operator(graph.adjacency, propagation)
    n = graph.n_nodes
    blocks = block_slices(dim, block_dims)
    row_chunk = max(1, chunk_bytes // (4 * dim))
    path = lambda parity, b: workdir / f"t{parity}_block{b}.f32"  # noqa: E731
    for b, (c0, c1) in enumerate(blocks):
        _init_block_file(path(0, b), n, c0, c1, seed, row_chunk)
    bar = tqdm(total=iterations * len(blocks), desc="cleora (out of core)", unit="block",
               leave=False, disable=not progress)
    for it in range(iterations):
        src, dst = it % 2, (it + 1) % 2
        sq = np.zeros(n, dtype=np.float64)
        for b, (c0, c1) in enumerate(blocks):
            dense = np.fromfile(path(src, b), dtype=np.float32).reshape(n, c1 - c0)
            out = np.empty_like(dense)
            kernels.spmm_rows(kernels.row_chunks(m.indptr), m.indptr, m.indices, m.data, dense, out, sq)
            del dense
            out.tofile(path(dst, b))
            del out
            bar.update()
        for b, (c0, c1) in enumerate(blocks):
            out = np.fromfile(path(dst, b), dtype=np.float32).reshape(n, c1 - c0)
            kernels.scale_rows(out, sq)
            out.tofile(path(dst, b))
            del out
    bar.close()
    final = iterations % 2
    nodes = graph.embedded_nodes()
    out_path = workdir / "embeddings.npy"
    _assemble(out_path, [path(final, b) for b in range(len(blocks))], blocks, n, dim, nodes, row_chunk)
    for parity in (0, 1):
        for b in range(len(blocks)):
            path(parity, b).unlink(missing_ok=True)
    vectors = np.load(out_path, mmap_mode="r")
    return Embeddings(vectors, graph.node_ids(nodes),
                      {"method": "cleora", "mode": "out-of-core", "dim": dim, "iterations": iterations,
                       "propagation": propagation, "seed": seed, "block_dims": block_dims,
                       "nodes": n, "stored_edges": graph.n_edges,
                       "seconds": time.perf_counter() - t0})


def _init_block_file(path: Path, n: int, c0: int, c1: int, seed: int, row_chunk: int) -> None:
    with open(path, "wb") as fh:
        for r0 in range(0, n, row_chunk):
            r1 = min(r0 + row_chunk, n)
            block = np.empty((r1 - r0, c1 - c0), dtype=np.float32)
            kernels.init_uniform(block, r0, c0, seed)
            fh.write(block.tobytes())


def _assemble(out_path: Path, block_files, blocks, n, dim, nodes, row_chunk) -> None:
    """Write rows `nodes` of the column blocks as one (len(nodes), dim) .npy, a row chunk at a time."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False,
              "shape": (len(nodes), dim)}
    handles = [open(f, "rb") for f in block_files]
    try:
        with open(out_path, "wb") as out:
            np.lib.format.write_array_header_1_0(out, header)
            for start in range(0, len(nodes), row_chunk):
                rows = nodes[start:start + row_chunk]
                lo, hi = int(rows[0]), int(rows[-1]) + 1
                chunk = np.empty((len(rows), dim), dtype=np.float32)
                for fh, (c0, c1) in zip(handles, blocks):
                    width = c1 - c0
                    fh.seek(lo * width * 4)
                    part = np.frombuffer(fh.read((hi - lo) * width * 4), dtype=np.float32)
                    chunk[:, c0:c1] = part.reshape(hi - lo, width)[rows - lo]
                out.write(chunk.tobytes())
    finally:
        for fh in handles:
            fh.close()
