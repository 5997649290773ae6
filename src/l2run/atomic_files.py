"""Files replaced only once their new content is complete (a crash leaves the old file whole)."""

from __future__ import annotations

import errno
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

# What a file created here gets, less the umask, as with any `open` (mkstemp's would be
# private, 0600): a grader serves recordings and other users read checkpoints.
FILE_MODE = 0o666


@contextmanager
def replacing(path: str | os.PathLike[str]) -> Iterator[Path]:
    """A fresh temporary path beside `path` to write the new content to; when the block ends
    without an error it is flushed to disk and renamed over `path` (`os.replace`, atomic on
    one file system), otherwise removed. Concurrent writers each get their own temporary file;
    the last to finish wins."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same directory (a rename is atomic only within a file system); the suffix kept, as
    # numpy's savez appends ".npz" to a path without it.
    tmp = path.parent / f".{path.stem}-{secrets.token_hex(8)}.part{path.suffix}"
    os.close(os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
    try:
        yield tmp
        with tmp.open("rb+") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes) -> None:
    """Write `data` at `path`, replacing any file there only once complete."""
    with replacing(path) as tmp:
        tmp.write_bytes(data)


def check_writable(path: str | os.PathLike[str]) -> Path:
    """`path` as a Path, once a file can be created beside it (its folder is made if missing):
    ValueError naming the problem otherwise, so a long run fails before it starts rather than
    when it writes its result."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder")
    probe = path.parent / f".{path.stem}-{secrets.token_hex(8)}.probe"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(probe, os.O_CREAT | os.O_EXCL | os.O_WRONLY, FILE_MODE))
        probe.unlink()
    except OSError as exc:
        raise ValueError(f"cannot write {path}: {exc.strerror or exc}") from None
    return path


def not_a_folder(path: str | os.PathLike[str]) -> Path:
    """`path` as a Path; IsADirectoryError when it names a folder, so that an output file is
    refused before the work that would fill it rather than when it is renamed into place."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(path))
    return path
