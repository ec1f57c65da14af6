"""Give freed heap memory back to the operating system.

glibc keeps freed blocks of large temporary arrays (id factorisation, edge
concatenation, COO -> CSR) in its arenas, so a process's resident size stays
at its load-time peak. Calling malloc_trim after such a phase returns them;
it is a no-op where glibc is not the allocator.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc


def release_free_memory() -> None:
    gc.collect()
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to do
        pass
