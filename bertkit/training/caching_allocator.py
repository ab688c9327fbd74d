"""Install a caching CPU allocator for training (``caching_allocator.cpp``): pooled large blocks, no page faults.

The C++ file is compiled once per torch version with the system C++ compiler into the user's cache folder
(``$XDG_CACHE_HOME/bertkit``, written atomically) and loaded with ctypes; where there is no compiler, or on
another platform, :func:`install` returns False and training uses torch's default allocator.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

SOURCE = Path(__file__).with_suffix(".cpp")
_library: ctypes.CDLL | None = None


def cache_folder() -> Path:
    """Where compiled helpers live: ``$XDG_CACHE_HOME/bertkit`` (``~/.cache/bertkit``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "bertkit"


def _compile() -> Path:
    """Build the shared library (once per source and torch version) and return its path."""
    from torch.utils import cpp_extension

    key = hashlib.sha256(SOURCE.read_bytes() + torch.__version__.encode()).hexdigest()[:16]
    target = cache_folder() / f"caching_allocator-{key}.so"
    if target.exists():
        return target
    compiler = os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")
    if compiler is None:
        raise RuntimeError("no C++ compiler found (set CXX or install g++)")
    target.parent.mkdir(parents=True, exist_ok=True)
    torch_lib = cpp_extension.library_paths()[0]
    with tempfile.TemporaryDirectory(dir=target.parent) as folder:
        staged = Path(folder) / target.name
        command = [compiler, "-O2", "-std=c++17", "-shared", "-fPIC",
                   f"-D_GLIBCXX_USE_CXX11_ABI={int(torch._C._GLIBCXX_USE_CXX11_ABI)}",
                   *(f"-I{path}" for path in cpp_extension.include_paths()), str(SOURCE),
                   f"-L{torch_lib}", "-lc10", f"-Wl,-rpath,{torch_lib}", "-o", str(staged)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise RuntimeError(f"compiling {SOURCE.name} failed:\n{done.stderr[-2000:]}")
        os.replace(staged, target)  # atomic: a concurrent process sees the whole library or none
    return target


def _load() -> ctypes.CDLL:
    global _library
    if _library is None:
        library = ctypes.CDLL(str(_compile()))
        library.bertkit_pooled_bytes.restype = ctypes.c_size_t
        _library = library
    return _library


def install() -> bool:
    """Make the caching allocator torch's CPU allocator; False (and a warning) where it cannot be built."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        return bool(_load().bertkit_install())
    except (OSError, RuntimeError) as error:
        logger.warning("caching CPU allocator unavailable, using torch's default: %s", error)
        return False


def uninstall() -> None:
    """Give torch its previous CPU allocator back and free the pool (tensors allocated meanwhile stay valid)."""
    if _library is not None:
        _library.bertkit_uninstall()


def installed() -> bool:
    """Whether torch allocates CPU memory through the caching allocator right now."""
    return _library is not None and bool(_library.bertkit_installed())


def pooled_bytes() -> int:
    """Bytes the pool holds (in use or free); 0 when it was never installed."""
    return int(_library.bertkit_pooled_bytes()) if _library is not None else 0


def empty_cache() -> None:
    """Return the pool's free blocks to the system."""
    if _library is not None:
        _library.bertkit_empty_cache()
