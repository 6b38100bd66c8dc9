"""The feature file keeps every committed row: a full disk, a failed write or a kill at any
step of a commit leaves a file that opens, and a rerun stores each picture exactly once."""
import errno
import inspect
import os
import shutil
import stat
import subprocess
import sys
from types import SimpleNamespace

import h5py
import numpy as np
import pytest

import featlab as fl
from featlab import cli, store

META = {"model": "m", "layers": "head,block4", "pool": "avg", "dtype": "float32", "preprocess": "p"}
BATCHES = [[f"b{b}/p{i}.jpg" for i in range(4)] for b in range(5)]


def features(paths):
    """Distinct, checkable rows: row of path p is derived from p."""
    seeds = [sum(p.encode()) * 31 + len(p) for p in paths]
    return {"head": np.stack([np.random.default_rng(s).random(1280, np.float32) for s in seeds]),
            "block4": np.stack([np.random.default_rng(s + 1).random(80, np.float32) for s in seeds])}


def write(path, batches, **kw):
    """What a (re)run does: store the pictures of ``batches`` the file does not hold yet."""
    with store.FeatureWriter(path, META, {"device": "cpu"}, commit_every=0, **kw) as w:
        for paths in batches:
            todo = [p for p in paths if p not in w.stored]
            if todo:
                w.add(todo, features(todo))
        if "bad.jpg" not in w.skipped:
            w.skip({"bad.jpg": "not a picture"})


def assert_rows_match(path, expected):
    paths, feats = store.load_features(path)
    assert paths == expected
    for name, v in features(expected).items() if expected else ():
        np.testing.assert_array_equal(feats[name], v)


class Fail:
    """Makes the ``k``-th call to the store's disk operations raise (ENOSPC or EIO)."""

    def __init__(self, monkeypatch, k, code):
        self.calls, self.k, self.code, self.failed = 0, k, code, None
        for name in ("write", "pwrite", "fsync", "ftruncate", "unlink"):
            monkeypatch.setattr(store._disk, name, self.wrap(name, getattr(store._disk, name)))

    def wrap(self, name, real):
        def call(*a):
            self.calls += 1
            if self.calls == self.k:
                self.failed = name
                raise OSError(self.code, os.strerror(self.code))
            return real(*a)
        return call


def count_calls(tmp_path, monkeypatch):
    """Disk operations of the commit that adds the third batch (after two committed ones)."""
    out = tmp_path / "count.h5"
    write(out, BATCHES[:2])
    with monkeypatch.context() as m:
        probe = Fail(m, 0, errno.EIO)
        write(out, BATCHES[2:3])
    return probe.calls


def test_a_failed_write_at_each_step_of_a_commit_loses_nothing_committed(tmp_path, monkeypatch):
    steps = count_calls(tmp_path, monkeypatch)
    assert steps >= 6  # journal write, fsync; file writes, truncation, fsync; journal deleted
    seen = set()
    for k in range(1, steps + 1):
        out = tmp_path / f"f{k}.h5"
        write(out, BATCHES[:2])
        before = BATCHES[0] + BATCHES[1]
        code = (errno.ENOSPC, errno.EIO)[k % 2]
        with monkeypatch.context() as m:
            fault = Fail(m, k, code)
            with pytest.raises(store.StorageError) as e:
                write(out, BATCHES[2:3])
        seen.add(fault.failed)
        message = str(e.value)
        assert "\n" not in message and str(out) in message and "rows committed before are kept" in message
        assert ("disk is full" in message) == (code == errno.ENOSPC)
        # all or nothing: the third batch is in the file entirely (its commit's journal was
        # complete: the reader redoes it) or not at all
        paths = store.load_features(out)[0]
        expected = before + BATCHES[2] if len(paths) > len(before) else before
        assert_rows_match(out, expected)
        with store.open_features(out) as ff:  # the lazy reader agrees
            assert ff.count == len(expected)
        write(out, BATCHES)  # the rerun, with room again
        assert not store.journal_path(out).exists()
        assert_rows_match(out, [p for b in BATCHES for p in b])
        assert store.load_skipped(out) == {"bad.jpg": "not a picture"}
        with h5py.File(out, "r") as f:  # plain HDF5 again, read by any tool
            assert f.attrs["count"] == 20
    assert {"write", "pwrite", "fsync", "unlink"} <= seen  # journal written, synced; file written, synced; journal gone


KILLER = """
import importlib.util, os, signal, sys
import numpy as np
spec = importlib.util.spec_from_file_location("store", {store!r})  # without torch: starts fast
store = importlib.util.module_from_spec(spec)
spec.loader.exec_module(store)
META, BATCHES = {meta!r}, {batches!r}
{helpers}
calls = 0
def wrap(real):
    def call(*a):
        global calls
        calls += 1
        if calls == {k}:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*a)
    return call
for name in ("write", "pwrite", "fsync", "ftruncate", "unlink"):
    setattr(store._disk, name, wrap(getattr(store._disk, name)))
write({out!r}, BATCHES[2:3])
"""


def test_a_kill_at_each_step_of_a_commit_loses_nothing_committed(tmp_path, monkeypatch):
    steps = count_calls(tmp_path, monkeypatch)
    helpers = inspect.getsource(features) + "\n" + inspect.getsource(write)
    for k in range(1, steps + 1):
        out = tmp_path / f"k{k}.h5"
        write(out, BATCHES[:2])
        code = KILLER.format(store=store.__file__, meta=META, batches=BATCHES, helpers=helpers, k=k, out=str(out))
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert run.returncode == -9, run.stderr
        before = BATCHES[0] + BATCHES[1]
        paths = store.load_features(out)[0]
        assert_rows_match(out, before + BATCHES[2] if len(paths) > len(before) else before)
        write(out, BATCHES)
        assert_rows_match(out, [p for b in BATCHES for p in b])


@pytest.fixture
def tiny_disk(tmp_path):
    """A 4 MB tmpfs (needs root: mount); removed afterwards."""
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        pytest.skip("a real full disk needs a tmpfs, and mounting one needs root (Linux)")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)], capture_output=True).returncode:
        pytest.skip("mount -t tmpfs refused (a container without CAP_SYS_ADMIN)")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


@pytest.mark.parametrize("checked", [True, False], ids=["free-space-checked", "write-fails"])
def test_a_full_disk_stops_the_run_with_one_line_and_the_rerun_completes(tiny_disk, tmp_path, capsys,
                                                                          monkeypatch, checked, lite0):
    """8 pictures stored; then the disk fills up (a ballast file) and 16 more come: one line,
    exit 2, the 8 rows readable; with the ballast gone, the same command completes. Either the
    writer sees the disk is too full before a commit, or (free space misreported) the kernel's
    ENOSPC arrives in the middle of writing the journal."""
    folder = tmp_path / "pics"
    folder.mkdir()
    names = ["chelsea", "coffee", "rocket", "astronaut", "china", "flower", "brick", "camera"]

    def pictures(numbers):
        for i in numbers:
            fl.load_image(names[i % len(names)]).rotate(7 * i).resize((64, 48)).save(folder / f"p{i:02d}.jpg")

    monkeypatch.setattr(store, "COMMIT_EVERY", 0.0)  # a commit per batch
    monkeypatch.setattr(fl.models, "load_model", lambda *a, **k: lite0)  # loaded once for all runs
    out = tiny_disk / "f.h5"
    argv = ["extract", str(folder), "--out", str(out), "--no-progress", "--batch-size", "4", "--streams", "1"]
    pictures(range(8))
    assert cli.main(argv) == 0
    capsys.readouterr()
    pictures(range(8, 24))
    ballast = tiny_disk / "ballast"
    ballast.write_bytes(bytes(shutil.disk_usage(tiny_disk).free - (16 << 10)))  # 16 kB left
    if not checked:
        monkeypatch.setattr(store.shutil, "disk_usage", lambda p: SimpleNamespace(total=1 << 40, used=0, free=1 << 40))
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"featlab: error: cannot write '{out}'"), err
    assert "the disk is full" in err and "the 8 rows committed before are kept" in err
    assert "the 16 pictures left need about" in err and "run the same command again" in err
    paths, feats = fl.store.load_features(out)
    assert paths == [f"p{i:02d}.jpg" for i in range(8)] and feats["head"].shape == (8, 1280)
    assert not store.journal_path(out).exists()  # a torn journal gives its space back
    ballast.unlink()  # space freed
    assert cli.main(argv) == 0
    assert "16 new, 24 total" in capsys.readouterr().out
    paths, feats = fl.store.load_features(out)
    assert sorted(paths) == [f"p{i:02d}.jpg" for i in range(24)] and feats["head"].shape == (24, 1280)


def test_a_disk_too_full_for_the_first_rows_leaves_no_broken_file(tiny_disk, tmp_path, capsys, monkeypatch, lite0):
    """The issue's run: a fresh extraction onto a disk that cannot hold even the first chunk
    (HDF5 used to crash there and leave a file that no longer opens)."""
    folder = tmp_path / "pics"
    folder.mkdir()
    for i, name in enumerate(["chelsea", "coffee", "rocket", "astronaut"]):
        fl.load_image(name).resize((64, 48)).save(folder / f"p{i}.jpg")
    monkeypatch.setattr(fl.models, "load_model", lambda *a, **k: lite0)
    ballast = tiny_disk / "ballast"
    ballast.write_bytes(bytes(shutil.disk_usage(tiny_disk).free - (512 << 10)))  # 512 kB left
    out = tiny_disk / "f.h5"
    argv = ["extract", str(folder), "--out", str(out), "--no-progress", "--streams", "1"]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "the disk is full" in err and "no row had been committed yet" in err, err
    assert "the 4 pictures left need about" in err
    assert not out.exists() or store.load_features(out)[0] == []
    ballast.unlink()
    assert cli.main(argv) == 0
    assert sorted(store.load_features(out)[0]) == [f"p{i}.jpg" for i in range(4)]


def test_the_folder_is_synced_after_the_journal_is_made_and_after_it_is_deleted(tmp_path, monkeypatch):
    """POSIX: fsync of a file does not persist its name in the folder. Without a folder fsync,
    a power loss can drop the journal of a commit being applied, or bring a deleted journal
    back (replayed later over newer commits)."""
    out = tmp_path / "d.h5"
    write(out, BATCHES[:1])
    events = []
    real_fsync, real_unlink, real_pwrite = store._disk.fsync, store._disk.unlink, store._disk.pwrite

    def fsync(fd):
        events.append("fsync dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync file")
        return real_fsync(fd)

    def unlink(path):
        events.append("unlink journal" if str(path).endswith("-journal") else "unlink")
        return real_unlink(path)

    def pwrite(fd, data, offset):
        events.append("pwrite")
        return real_pwrite(fd, data, offset)

    monkeypatch.setattr(store._disk, "fsync", fsync)
    monkeypatch.setattr(store._disk, "unlink", unlink)
    monkeypatch.setattr(store._disk, "pwrite", pwrite)
    write(out, BATCHES[1:3])
    assert events.count("unlink journal") >= 2  # at least two commits
    for i, e in enumerate(events):
        if e == "unlink journal":  # the deletion is made durable before anything else
            assert events[i + 1] == "fsync dir", events
        if e == "pwrite" and (i == 0 or events[i - 1] != "pwrite"):  # a commit starts applying:
            assert events[i - 1] == "fsync dir" and events[i - 2] == "fsync file", events  # journal, then its name
    assert_rows_match(out, BATCHES[0] + BATCHES[1] + BATCHES[2])
