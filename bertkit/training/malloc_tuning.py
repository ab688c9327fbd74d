"""glibc's malloc, tuned for training with ``mallopt`` (through ctypes: no compiler, no restart).

Why: a training step frees and allocates the same large activation sizes over and over. Left alone, glibc
serves blocks above its (dynamic) mmap threshold from fresh pages that fault in anew on every step, and gives freed
heap tops back to the system only to fault them in again. A fixed mmap threshold of 32 MiB (glibc's maximum) keeps
the activations in the heap, where freed blocks are reused; a high trim threshold and a top pad keep that memory
mapped between steps; two arenas bound what threads spread over. ``bench/allocator.py`` compares this with
glibc's defaults, the same settings as ``MALLOC_*`` environment variables, jemalloc and tcmalloc.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

logger = logging.getLogger(__name__)

MIB = 1 << 20
# mallopt parameter numbers from glibc's <malloc.h>
M_TRIM_THRESHOLD, M_TOP_PAD, M_MMAP_THRESHOLD, M_ARENA_MAX = -1, -2, -3, -8
SETTINGS = {M_MMAP_THRESHOLD: 32 * MIB, M_TRIM_THRESHOLD: 1024 * MIB, M_TOP_PAD: 64 * MIB, M_ARENA_MAX: 2}


def tune() -> bool:
    """Apply :data:`SETTINGS` to this process's malloc; False where the C library has no ``mallopt`` (not glibc)."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    failed = [number for number, value in SETTINGS.items() if mallopt(number, value) != 1]
    if failed:
        logger.warning("mallopt refused parameter(s) %s; malloc keeps its defaults for them", failed)
    return not failed
