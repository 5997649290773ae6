"""`l2run.atomic_files`: a file is replaced only by complete new content."""

from __future__ import annotations

import os

import numpy as np
import pytest

from l2run.atomic_files import replacing, write_bytes_atomically


def test_new_content_replaces_the_file_and_leaves_no_temporary(tmp_path) -> None:
    path = tmp_path / "deep" / "er" / "file.bin"  # folders made as needed
    write_bytes_atomically(path, b"first")
    write_bytes_atomically(path, b"second")
    assert path.read_bytes() == b"second"
    assert sorted(p.name for p in path.parent.iterdir()) == ["file.bin"]


def test_an_error_while_writing_keeps_the_old_file(tmp_path) -> None:
    path = tmp_path / "weights.npz"
    write_bytes_atomically(path, b"old")
    with pytest.raises(RuntimeError, match="killed"), replacing(path) as tmp:
        tmp.write_bytes(b"half of the new")
        raise RuntimeError("killed mid-write")
    assert path.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["weights.npz"]


def test_writers_get_their_own_temporary_files_and_numpy_keeps_the_name(tmp_path) -> None:
    path = tmp_path / "rec.npz"
    with replacing(path) as first, replacing(path) as second:
        assert first != second and first.parent == second.parent == tmp_path
        assert first.suffix == ".npz"  # np.savez appends .npz to a path without it
        np.savez(first, x=np.arange(3))
        np.savez(second, x=np.arange(4))
    with np.load(path) as data:  # the last writer to finish wins
        np.testing.assert_array_equal(data["x"], np.arange(3))
    assert [p.name for p in tmp_path.iterdir()] == ["rec.npz"]


def test_files_are_readable_as_any_file_the_umask_allows(tmp_path) -> None:
    old = os.umask(0o022)
    try:
        write_bytes_atomically(tmp_path / "shared", b"x")
    finally:
        os.umask(old)
    assert (tmp_path / "shared").stat().st_mode & 0o777 == 0o644
