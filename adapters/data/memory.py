"""Hand memory that data preparation has freed back to the operating system.

Rendering, splitting and tokenizing allocate and free hundreds of MB at 100,000 rows. The allocators keep
what was freed for reuse: pyarrow's pool (mimalloc) kept 275 MB and glibc's arenas 40 MB after the
data of a 100,000-row file was ready (a probe of ``RssAnon``; docs/performance.md). Model weights,
activations and optimizer state come from other allocators, so that memory would never be reused; it
would only add to the run's peak. Releasing it between the data stages and training costs a few milliseconds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

__all__ = ["release_freed_memory"]


@functools.cache
def _malloc_trim():
    """glibc's ``malloc_trim``, or None where the C library has none (macOS, musl, Windows)."""
    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None


def release_freed_memory() -> None:
    """Return the free pages of pyarrow's memory pool and of the C heap to the OS (live data is untouched)."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
