"""Lock files (lottery_mia.locks and the GPU slot locks of lottery_mia.devices): a lock that
is a symbolic link, a hard link, a folder or a file of someone else is refused and left
untouched; an output lock leaves nothing behind; a lock folder reached through an unsafe
parent is refused."""

from __future__ import annotations

import pytest


def test_a_lock_that_is_a_symlink_is_refused_and_its_target_untouched(tmp_path):
    from lottery_mia.locks import LockFileError, output_lock

    victim = tmp_path / "precious.txt"
    victim.write_text("precious\n")
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / ".lock").symlink_to(victim)
    with pytest.raises(LockFileError, match=f"{folder / '.lock'}.*symbolic link"):
        with output_lock(folder):
            pass
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("kind", ["hard link", "directory", "foreign file"])
def test_a_lock_that_is_not_a_lock_of_ours_is_refused_untouched(tmp_path, kind):
    import os

    from lottery_mia.locks import LockFileError, output_lock

    folder = tmp_path / "model"
    folder.mkdir()
    lock = folder / ".lock"
    victim = tmp_path / "precious.txt"
    victim.write_text("precious\n")
    if kind == "hard link":
        os.link(victim, lock)
        words = "hard links"
    elif kind == "directory":
        lock.mkdir()
        words = "not a regular file"
    else:
        lock.write_text("precious\n")
        victim = lock
        words = "other than a lock line"
    with pytest.raises(LockFileError, match=words):
        with output_lock(folder):
            pass
    assert victim.read_text() == "precious\n" if kind != "directory" else lock.is_dir()


def test_an_output_lock_leaves_no_file_behind_and_a_stale_one_is_reused(tmp_path):
    from lottery_mia.locks import output_lock

    folder = tmp_path / "model"
    folder.mkdir()
    (folder / ".lock").write_text("pid 999999 on elsewhere\n")  # left by a killed job
    with output_lock(folder) as lock:
        assert lock.read_text().startswith("pid ")
    assert not (folder / ".lock").exists()


def test_a_hard_linked_gpu_lock_is_refused_not_truncated(tmp_path):
    import os

    from lottery_mia.devices import claim_device
    from lottery_mia.locks import LockFileError

    locks = tmp_path / "locks"
    locks.mkdir(mode=0o700)
    victim = tmp_path / "precious.txt"
    victim.write_text("precious\n")
    os.link(victim, locks / "gpu-0.lock")
    with pytest.raises(LockFileError, match="gpu-0.lock.*hard links"):
        claim_device("cuda", visible_count=1, lock_dir=locks, log=lambda m: None)
    assert victim.read_text() == "precious\n"


@pytest.mark.parametrize("parent", ["symlink", "world-writable"])
def test_a_gpu_lock_dir_reached_through_an_unsafe_parent_is_refused(tmp_path, parent):
    import os

    from lottery_mia.devices import claim_device

    real = tmp_path / "real"
    real.mkdir()
    if parent == "symlink":
        (tmp_path / "link").symlink_to(real)
        locks = tmp_path / "link" / "locks"
        words = "symbolic link"
    else:
        os.chmod(real, 0o777)
        locks = real / "locks"
        words = "anyone can write"
    with pytest.raises(PermissionError, match=words):
        claim_device("cuda", visible_count=1, lock_dir=locks, log=lambda m: None)
    assert not (real / "locks").exists()
