"""Integrity and fault tests of every writer (issue #18): checksums, no silent overwrite, one
writer per path, stale temporary files, SIGTERM, kill -9, concurrent cache writers, a corrupted
cache entry, a full disk and a job too large for its disk.

Faults are real where the machine allows: processes are killed with signals, the full disk is a
3 MB tmpfs mounted by the test when it runs as root (otherwise ``RLIMIT_FSIZE`` in a subprocess,
with SIGXFSZ ignored so writes fail with EFBIG, which the code treats as a full disk); each test
says which.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import warnings
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest

from probe import cli as probe_cli
from probe.cache import Cache
from probe.provenance import atomic_write
from probe.safe_io import (
    DiskFullError,
    OutputExistsError,
    WriterBusyError,
    atomic_bytes,
    overwrite_policy,
    remove_stale_temps,
)
from probe.sweeps.result import csv_sidecar, read_metadata, save_table
from simlens import cli as simlens_cli
from simlens.cli import generate as simlens_cli_generate
from simlens.errors import SimlensValueError
from simlens.io.dataset import Dataset, load
from simlens.io.writer import DatasetWriter

ROOT = Path(__file__).resolve().parents[1]
BANDS = ("g", "r", "i", "z")


def small_set(n: int = 6, npix: int = 8, seed: int = 0) -> Dataset:
    gen = np.random.default_rng(seed)
    truth = pd.DataFrame(
        {
            "label": (np.arange(n) % 2).astype(np.int64),
            "theta_E": gen.uniform(1.0, 2.7, n),
            "kind": pd.Series(["lens"] * n, dtype=object),
            "seed": gen.integers(0, 2**62, n),
        }
    )
    images = gen.uniform(0, 1, (n, npix, npix, 4)).astype(np.float32)
    return Dataset(images, truth, {"seed": seed}, bands=BANDS)


def chunk_offset(path: Path, name: str) -> int:
    with h5py.File(path, "r") as f:
        return int(f[name].id.get_chunk_info(0).byte_offset)


def patch(path: Path, offset: int, data: bytes) -> None:
    with open(path, "r+b") as fh:
        fh.seek(offset)
        fh.write(data)


def leftovers(folder: Path) -> list[str]:
    """Temporary and lock files left in ``folder``."""
    return sorted(
        p.name for p in folder.iterdir() if p.name.endswith((".lock",)) or ".tmp" in p.name
    )


def env() -> dict[str, str]:
    out = dict(os.environ)
    out["PYTHONPATH"] = os.pathsep.join([str(ROOT), out.get("PYTHONPATH", "")])
    return out


def dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# --------------------------------------------------------------------------- integrity
def test_damaged_pixels_are_named_not_used(tmp_path, capsys):
    path = small_set().save(tmp_path / "set.h5")
    patch(path, chunk_offset(path, "images") + 40, b"\x7f" * 16)  # 16 bytes of pixels
    with pytest.raises(SimlensValueError, match=r"set\.h5.*damaged.*images"):
        load(path)
    lazy = load(path, lazy=True)  # opening reads only the truth; the pixels are read on use
    with pytest.raises(SimlensValueError, match=r"set\.h5.*damaged.*images"):
        np.asarray(lazy.images)
    lazy.close()
    # and the probe refuses it too: exit 2, one line naming the file
    (tmp_path / "m18.py").write_text("def model(x):\n    return x.mean(axis=(1, 2, 3)) * 0\n")
    sys.path.insert(0, str(tmp_path))
    try:
        argv = ["bin", "--model", "m18:model", "--data", str(path), "--by", "theta_E"]
        rc = probe_cli.main([*argv, "--out", str(tmp_path / "o"), "--quiet", "--plot", "none"])
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("m18", None)
    err = capsys.readouterr().err
    assert rc == 2
    assert "set.h5" in err
    assert "damaged" in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists() or not any((tmp_path / "o").iterdir())


def test_one_changed_theta_E_and_string_are_detected(tmp_path):
    path = small_set().save(tmp_path / "set.h5")
    good = path.read_bytes()
    # theta_E[0] -> 1.6, written over the raw bytes of its chunk (not through HDF5)
    patch(path, chunk_offset(path, "truth/theta_E"), np.float64(1.6).tobytes())
    assert path.read_bytes() != good
    with pytest.raises(SimlensValueError, match=r"set\.h5.*damaged.*truth"):
        load(path)
    # a variable-length string column has no HDF5 filter: its sha256 attribute catches it
    path.write_bytes(good)
    with h5py.File(path, "r+") as f:
        f["truth/kind"][0] = "star"
    with pytest.raises(SimlensValueError, match="damaged"):
        load(path)


def test_one_image_set_is_small(tmp_path):
    """A 1-image set with the 174 real truth columns: 6.3 MB with 4096-row truth chunks."""
    rows = pd.DataFrame({f"c{k}": np.arange(1, dtype=np.float64) for k in range(174)})
    path = Dataset(np.zeros((1, 100, 100, 4)), rows).save(tmp_path / "one.h5")
    size = path.stat().st_size
    assert size < 1_000_000, size  # 160 kB of pixels + per-column headers
    with h5py.File(path, "r") as f:
        assert f["truth/c0"].chunks == (1,)
    # a large set keeps large chunks (fast reads)
    with DatasetWriter(tmp_path / "big.h5", 4, BANDS, expected_n=10_000) as w:
        w.append(np.zeros((3, 4, 4, 4)), rows.iloc[:1].loc[[0, 0, 0]].reset_index(drop=True))
    with h5py.File(tmp_path / "big.h5", "r") as f:
        assert f["truth/c0"].chunks == (4096,)


def test_csv_results_have_a_plain_header(tmp_path):
    table = pd.DataFrame({"value": [1.0, 2.0], "group": ["all", "all"], "n": [3, 4]})
    path = save_table(table, {"kind": "sweep", "x": [1, 2]}, tmp_path / "r.csv")
    back = pd.read_csv(path)  # no comment=, no skiprows
    assert list(back.columns) == ["value", "group", "n"]
    pd.testing.assert_frame_equal(back, table)
    assert read_metadata(path)["kind"] == "sweep"
    assert json.loads(csv_sidecar(path).read_text())["x"] == [1, 2]


# --------------------------------------------------------------------------- --overwrite
def _simlens_set(tmp_path: Path) -> Path:
    """A real 2-image set (the FITS export needs the simulator's truth columns)."""
    path = tmp_path / "in.h5"
    argv = ["generate", "--n", "2", "--npix", "20", "--no-noise", "--quiet", "--out", str(path)]
    assert simlens_cli.main(argv) == 0
    return path


def _fits_cutouts(tmp_path: Path) -> Path:
    from astropy.io import fits

    folder = tmp_path / "cut"
    folder.mkdir()
    gen = np.random.default_rng(1)
    for band in BANDS:
        fits.PrimaryHDU(gen.normal(0, 1, (20, 20)).astype(np.float32)).writeto(
            folder / f"obj_{band}.fits"
        )
    return folder


SIMLENS_WRITERS: dict[str, Any] = {
    "generate": lambda t, out: ["generate", "--n", "2", "--no-noise", "--quiet", "--npix", "20",
                                "--out", str(out)],
    "inject": lambda t, out: ["inject", "--cutouts", str(_fits_cutouts(t)), "--out", str(out)],
    "show": lambda t, out: ["show", str(_simlens_set(t)), "--n", "2", "--out", str(out)],
    "concat": lambda t, out: ["concat", str(_simlens_set(t)), "--out", str(out)],
    "truth": lambda t, out: ["truth", str(_simlens_set(t)), "--out", str(out)],
    "fits": lambda t, out: ["fits", str(_simlens_set(t)), "--out", str(out)],
}  # fmt: skip
SUFFIX = {"show": ".png", "truth": ".parquet", "fits": ".fits"}


@pytest.mark.parametrize("command", sorted(SIMLENS_WRITERS))
def test_simlens_commands_refuse_to_overwrite(command, tmp_path, capsys):
    out = tmp_path / f"out{SUFFIX.get(command, '.h5')}"
    out.write_bytes(b"precious")
    argv = SIMLENS_WRITERS[command](tmp_path, out)
    assert simlens_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "exists" in err
    assert "--overwrite" in err
    assert len(err.strip().splitlines()) == 1
    assert out.read_bytes() == b"precious"
    assert leftovers(tmp_path) == []
    assert simlens_cli.main([*argv, "--overwrite"]) == 0, capsys.readouterr().err
    assert out.read_bytes() != b"precious"


@pytest.fixture
def probe_model(tmp_path):
    (tmp_path / "m18b.py").write_text(
        "import numpy as np\n\ndef model(x):\n    return np.clip(x.mean(axis=(1, 2, 3)), 0, 1)\n"
    )
    sys.path.insert(0, str(tmp_path))
    yield "m18b:model"
    sys.path.remove(str(tmp_path))
    sys.modules.pop("m18b", None)


@pytest.mark.parametrize(
    ("command", "extra", "first"),
    [
        ("bin", ["--by", "theta_E", "--bins", "2"], "bin_theta_E.parquet"),
        ("sweep", ["--perturber", "disk", "--values", "0,2"], "sweep_disk.parquet"),
    ],
)
def test_probe_commands_refuse_to_overwrite(command, extra, first, probe_model, tmp_path, capsys):
    data = small_set(n=8).save(tmp_path / "set.h5")
    out = tmp_path / "out"
    argv = [command, "--model", probe_model, "--data", str(data), *extra, "--out", str(out)]
    argv += ["--quiet", "--n-boot", "20", "--min-count", "1"]
    assert probe_cli.main(argv) == 0
    before = (out / first).read_bytes()
    assert probe_cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "exists" in err
    assert "--overwrite" in err
    assert (out / first).read_bytes() == before
    assert probe_cli.main([*argv, "--overwrite"]) == 0
    assert leftovers(out) == []


def test_every_writing_command_has_overwrite():
    for parser in (probe_cli._parser(), simlens_cli._parser()):
        sub = next(a for a in parser._actions if a.dest == "command")
        for name, command in sub.choices.items():
            if "--out" in command._option_string_actions:
                assert "--overwrite" in command._option_string_actions, name


def test_probe_check_refuses_an_existing_report_before_running(tmp_path, capsys):
    out = tmp_path / "rep"
    out.mkdir()
    (out / "report.json").write_text("{}")
    argv = ["check", "--model", "nope:model", "--suite", "default", "--out", str(out)]
    assert probe_cli.main(argv) == 2  # refused before the (missing) model is even loaded
    assert "report.json" in capsys.readouterr().err
    assert (out / "report.json").read_text() == "{}"


def test_python_api_overwrite_argument(tmp_path):
    ds = small_set()
    path = ds.save(tmp_path / "s.h5")
    with pytest.raises(OutputExistsError, match="overwrite"):
        ds.save(path, overwrite=False)
    ds.save(path)  # Python default: replace
    with overwrite_policy(False), pytest.raises(OutputExistsError):
        ds.save(path)


# --------------------------------------------------------------------------- one writer at a time
def test_second_writer_fails_clearly_and_dead_locks_are_taken_over(tmp_path, capsys):
    target = tmp_path / "s.h5"
    with DatasetWriter(target, 8, BANDS) as first:
        with pytest.raises(WriterBusyError, match=rf"pid {os.getpid()}"):
            DatasetWriter(target, 8, BANDS)
        first.append(small_set().images, small_set().truth)
    assert len(load(target)) == 6
    # a live process of another program holds the lock: the CLI says so, exit 2
    sleeper = subprocess.Popen(["sleep", "30"])
    try:
        Path(f"{target}.lock").write_text(f"{sleeper.pid}\n")
        assert simlens_cli.main(["concat", str(target), "--out", str(target) + "x"]) == 0
        rc = simlens_cli.main(["truth", str(target), "--out", str(target), "--overwrite"])
        assert rc == 2
        assert f"pid {sleeper.pid}" in capsys.readouterr().err
    finally:
        sleeper.kill()
        sleeper.wait()
    # that process died (kill -9): its lock is stale and taken over
    small_set(seed=3).save(target)
    assert not Path(f"{target}.lock").exists()
    assert load(target).meta["seed"] == 3


def test_stale_temporary_files_are_removed_live_ones_kept(tmp_path):
    target = tmp_path / "s.h5"
    dead = tmp_path / f".s.h5.{dead_pid()}.abcd1234.tmp"
    old = tmp_path / ".s.h5.x8k2_9zq.tmp"  # written before temporary names carried the pid
    live = tmp_path / f".s.h5.{os.getppid()}.ffff0000.tmp"
    other = tmp_path / f".t.h5.{dead_pid()}.abcd1234.tmp"  # another target's
    for p in (dead, old, live, other):
        p.write_bytes(b"x" * 1000)
    os.utime(old, (time.time() - 3600, time.time() - 3600))
    small_set().save(target)
    assert not dead.exists()
    assert not old.exists()
    assert live.exists()
    assert other.exists()
    assert remove_stale_temps(tmp_path / "t.h5") == [other]


# --------------------------------------------------------------------------- signals
def _generate_cmd(out: Path, n: int = 400, npix: int = 40) -> list[str]:
    return [sys.executable, "-m", "simlens.cli", "generate", "--n", str(n), "--chunk", "4",
            "--npix", str(npix), "--quiet", "--out", str(out)]  # fmt: skip


def _wait_for_temp(folder: Path, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    end = time.time() + timeout
    while time.time() < end:
        if any(".tmp" in p.name for p in folder.iterdir()):
            return
        if proc.poll() is not None:
            raise AssertionError(f"the writer ended first: {proc.communicate()}")
        time.sleep(0.01)
    raise AssertionError("no temporary file appeared")


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.5])
def test_kill_9_of_generate_leaves_the_old_file_and_next_run_cleans_up(tmp_path, delay):
    """Fault: SIGKILL of `simlens generate` when its temporary file appears, and later."""
    out = tmp_path / "set.h5"
    small_set(npix=40).save(out)
    old = out.read_bytes()
    proc = subprocess.Popen([*_generate_cmd(out), "--overwrite"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)  # fmt: skip
    _wait_for_temp(tmp_path, proc)
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert out.read_bytes() == old  # the old file, whole
    assert leftovers(tmp_path)  # a killed process cleans nothing...
    done = subprocess.run([*_generate_cmd(out, 3), "--overwrite"], env=env(),
                          capture_output=True, text=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert leftovers(tmp_path) == []  # ...the next run does
    assert len(load(out)) == 3


@pytest.mark.slow
def test_sigterm_is_handled_like_ctrl_c(tmp_path):
    """Fault: SIGTERM (what SLURM sends) during `simlens generate`."""
    out = tmp_path / "set.h5"
    out.write_bytes(b"old")
    proc = subprocess.Popen([*_generate_cmd(out), "--overwrite"], env=env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)  # fmt: skip
    _wait_for_temp(tmp_path, proc)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip() == "simlens generate: terminated (SIGTERM); nothing written"
    assert out.read_bytes() == b"old"
    assert leftovers(tmp_path) == []


_WRITER = r"""
import sys, numpy as np, pandas as pd
from pathlib import Path
kind, target = sys.argv[1], Path(sys.argv[2])
n = 400_000
for version in range(1, 10_000):
    table = pd.DataFrame({"version": np.full(n, version), "x": np.arange(n, dtype=float)})
    if kind == "table":
        from probe.sweeps.result import save_table
        save_table(table, {"version": version}, target, overwrite=True)
    elif kind == "cache":
        from probe.cache import Cache
        images = np.arange(n * 4, dtype=np.float32).reshape(n, 2, 2, 1)
        Cache(target).save_set({"set": "fixed"}, images, np.ones(n, int), table.iloc[:10])
    else:  # a gate report: the same atomic_write, text
        from probe.provenance import atomic_write
        text = ("v%d\n" % version) * 200_000 + "end\n"
        atomic_write(target, lambda tmp: tmp.write_text(text), overwrite=True)
    print(version, flush=True)
"""


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["table", "table-csv", "cache", "report"])
@pytest.mark.parametrize("delay", [0.0, 0.15])
def test_kill_9_of_any_writer_leaves_old_or_complete_new(tmp_path, kind, delay):
    """Fault: SIGKILL of probe's result tables, the cache and the gate's reports mid-write."""
    target = {
        "table": tmp_path / "r.parquet",
        "table-csv": tmp_path / "r.csv",
        "cache": tmp_path / "cache",
        "report": tmp_path / "report.json",
    }[kind]
    proc = subprocess.Popen([sys.executable, "-c", _WRITER, kind.split("-")[0], str(target)],
                            env=env(), stdout=subprocess.PIPE, text=True)  # fmt: skip
    assert proc.stdout is not None
    proc.stdout.readline()  # one version complete: the next one is being written
    folder = target if kind == "cache" else tmp_path
    end = time.time() + 30
    while not any(".tmp" in p.name for p in folder.rglob("*")) and time.time() < end:
        time.sleep(0.002)
    time.sleep(delay)
    proc.kill()
    proc.communicate()
    if kind == "cache":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a half-stored entry: recomputed
            got = Cache(target).load_set({"set": "fixed"})
        if got is not None:  # served only if whole and matching its checksums
            assert got[0].shape == (400_000, 2, 2, 1)
            assert got[0][-1, 1, 1, 0] == 1_599_999
    elif kind == "report":
        lines = target.read_text().splitlines()
        assert lines[-1] == "end"
        assert len(set(lines[:-1])) == 1
    else:
        table = pd.read_parquet(target) if kind == "table" else pd.read_csv(target)
        assert len(table) == 400_000
        assert table["version"].nunique() == 1
        if kind == "table":  # the parquet's metadata is inside the file: same version
            assert read_metadata(target)["version"] == int(table["version"][0])
        else:  # CSV: the sidecar is renamed just before the table, so it is never older
            assert read_metadata(target)["version"] >= int(table["version"][0])


# --------------------------------------------------------------------------- the cache
_CACHE_WRITER = r"""
import sys, time, numpy as np, pandas as pd
from probe.cache import Cache
root, start = sys.argv[1], float(sys.argv[2])
while time.time() < start:
    pass
n = 200_000
images = np.arange(n * 4, dtype=np.float32).reshape(n, 2, 2, 1)
truth = pd.DataFrame({"a": np.arange(50)})
for _ in range(3):
    Cache(root).save_set({"set": "same"}, images, np.ones(n, int), truth)
"""


@pytest.mark.slow
def test_two_processes_store_the_same_cache_entry(tmp_path):
    """Fault: two processes store one cache entry at the same moment, three times each."""
    start = time.time() + 1.5
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CACHE_WRITER, str(tmp_path), str(start)],
            env=env(),
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:
        _, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
    cache = Cache(tmp_path)
    got = cache.load_set({"set": "same"})
    assert got is not None
    assert cache.count("set", "hit") == 1
    assert got[0][-1, 1, 1, 0] == 799_999
    assert [p.name for p in tmp_path.rglob("*") if ".tmp" in p.name or p.suffix == ".lock"] == []
    assert len(list((tmp_path / "sets").iterdir())) == 4  # images, labels, truth, sidecar


def test_corrupted_cache_entry_is_reported_once_and_recomputed(tmp_path):
    """Fault: one byte of a stored entry flipped on disk."""
    cache = Cache(tmp_path)
    inputs = {"set": "x"}
    images = np.ones((5, 2, 2, 1), np.float32)
    cache.save_set(inputs, images, np.ones(5, int), pd.DataFrame({"a": range(5)}))
    npy = next((tmp_path / "sets").glob("*.images.npy"))
    data = bytearray(npy.read_bytes())
    data[-1] ^= 0xFF
    npy.write_bytes(bytes(data))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        first, again = cache.load_set(inputs), cache.load_set(inputs)
    assert first is None
    assert again is None
    assert len(record) == 1  # asked twice, reported once
    assert "damaged (images.npy checksum differs)" in str(record[0].message)
    cache.save_set(inputs, images, np.ones(5, int), pd.DataFrame({"a": range(5)}))
    assert np.array_equal(cache.load_set(inputs)[0], images)  # type: ignore[index]


def test_cache_on_a_full_disk_is_skipped_with_one_warning(tmp_path, monkeypatch):
    """Fault: ENOSPC injected into the cache's writes (the gate test runs it end to end)."""
    import probe.cache as cache_module

    def full(path: Any, write: Any, **kw: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(cache_module, "atomic_write", full)
    cache = Cache(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        cache.save_scores({"a": 1}, np.ones(3))
        cache.save_scores({"a": 2}, np.ones(3))
    assert len(record) == 1
    assert "continuing without" in str(record[0].message)
    assert not cache.writable


# --------------------------------------------------------------------------- full disk
@contextlib.contextmanager
def small_disk(tmp_path: Path, size: str = "3m") -> Any:
    """A tmpfs of ``size`` (root only), or None."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        yield None
        return
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)],
                          capture_output=True)  # fmt: skip
    if done.returncode != 0:
        yield None
        return
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def _fsize_limit(limit: int) -> Any:
    def setup() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # writes past the limit fail with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return setup


@pytest.mark.slow
@pytest.mark.parametrize("how", ["tmpfs", "rlimit_fsize"])
def test_full_disk_during_generate_gives_one_line_and_no_file(tmp_path, how):
    """Fault: the disk fills during `simlens generate` (gzip: no up-front size estimate).

    ``tmpfs``: a real 3 MB filesystem (ENOSPC; skipped unless root can mount).
    ``rlimit_fsize``: RLIMIT_FSIZE of 3 MB in the subprocess (EFBIG), on any machine.
    """
    with small_disk(tmp_path) as mnt:
        if how == "tmpfs" and mnt is None:
            pytest.skip("mounting a tmpfs needs root")
        folder = mnt if how == "tmpfs" else tmp_path / "plain"
        folder.mkdir(exist_ok=True)
        out = folder / "set.h5"
        out.write_bytes(b"old")
        cmd = [*_generate_cmd(out, 60, npix=100), "--compression", "gzip", "--overwrite"]
        limit = None if how == "tmpfs" else _fsize_limit(3_000_000)
        done = subprocess.run(cmd, env=env(), capture_output=True, text=True, timeout=300,
                              preexec_fn=limit)  # fmt: skip
        assert done.returncode == 2, done.stderr[-2000:]  # not 139
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1
        assert "disk full" in lines[0]
        assert "nothing written" in lines[0]
        assert out.read_bytes() == b"old"
        assert [p.name for p in folder.iterdir()] == ["set.h5"]


def test_job_larger_than_the_free_disk_is_refused_before_it_starts(tmp_path, monkeypatch, capsys):
    """Fault: too little free space for the estimated output (disk_usage reports 1 MB free)."""
    import probe.safe_io as safe_io

    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(safe_io.shutil, "disk_usage", lambda p: usage._replace(free=1_000_000))
    built = []
    monkeypatch.setattr(
        simlens_cli_generate, "build_simulator", lambda *a: built.append(a) or _Fake()
    )
    out = tmp_path / "set.h5"
    rc = simlens_cli.main(["generate", "--n", "1000", "--quiet", "--out", str(out)])
    err = capsys.readouterr().err
    assert rc == 2
    assert "needs about 162.5 MB" in err
    assert "1.0 MB" in err
    assert list(tmp_path.iterdir()) == []


class _Fake:
    """Just enough of a Simulator for the size check, which runs before any rendering."""

    bands = BANDS
    npix = 100

    def sample_lenses(self, n: int, **kw: Any) -> pd.DataFrame:
        return pd.DataFrame({"label": np.ones(n, int)})

    def provenance(self, **kw: Any) -> dict[str, Any]:
        return dict(kw)


def test_disk_full_error_from_a_python_writer(tmp_path):
    """Fault: ENOSPC raised inside a write (as the OS would): DiskFullError, no file."""

    def full(tmp: Path) -> None:
        tmp.write_bytes(b"partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match=r"r\.json: disk full.*nothing written"):
        atomic_write(tmp_path / "r.json", full)
    assert list(tmp_path.iterdir()) == []


def test_atomic_bytes_keeps_the_old_file_when_the_write_fails(tmp_path, monkeypatch):
    """Fault: fsync fails mid-write (a store's done record, a checkpoint): the old bytes stay,
    no temporary file is left; a good write replaces the file whole."""
    target = tmp_path / "shard-00001.json"
    atomic_bytes(target, b"old")

    def failing_fsync(fd: int) -> None:
        raise OSError(errno.EIO, "I/O error")

    monkeypatch.setattr(os, "fsync", failing_fsync)
    with pytest.raises(OSError, match="I/O error"):
        atomic_bytes(target, b"new record")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
    monkeypatch.undo()
    atomic_bytes(target, b"new record")
    assert target.read_bytes() == b"new record"
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
