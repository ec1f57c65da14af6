"""Cleora (Rychalska et al., ICONIP 2021): node embeddings by sparse random-walk propagation.

T0 ~ U(-1, 1) (a hash of seed, node and column: identical whatever the thread
count or the process that makes it), then T(i+1) = rownorm_L2(M · T(i)) with
M the random-walk transition matrix. No training, no whitening, no residuals:
the paper's algorithm. Cost O(|E|·d) per iteration; memory: M plus two (n, d)
float32 matrices.

    from sketchrec.graph import Graph, embed
    emb = embed(Graph.from_interactions(events), dim=256, iterations=4)
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np
import scipy.sparse as sp
from tqdm.auto import tqdm

from sketchrec._memory import release_free_memory
from sketchrec.base import Estimator
from sketchrec.data.embeddings import Embeddings
from sketchrec.graph import kernels
from sketchrec.graph.build import Graph

log = logging.getLogger(__name__)


def transition_matrix(adjacency: sp.spmatrix, propagation: str = "left") -> sp.csr_matrix:
    """Row-stochastic M = D⁻¹A ("left") or D^-½ A D^-½ ("symmetric"), float32 CSR.

    Edge weights matter: M_ab = w_ab / Σ_b w_ab. Rows of isolated nodes stay zero.
    """
    if propagation not in ("left", "symmetric"):
        raise ValueError(f"propagation must be 'left' or 'symmetric', got {propagation!r}")
    a = sp.csr_matrix(adjacency, dtype=np.float32)
    a.sum_duplicates()  # canonical: sorted indices, no duplicates
    deg = np.add.reduceat(a.data.astype(np.float64), a.indptr[:-1]) if a.nnz else np.zeros(a.shape[0])
    deg[np.diff(a.indptr) == 0] = 0.0  # reduceat repeats a value on empty rows
    inv = np.divide(1.0, deg, out=np.zeros_like(deg), where=deg > 0)
    row_scale = (inv if propagation == "left" else np.sqrt(inv)).astype(np.float32)
    data = a.data * np.repeat(row_scale, np.diff(a.indptr))
    if propagation == "symmetric":
        data *= row_scale[a.indices]
    # share the index arrays with the adjacency: only the values are new (memory)
    return sp.csr_matrix((data, a.indices, a.indptr), shape=a.shape)


def propagation_operator(adjacency: sp.spmatrix, propagation: str = "left",
                         self_loops: float = 0.0) -> sp.csr_matrix:
    """A matrix P with rownorm(P · T) = rownorm(M · T), cheapest to hold.

    For "left", M = D⁻¹A only rescales each row of A·T by a positive constant,
    which the L2 row normalisation removes: P = A itself (no copy when A is
    canonical float32 CSR), so M's values never need memory. Relative edge
    weights within a row still matter exactly as in M. For "symmetric",
    P = A D^-½ (the left D^-½ cancels the same way). self_loops > 0 adds that
    weight to every node's own edge first (a lazy walk: damps the odd/even
    oscillation of near-bipartite graphs).
    """
    a = sp.csr_matrix(adjacency, dtype=np.float32)
    if self_loops:
        a = (a + sp.identity(a.shape[0], dtype=np.float32, format="csr") * np.float32(self_loops)).tocsr()
    a.sum_duplicates()
    if propagation == "left":
        return a
    if propagation == "symmetric":
        deg = np.asarray(a.sum(axis=0)).ravel().astype(np.float64)
        half = np.divide(1.0, np.sqrt(deg), out=np.zeros_like(deg), where=deg > 0).astype(np.float32)
        return sp.csr_matrix((a.data * half[a.indices], a.indices, a.indptr), shape=a.shape)
    raise ValueError(f"propagation must be 'left' or 'symmetric', got {propagation!r}")


def initial_vectors(n: int, dim: int, seed: int, row_start: int = 0, col_start: int = 0) -> np.ndarray:
    """Rows row_start.. and columns col_start.. of T0 (see `kernels.init_uniform`)."""
    out = np.empty((n, dim), dtype=np.float32)
    kernels.init_uniform(out, row_start, col_start, seed)
    return out


class Cleora(Estimator):
    """Parameters
    ----------
    dim : embedding dimension d.
    iterations : propagation steps (the paper: 3-5 for co-occurrence, more for longer context).
    propagation : "left" (D⁻¹A, default) or "symmetric" (D^-½ A D^-½).
    seed : seed of T0.
    backend : "numba" (fused row kernel) or "torch" (torch.sparse.mm).
    self_loops : weight of an added self-loop on every node (0 = the paper's graph).
    keep_history : keep every T(i), needed by `update` (memory × iterations).
    callback : optional callable(iteration, T) after every iteration (T is a
        buffer reused two iterations later: copy it to keep it).
    progress : show a progress bar.

    Learned: `vectors_` (n_nodes, dim) float32 T(iterations); `embeddings_` (the non-transient
    nodes' rows with their ids); `graph_`, `operator_`, `history_` (every T(i) with
    keep_history, else None), `seconds_`. `save` / `load` keep all of them (the operator is
    rebuilt from the graph), without pickle.
    """

    _state = ("vectors_", "seconds_")
    _transient = ("callback", "progress")
    _param_choices = {"propagation": ("left", "symmetric"), "backend": ("numba", "torch")}
    _param_bounds = {"dim": (1, None), "iterations": (1, None), "self_loops": (0, None)}

    def __init__(self, dim: int = 256, iterations: int = 4, propagation: str = "left", seed: int = 0,
                 backend: str = "numba", self_loops: float = 0.0, keep_history: bool = False,
                 callback=None, progress: bool = True):
        self.dim = dim
        self.self_loops = self_loops
        self.iterations = iterations
        self.propagation = propagation
        self.seed = seed
        self.backend = backend
        self.keep_history = keep_history
        self.callback = callback
        self.progress = progress

    def _check(self) -> None:
        if int(self.dim) < 1 or int(self.iterations) < 1:
            raise ValueError(f"dim and iterations must be >= 1, got {self.dim}, {self.iterations}")
        if self.backend not in ("numba", "torch"):
            raise ValueError(f"backend must be 'numba' or 'torch', got {self.backend!r}")

    def fit(self, graph: Graph) -> "Cleora":
        """Embed every node; `embeddings_` holds the non-transient ones."""
        self._check()
        t0 = time.perf_counter()
        self.graph_ = graph
        self.operator_ = propagation_operator(graph.adjacency, self.propagation, self.self_loops)
        release_free_memory()  # before the two (n, d) matrices: the peak is theirs
        vectors = initial_vectors(graph.n_nodes, self.dim, self.seed)
        self.history_ = [vectors] if self.keep_history else None
        step = self._torch_step() if self.backend == "torch" else self._numba_step
        spare = None  # ping-pong buffer: no fresh (n, d) allocation (and page faults) per iteration
        for i in tqdm(range(self.iterations), desc="cleora", unit="iter", leave=False,
                      disable=not self.progress):
            vectors, spare = step(vectors, None if self.keep_history else spare), vectors
            if self.keep_history:
                self.history_.append(vectors)
            if self.callback is not None:
                self.callback(i + 1, vectors)
        self.vectors_ = vectors
        self.seconds_ = time.perf_counter() - t0
        self.embeddings_ = self._embeddings({"method": "cleora", **self._provenance_params(),
                                             "nodes": graph.n_nodes, "stored_edges": graph.n_edges,
                                             "seconds": self.seconds_})
        return self

    def _provenance_params(self) -> dict:
        # the settings that make the vectors (keep_history does not change them)
        return {k: v for k, v in self.saved_params().items() if k != "keep_history"}

    def _embeddings(self, provenance: dict) -> Embeddings:
        """The non-transient nodes' rows of `vectors_` with their ids."""
        nodes = self.graph_.embedded_nodes()
        vectors = self.vectors_ if len(nodes) == self.graph_.n_nodes else self.vectors_[nodes]
        return Embeddings(vectors, self.graph_.node_ids(nodes), provenance)

    # -- persistence (Estimator.save / load): the graph, the kept history, the provenance
    def _save_extra(self) -> dict[str, np.ndarray]:
        arrays = self.graph_.to_arrays()
        arrays["provenance"] = np.array(json.dumps(self.embeddings_.provenance, default=str))
        if self.history_ is not None:                # the last one is vectors_ itself
            arrays["history"] = np.stack(self.history_[:-1])
        return arrays

    def _load_extra(self, arrays) -> None:
        names = set(arrays.files if hasattr(arrays, "files") else arrays.keys())
        self.vectors_ = np.asarray(self.vectors_, dtype=np.float32)
        self.graph_ = Graph.from_arrays(arrays)
        self.operator_ = propagation_operator(self.graph_.adjacency, self.propagation, self.self_loops)
        self.history_ = [*arrays["history"], self.vectors_] if "history" in names else None
        self.embeddings_ = self._embeddings(json.loads(str(arrays["provenance"])))

    def _numba_step(self, vectors: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        m = self.operator_
        return kernels.propagate(m.indptr, m.indices, m.data, vectors, out=out)

    def _torch_step(self):
        import warnings

        import torch
        m = self.operator_
        with warnings.catch_warnings():  # "sparse CSR support is in beta"
            warnings.simplefilter("ignore", UserWarning)
            mt = torch.sparse_csr_tensor(torch.from_numpy(m.indptr.astype(np.int64)),
                                         torch.from_numpy(m.indices.astype(np.int64)),
                                         torch.from_numpy(m.data), size=m.shape,
                                         check_invariants=False)

        def step(vectors, out=None):
            out = torch.sparse.mm(mt, torch.from_numpy(vectors))
            return torch.nn.functional.normalize(out, dim=1).numpy()
        return step

    # -- inductive and incremental --------------------------------------------------
    def embed_new(self, neighbours, weights=None) -> np.ndarray:
        """Embed unseen nodes from their known neighbours: rownorm(Σ_j w_j · T[j]).

        neighbours: list of arrays of internal node ids (or a `Sessions`-like
        object with indptr/items). Uses T(iterations - 1) when the history is
        kept (exactly the last propagation step), else the final T.
        Returns (len(neighbours), dim) float32; a node with no known
        neighbour gets a zero row.
        """
        if hasattr(neighbours, "indptr"):
            indptr, idx = neighbours.indptr, neighbours.items.astype(np.int64)
        else:
            lengths = np.array([len(x) for x in neighbours], dtype=np.int64)
            indptr = np.r_[0, np.cumsum(lengths)]
            idx = np.concatenate([np.asarray(x, np.int64) for x in neighbours]) if len(lengths) else np.zeros(0, np.int64)
        if weights is None:
            w = np.ones(len(idx), np.float32)
        elif isinstance(weights, (list, tuple)):
            w = np.concatenate([np.asarray(x, np.float32) for x in weights]) if weights else np.zeros(0, np.float32)
        else:
            w = np.asarray(weights, np.float32)
        if len(w) != len(idx):
            raise ValueError(f"{len(w)} weights for {len(idx)} neighbours")
        if len(idx) and (idx.min() < 0 or idx.max() >= self.graph_.n_nodes):
            raise ValueError("neighbour ids must be internal node ids of the fitted graph")
        rows = np.repeat(np.arange(len(indptr) - 1), np.diff(indptr))
        sums = np.bincount(rows, weights=w, minlength=len(indptr) - 1)
        w = w / np.where(sums[rows] > 0, sums[rows], 1)  # a random-walk step from the new node
        mix = sp.csr_matrix((w.astype(np.float32), (rows, idx)),
                            shape=(len(indptr) - 1, self.graph_.n_nodes))
        base = self.history_[-2] if self.history_ else self.vectors_
        out = kernels.propagate(mix.indptr, mix.indices, mix.data, base)
        return out

    def update(self, graph: Graph) -> "Cleora":
        """Incremental re-embedding after edges arrive (and new nodes are appended).

        Only nodes within i hops of a changed row are recomputed at iteration i,
        from the kept history, so the result equals a full refit. Needs
        keep_history=True and a graph whose first n_old nodes are the old ones.
        """
        if not self.history_:
            raise RuntimeError("update needs a model fitted with keep_history=True")
        old_n = self.graph_.n_nodes
        n = graph.n_nodes
        if n < old_n:
            raise ValueError(f"the new graph has {n} nodes, fewer than the fitted {old_n}")
        m_new = propagation_operator(graph.adjacency, self.propagation, self.self_loops)
        m_old = self.operator_.copy()
        m_old.resize((n, n))
        changed_rows = np.flatnonzero(np.asarray(abs(m_new - m_old).sum(axis=1)).ravel() > 0)
        reach = sp.csr_matrix(graph.adjacency, dtype=bool)
        frontier = np.zeros(n, bool)
        frontier[changed_rows] = True
        history = [np.vstack([h, np.zeros((n - old_n, self.dim), np.float32)]) for h in self.history_]
        history[0][old_n:] = initial_vectors(n - old_n, self.dim, self.seed, row_start=old_n)
        for i in range(1, self.iterations + 1):
            rows = np.flatnonzero(frontier)
            sub = m_new[rows]
            out = kernels.propagate(sub.indptr, sub.indices, sub.data, history[i - 1])
            history[i][rows] = out
            # rows whose inputs changed this step are needed at the next one
            frontier = frontier | (np.asarray(reach @ frontier.astype(np.float32)).ravel() > 0)
        self.graph_, self.operator_, self.history_ = graph, m_new, history
        self.vectors_ = history[-1]
        nodes = graph.embedded_nodes()
        self.embeddings_ = Embeddings(self.vectors_[nodes], graph.node_ids(nodes),
                                      {**self.embeddings_.provenance, "updated_rows": int(frontier.sum())})
        return self


def embed(graph: Graph, dim: int = 256, iterations: int = 4, **kwargs) -> Embeddings:
    """One call for the common case: Cleora embeddings of a graph's non-transient nodes."""
    return Cleora(dim=dim, iterations=iterations, **kwargs).fit(graph).embeddings_
