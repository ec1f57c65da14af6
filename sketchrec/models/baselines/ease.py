"""EASE (Steck, WWW 2019): closed-form linear item-item autoencoder for top-k."""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from sketchrec._threads import check_threads
from sketchrec.data.sessions import Sessions
from sketchrec.models.base import Recommender, input_matrix


class EASE(Recommender):
    """B = I - P · diag(1 / diag(P)),  P = (XᵀX + λI)⁻¹,  scores = X B.

    Dense in the number of items: the solve holds one n_items² matrix of `dtype` (8·n² bytes
    in float64, 4·n² in float32; Gowalla's 41k items: 6.7 GB in float32), worked on in place,
    and the weights are kept in float32. Before it allocates, `fit` compares that need with
    the memory the system has available and refuses with a MemoryError naming both.

    Parameters
    ----------
    lam : L2 regularisation λ (tune on validation; hundreds for MovieLens).
    max_items : refuse catalogues larger than this rather than exhaust memory.
    dtype : precision of the solve, "float64" (default) or "float32" (half the memory; weights
        agree with float64 to ~1e-5 relative on the catalogues tried).
    threads : torch threads of the solve in `fit` (None: torch's setting, normally every core).
    """

    _state = ("weights_",)
    _param_choices = {"dtype": ("float64", "float32")}
    _param_bounds = {"lam": (0, None), "max_items": (1, None), "threads": (1, None)}

    def __init__(self, lam: float = 500.0, max_items: int = 30_000, dtype: str = "float64",
                 threads: int | None = None):
        self.lam = lam
        self.max_items = max_items
        self.dtype = dtype
        self.threads = threads

    def fit(self, train: Sessions) -> "EASE":
        if self.dtype not in ("float64", "float32"):
            raise ValueError(f"dtype must be 'float64' or 'float32', got {self.dtype!r}")
        n = train.n_items
        if n > self.max_items:
            raise ValueError(f"EASE needs an {n}x{n} dense matrix; n_items={n} exceeds "
                             f"max_items={self.max_items}")
        dtype = np.dtype(self.dtype)
        x = train.to_csr(binary=True)
        co = (x.T @ x).tocsr()
        _check_memory(n, dtype, extra_bytes=co.data.nbytes + co.indices.nbytes + co.indptr.nbytes)
        # Fortran order: torch's LAPACK (column-major) then works on it in place; a C-ordered
        # matrix would be copied (a second n_items² matrix: 6.7 GB more on Gowalla)
        gram = co.astype(dtype).toarray(order="F")
        del co
        gram[np.diag_indices(n)] += self.lam
        p = torch.from_numpy(gram)         # the same memory, column-major strides
        with _torch_threads(self.threads):
            # gram is symmetric positive definite: Cholesky inverse costs half of LU's. torch's
            # LAPACK (MKL in the x86 wheels), not scipy's bundled OpenBLAS, whose multithreaded
            # spotrf segfaults on Gowalla's 41k x 41k (OpenBLAS issues #352, #2821)
            try:
                torch.linalg.cholesky(p, out=p)
            except torch.linalg.LinAlgError as err:
                raise np.linalg.LinAlgError(f"XᵀX + λI is not positive definite: {err}") from None
            torch.cholesky_inverse(p, out=p)   # both triangles of P = (XᵀX + λI)⁻¹
        del p
        # P is Fortran-ordered and symmetric: its transpose is the same matrix, C-ordered (the
        # layout sparse @ dense products need), without a copy
        b = gram.T
        diag = np.diag(b).copy()
        b /= -diag[None, :]
        b[np.diag_indices(n)] = 0.0
        self.weights_ = b.astype(np.float32, copy=False)
        self.n_items_ = n
        return self

    def score(self, histories: Sessions) -> np.ndarray:
        self._check_histories(histories)
        return np.asarray(input_matrix(histories, self.n_items_) @ self.weights_, dtype=np.float32)


@contextlib.contextmanager
def _torch_threads(threads: int | None):
    """torch's intra-op threads = `threads` for the block (None: unchanged), then restored."""
    check_threads(threads)
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(int(threads))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def available_memory_bytes() -> int | None:
    """MemAvailable of /proc/meminfo (Linux), or None where it cannot be read."""
    try:
        with open("/proc/meminfo") as fh:
            for line in fh:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # pragma: no cover
        pass
    return None


def _check_memory(n: int, dtype: np.dtype, extra_bytes: int = 0) -> None:
    # the n x n solve in place, plus the float32 weights when the solve is float64 (the cast
    # copies), plus the sparse co-occurrence it is built from and a margin for temporaries
    need = n * n * dtype.itemsize + (n * n * 4 if dtype != np.float32 else 0) + extra_bytes
    need = int(need * 1.05) + (256 << 20)
    have = available_memory_bytes()
    if have is not None and need > have:
        raise MemoryError(f"EASE on {n:,} items in {dtype.name} needs about {need / 2**30:.1f} GB "
                          f"but only {have / 2**30:.1f} GB is available"
                          + ("; dtype='float32' halves the need" if dtype != np.float32 else ""))
