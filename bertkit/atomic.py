"""Atomic file writes: a temp file in the target's folder, then a rename, so no reader sees half a file."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def current_umask() -> int:
    """The process's umask, read without changing it where the system allows (Linux), else set and restored."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def write_atomic(path: str | os.PathLike, write: Callable[[str], None]) -> Path:
    """Call ``write(temp_path)`` and rename the result over ``path``; on any failure the temp file goes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        # mkstemp's file is private (0600); the output gets what open() would give it: 0666 less the umask
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_bytes(data))


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write UTF-8 ``text`` (with "\\n" line ends) to ``path`` atomically."""
    return write_atomic(path, lambda tmp: Path(tmp).write_text(text, encoding="utf-8", newline="\n"))


def claim_output_folder(folder: str | os.PathLike, overwrite: bool, produced: tuple[str, ...]) -> Path:
    """Refuse a folder that already holds any of the files a command writes (``produced``) unless ``overwrite``,
    which removes them first: the rule of the training commands' ``output_dir``, for every command with an output
    folder (other files in it are left alone)."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise ValueError(f"{folder} is a file, not a folder: give a folder for the output")
    earlier = [name for name in produced if (folder / name).exists()]
    if earlier and not overwrite:
        raise ValueError(f"{folder} already holds {', '.join(earlier)}: replace them with --overwrite, or choose "
                         "another output folder")
    for name in earlier:
        target = folder / name
        shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()
    return folder
