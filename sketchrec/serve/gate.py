"""The gate: how many heavy requests are in flight, and how many compute; memory given back.

Heavy endpoints (everything that touches the model or the vectors) share one admission control
(`_Gate`): at most `max_heavy_inflight` such requests are read and parsed at once (503 beyond,
before reading the body), at most `model_slots` compute at once (torch / numba models are called
one batch at a time; the wait is bounded by `queue_timeout_s`, 503), and a request answers 504
after `request_timeout_s`. The work runs on the gate's own thread, JSON encoding included, so
/health and /metrics stay responsive on the event loop. glibc is asked to hand freed memory
back after a large request, at most every `TRIM_EVERY_S` while busy.
"""

from __future__ import annotations

import asyncio
import ctypes
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor

from sketchrec.serve.limits import reject


@functools.cache
def _libc():
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def _release_memory() -> None:
    """Give freed heap pages back to the OS after a large request (glibc keeps them otherwise, and
    RSS stays at its peak)."""
    trim = getattr(_libc(), "malloc_trim", None)
    if trim is not None:
        trim(0)


def _use_threads(threads: int | None) -> None:
    """Compute threads for torch (process-wide) and numba (per calling thread: the model threads)."""
    if threads:
        import numba
        import torch
        torch.set_num_threads(threads)
        numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))


TRIM_EVERY_S = 5.0


class _Gate:
    def __init__(self, lim: dict, threads: int | None = None):
        self.max_inflight, self.slots = lim["max_heavy_inflight"], lim["model_slots"]
        self.queue_timeout, self.timeout = lim["queue_timeout_s"], lim["request_timeout_s"]
        self.inflight = 0
        self.trim_pending, self.last_trim = False, 0.0
        self.executor = ThreadPoolExecutor(self.slots, thread_name_prefix="sketchrec-model",
                                           initializer=_use_threads, initargs=(threads,))
        self._free = None
        self._lock = threading.Lock()

    def enter(self) -> bool:
        with self._lock:
            if self.inflight >= self.max_inflight:
                return False
            self.inflight += 1
            return True

    def leave(self) -> None:
        with self._lock:
            self.inflight -= 1
            idle = self.inflight == 0 and self.trim_pending
        if idle:                                   # a trim put off while busy: now, on the model thread
            self.executor.submit(self._trim, True)

    def done_large(self, large: bool) -> None:
        """After a model call, on the model thread: give freed heap pages back to the OS after a large
        request, but at most once per `TRIM_EVERY_S` while busy (after a trim the next request faults
        its buffers in again: +23 ms on 1,000 EMDE sessions); one put off is done when the service
        goes idle (`leave`), so RSS still comes back down after a burst."""
        self.trim_pending |= large
        if self.trim_pending and time.monotonic() - self.last_trim >= TRIM_EVERY_S:
            self._trim()

    def _trim(self, only_pending: bool = False) -> None:
        if only_pending and not self.trim_pending:
            return
        self.trim_pending, self.last_trim = False, time.monotonic()
        import sketchrec.serve as package           # looked up there at call time: the name to replace
        package._release_memory()

    def _done(self, future) -> None:
        self._free.release()
        if not future.cancelled():
            future.exception()                     # retrieved: a request that timed out logs no warning

    async def run(self, fn):
        """fn() on the model thread, after waiting for a slot; its result (or exception)."""
        if self._free is None:
            self._free = asyncio.Semaphore(self.slots)
        t0 = time.perf_counter()
        try:
            await asyncio.wait_for(self._free.acquire(), self.queue_timeout)
        except TimeoutError:
            raise reject(503, f"no model slot free within {self.queue_timeout:g} s: retry later", "busy", (),
                         {"retry-after": "1"}) from None
        future = asyncio.get_running_loop().run_in_executor(self.executor, fn)
        future.add_done_callback(self._done)                              # when the work ends, not the wait
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(self.timeout - (time.perf_counter() - t0), 0))
        except TimeoutError:
            raise reject(504, f"the request took over {self.timeout:g} s", "timeout", ()) from None
