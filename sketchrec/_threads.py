"""Compute threads for one call: numba's and the BLAS library's, restored afterwards.

Estimators take ``threads`` (None = all cores) and run their kernels inside
``with compute_threads(self.threads):``. Nothing is changed for the rest of the process:
numba's count is per calling thread and is put back, and BLAS is limited through
threadpoolctl only inside the block. Results never depend on the count.

This module sits at the bottom of the package: it imports nothing from sketchrec.
"""

from __future__ import annotations

import contextlib
import numbers


def check_threads(threads, name: str = "threads") -> None:
    """Refuse a thread count that is not None or a positive integer."""
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, numbers.Integral)
                                or threads < 1):
        raise ValueError(f"{name} must be a positive integer or None (all cores), got {threads!r}")


@contextlib.contextmanager
def compute_threads(threads: int | None):
    """numba threads = `threads` (None: numba's maximum, NUMBA_NUM_THREADS, normally every
    core) and, when given, BLAS threads = `threads`, for the duration of the block."""
    import numba

    check_threads(threads)
    most = numba.config.NUMBA_NUM_THREADS
    before = numba.get_num_threads()
    numba.set_num_threads(most if threads is None else min(int(threads), most))
    try:
        if threads is None:
            yield
        else:
            from threadpoolctl import threadpool_limits
            with threadpool_limits(limits=int(threads), user_api="blas"):
                yield
    finally:
        numba.set_num_threads(before)
