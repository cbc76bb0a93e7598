"""simlens generate on Dask: the same set for any number of workers, and kill -9 + --resume.

A real ``distributed.LocalCluster`` of two worker processes and the real simulator (small
stamps): the output must be bit-identical to the in-process run, and a run killed with
SIGKILL mid-way, then resumed, must equal an uninterrupted one array by array.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import simlens
from simlens.cli import main
from simlens.errors import SimlensValueError
from simlens.io.store import missing_shards
from simlens.scale.generation import generate

pytestmark = pytest.mark.slow  # starts Dask clusters (seconds each)

N, NPIX, SEED = 24, 24, 9


def bits(a: object) -> np.ndarray:
    return np.ascontiguousarray(np.asarray(a), dtype=np.float32).view(np.uint32)


def same(a: simlens.Dataset, b: simlens.Dataset) -> None:
    assert np.array_equal(bits(a.images), bits(b.images))
    pd.testing.assert_frame_equal(a.truth, b.truth, check_exact=True)


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    from simlens.scale.cluster import dask_client

    with dask_client(2, quiet=True) as c:
        yield c


@pytest.fixture(scope="module")
def serial(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate(
        tmp_path_factory.mktemp("serial") / "s.zarr", N, npix=NPIX, seed=SEED, chunk=8,
        progress=False,
    )  # fmt: skip


@pytest.mark.parametrize("name", ["w2_c8.zarr", "w2_c16.zarr", "w2_c5.h5"])
def test_two_workers_give_the_serial_set(
    client: object, serial: Path, tmp_path: Path, name: str
) -> None:
    chunk = int(name.split("_c")[1].split(".")[0])
    out = generate(
        tmp_path / name, N, npix=NPIX, seed=SEED, chunk=chunk, client=client, progress=False
    )
    same(simlens.load(out, lazy=False), simlens.load(serial, lazy=False))


def test_scheduler_that_does_not_answer(
    tmp_path: Path, capsys: pytest.CaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    import simlens.scale.cluster

    assert simlens.scale.cluster.CONNECT_TIMEOUT_S < 30
    monkeypatch.setattr(simlens.scale.cluster, "CONNECT_TIMEOUT_S", 3)
    t0 = time.monotonic()
    argv = ["generate", "--n", "4", "--npix", "16", "--quiet", "--out", str(tmp_path / "s.zarr")]
    assert main([*argv, "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert time.monotonic() - t0 < 30
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert "--scheduler" in err[0]
    assert "tcp://127.0.0.1:9" in err[0]
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(SimlensValueError, match="workers"), simlens.scale.cluster.dask_client(0):
        pass


def _cli(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "simlens.cli", "generate", "--n", "120", "--npix", "32",
            "--seed", "4", "--chunk", "4", "--quiet", "--out", str(out), *extra]  # fmt: skip


def test_kill_9_then_resume_gives_the_uninterrupted_store(tmp_path: Path) -> None:
    killed = tmp_path / "killed.zarr"
    log = tmp_path / "killed.log"
    with open(log, "wb") as sink:
        proc = subprocess.Popen(
            _cli(killed, "--workers", "2"),
            start_new_session=True,  # its own process group: the driver and its Dask workers
            stdout=subprocess.DEVNULL,
            stderr=sink,
        )
    deadline = time.monotonic() + 240
    try:
        while time.monotonic() < deadline:
            done = killed / "done"
            if done.is_dir() and len(list(done.glob("shard-*.json"))) >= 3:
                break
            assert proc.poll() is None, log.read_text()[-2000:]
            time.sleep(0.05)
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    gaps = missing_shards(killed)
    assert 0 < len(gaps) < 30  # killed mid-way: some shards done, some not
    with pytest.raises(SimlensValueError, match=rf"shard {gaps[0][0]}: missing"):
        simlens.load(killed)

    resumed = subprocess.run(
        _cli(killed, "--workers", "2", "--resume"), capture_output=True, text=True, timeout=600
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    whole = tmp_path / "whole.zarr"
    done = subprocess.run(_cli(whole), capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    a, b = simlens.load(killed), simlens.load(whole)
    same(a, b)
    assert missing_shards(killed, checksum=True) == []
    for part in sorted((whole / "truth").iterdir()):  # array by array, part by part
        pd.testing.assert_frame_equal(
            pd.read_parquet(killed / "truth" / part.name), pd.read_parquet(part)
        )


def test_a_cluster_logs_its_dashboard_and_serves_it(caplog: pytest.LogCaptureFixture) -> None:
    import logging
    import urllib.request

    from simlens.scale.cluster import dask_client

    # Library code logs (the simlens command shows INFO lines on stderr); it never prints.
    with caplog.at_level(logging.INFO, logger="simlens.scale.cluster"), dask_client(2) as c:
        line = [r.getMessage() for r in caplog.records if r.name == "simlens.scale.cluster"][-1]
        assert line.startswith("dask dashboard: http://")
        link = line.split(": ", 1)[1]
        assert link == c.dashboard_link  # type: ignore[union-attr]
        with urllib.request.urlopen(link, timeout=20) as page:  # bokeh serves it
            assert page.status == 200


def test_local_workers_keep_glibc_dynamic_mmap_threshold() -> None:
    """Dask's default MALLOC_TRIM_THRESHOLD_ made each chunk ~40% dearer than in a plain
    process (scripts/bench_scale.py): our LocalCluster's workers run without it."""
    from simlens.scale.cluster import dask_client

    with dask_client(2, quiet=True) as c:
        seen = c.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")  # type: ignore[union-attr]
        profiling = c.run(_profiler_enabled)  # type: ignore[union-attr]
    assert len(seen) == 2
    assert set(seen.values()) == {os.environ.get("MALLOC_TRIM_THRESHOLD_")}
    # The statistical profiler (~7% of a chunk's CPU) is off on our workers.
    assert list(profiling.values()) == [False, False]


def _profiler_enabled() -> bool:
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def test_a_chunk_leaves_no_ray_traced_grids_behind(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each chunk's memoised grids are dropped when it is done: a long run's memory stays flat
    in the number of chunks (100,000 lenses hold no more than 20,000; scripts/bench_scale.py)."""
    from simlens.physics import lensing
    from simlens.scale import chunks

    held: list[int] = []

    def spy() -> None:
        held.append(lensing.cached_grid.cache_info().currsize)
        lensing.clear_grid_cache()

    monkeypatch.setattr(chunks, "clear_grid_cache", spy)
    generate(tmp_path / "g.zarr", 12, npix=NPIX, seed=SEED, chunk=4, progress=False)
    assert len(held) == 3
    assert min(held) > 0  # each chunk ray-traced through the memo
    assert lensing.cached_grid.cache_info().currsize == 0
