"""Survey-scale runs (issue 17): chunked scoring on Dask equals the serial path bit for bit;
.zarr sets read lazily; bad input (workers, chunk size, scheduler, stores) is refused."""

from __future__ import annotations

import json
import sys
import time

import cloudpickle
import h5py
import numpy as np
import pandas as pd
import pytest

from probe import Probe, ProbeValueError
from probe import cli as probe_cli
from probe.adapters.datasets import load_hdf5, load_set, load_zarr
from probe.cli import inputs as cli_inputs
from probe.selection import selection_function
from tests.probe.conftest import FakeSimulator, copy_store, mean_model

# The workers get test code by value: they cannot import the tests package.
cloudpickle.register_pickle_by_value(sys.modules[__name__])
cloudpickle.register_pickle_by_value(sys.modules[FakeSimulator.__module__])


@pytest.fixture(scope="module")
def client():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=":0"
    )
    with distributed.Client(cluster) as c:
        yield c
    cluster.close()


def make_set(n: int = 300, seed: int = 0) -> tuple[np.ndarray, pd.DataFrame]:
    gen = np.random.default_rng(seed)
    images = gen.uniform(0, 1, size=(n, 6, 6, 2)).astype(np.float32)
    truth = pd.DataFrame(
        {
            "label": (np.arange(n) % 2).astype(np.int64),
            "theta_E": gen.uniform(1.0, 2.7, n),
            "mag_source_g": gen.uniform(20, 25, n),
        }
    )
    return images, truth


def write_zarr(path, images: np.ndarray, truth: pd.DataFrame, shard_size: int) -> None:
    """A store of arbitrary images and truth, written by simlens' own store writer (shards,
    truth parts, completion records); sets of simulated lenses come from the CLI
    (``cli_zarr_sets``)."""
    from simlens.io import store

    n = images.shape[0]
    store.create_store(
        path, n=n, npix=images.shape[1], bands=["g", "r"][: images.shape[3]],
        shard_size=shard_size, columns=list(truth.columns), provenance={"seed": 0},
        fingerprint={"test": True},
    )  # fmt: skip
    for k in range(-(-n // shard_size)):
        lo, hi = store.shard_bounds(n, shard_size, k)
        store.write_shard(path, k, images[lo:hi], truth.iloc[lo:hi])
    store.finish_store(path)


def write_h5(path, images: np.ndarray, truth: pd.DataFrame) -> None:
    with h5py.File(path, "w") as f:
        f["images"] = images
        g = f.create_group("truth")
        for c in truth.columns:
            g[c] = truth[c].to_numpy()
        g.attrs["columns"] = json.dumps(list(truth.columns))


def _same(a, b) -> None:
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=True)
    pd.testing.assert_frame_equal(a.scores, b.scores, check_exact=True)
    assert a.provenance["data"]["hash"] == b.provenance["data"]["hash"]


@pytest.mark.parametrize("chunk_size", [64, 100])
def test_bin_and_sweep_equal_serial(client, chunk_size):
    images, truth = make_set()
    labels, theta = truth["label"].to_numpy(), truth["theta_E"].to_numpy()
    serial = Probe(mean_model, batch_size=50)
    dist = Probe(mean_model, batch_size=50, client=client, chunk_size=chunk_size)
    assert dist.chunk_size == (64 if chunk_size == 64 else 128)  # whole blocks of 64
    _same(
        serial.by_parameter(images, labels, theta, bins=5, rng=3),
        dist.by_parameter(images, labels, theta, bins=5, rng=3),
    )
    # Gaussian noise draws random numbers: per block, the same on any chunking.
    values = [0.0, 0.05, 0.2]
    _same(
        serial.sweep(images, labels, "noise", values, rng=7),
        dist.sweep(images, labels, "noise", values, rng=7),
    )
    # Selection completeness from the distributed scores equals the serial one.
    sel = [
        selection_function(p.predict(images), labels, theta, bins=4).table for p in (serial, dist)
    ]
    pd.testing.assert_frame_equal(sel[0], sel[1], check_exact=True)


@pytest.mark.parametrize("paired", [True, False])
def test_resimulate_equal_serial(client, paired):
    sim = FakeSimulator(noise_sigma=0.05)
    kwargs = dict(n=70, n_nonlenses=30, rng=5, paired=paired)
    a = Probe(mean_model, batch_size=16).resimulate(sim, "psf_scale", [0.8, 1.2], **kwargs)
    b = Probe(mean_model, batch_size=16, client=client, chunk_size=64).resimulate(
        sim, "psf_scale", [0.8, 1.2], **kwargs
    )
    _same(a, b)


def test_zarr_set_equals_h5_set(client, cli_zarr_sets):
    """Stores written by `simlens generate` (.zarr, 3 shards of 8, and .h5): same truth, same
    probe results serially and on workers."""
    zarr_path, h5_path = cli_zarr_sets["zarr"], cli_zarr_sets["h5"]
    with load_set(h5_path) as ds:
        truth = ds.truth
    results = []
    for path, c in ((h5_path, None), (zarr_path, None), (zarr_path, client), (h5_path, client)):
        with load_set(path) as ds:
            pd.testing.assert_frame_equal(ds.truth, truth, check_dtype=False)
            # A .zarr set's chunks default to its shards (8, rounded up to 64 images).
            chunk = None if path.suffix == ".zarr" else 64
            p = Probe(mean_model, batch_size=8, client=c, chunk_size=chunk)
            results.append(p.by_parameter(ds.images, ds.labels, ds.truth["theta_E"], bins=4, rng=1))
    for r in results[1:]:
        _same(results[0], r)


def test_cli_bin_zarr_with_workers_equals_serial_h5(tmp_path, monkeypatch, cli_zarr_sets):
    (tmp_path / "daskmodel.py").write_text(
        "import numpy as np\n\ndef model(x):\n    return np.clip(x.mean(axis=(1, 2, 3)), 0, 1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the worker processes import the spec
    common = ["--model", "daskmodel:model", "--by", "theta_E", "--bins", "4", "--quiet"]
    common += ["--plot", "none"]
    assert probe_cli.main(["bin", *common, "--data", str(cli_zarr_sets["h5"]),
                           "--out", str(tmp_path / "a")]) == 0  # fmt: skip
    zarr_args = ["--data", str(cli_zarr_sets["zarr"]), "--workers", "2", "--chunk-size", "8"]
    assert probe_cli.main(["bin", *common, *zarr_args, "--out", str(tmp_path / "b")]) == 0
    for name in ("bin_theta_E.parquet", "bin_theta_E_scores.parquet"):
        a = pd.read_parquet(tmp_path / "a" / name)
        assert len(a) > 0
        pd.testing.assert_frame_equal(a, pd.read_parquet(tmp_path / "b" / name))


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (["--workers", "0"], "--workers"),
        (["--chunk-size", "-5"], "--chunk-size"),
        (["--workers", "2", "--scheduler", "tcp://127.0.0.1:9"], "not both"),
    ],
)
def test_cli_bad_workers_and_chunk_size(tmp_path, capsys, flags, message):
    argv = ["bin", "--model", "x:y", "--data", "s.h5", "--by", "theta_E"]
    assert probe_cli.main([*argv, *flags, "--out", str(tmp_path / "o")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_probe_bad_chunk_size():
    with pytest.raises(ProbeValueError, match="chunk_size"):
        Probe(mean_model, chunk_size=-1)
    with pytest.raises(ProbeValueError, match="chunk_size"):
        Probe(mean_model, chunk_size=0)


def test_unreachable_scheduler_exits_2_fast_and_writes_nothing(tmp_path, capsys, monkeypatch):
    from probe import cluster

    assert cluster.CONNECT_TIMEOUT_S <= 25  # the bound: a clear error within 30 s
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 3)
    images, truth = make_set(n=10)
    write_h5(tmp_path / "s.h5", images, truth)
    monkeypatch.setattr(cli_inputs, "load_data", load_hdf5)
    out = tmp_path / "o"
    t0 = time.perf_counter()
    argv = ["bin", "--model", "x:y", "--data", str(tmp_path / "s.h5"), "--by", "theta_E"]
    rc = probe_cli.main([*argv, "--scheduler", "tcp://127.0.0.1:9", "--out", str(out)])
    assert rc == 2
    assert time.perf_counter() - t0 < 30
    err = capsys.readouterr().err
    assert "--scheduler tcp://127.0.0.1:9" in err
    assert "no Dask scheduler answered" in err
    assert not out.exists() or not any(out.iterdir())


def test_zarr_store_errors(tmp_path, cli_zarr_sets):
    a_file = tmp_path / "f.zarr"
    a_file.write_text("not a store")
    with pytest.raises(ProbeValueError, match="is a file"):
        load_zarr(a_file)
    with load_zarr(cli_zarr_sets["zarr"], verify=True) as ds:  # the CLI's store passes
        assert ds.images.shape == (24, 32, 32, 4)
    store = copy_store(cli_zarr_sets["zarr"], tmp_path / "a.zarr")
    (store / "truth" / "part-00002.parquet").unlink()
    with pytest.raises(ProbeValueError, match="shard 2 is missing its truth"):
        load_zarr(store)
    store = copy_store(cli_zarr_sets["zarr"], tmp_path / "b.zarr")
    (store / "images" / "c" / "1" / "0" / "0" / "0").unlink()
    with pytest.raises(ProbeValueError, match="shard 1 is missing its images"):
        load_zarr(store)


def test_zarr_completion_records_are_checked(tmp_path, cli_zarr_sets):
    """A shard without its done record (a killed writer), a file shorter than its record, or
    (verify=True) a file whose bytes changed is refused, the shard named."""
    store = copy_store(cli_zarr_sets["zarr"], tmp_path / "a.zarr")
    (store / "done" / "shard-00001.json").unlink()
    with pytest.raises(ProbeValueError, match=r"shard 1 has no completion record"):
        load_zarr(store)
    store = copy_store(cli_zarr_sets["zarr"], tmp_path / "b.zarr")
    shard = store / "images" / "c" / "2" / "0" / "0" / "0"
    shard.write_bytes(shard.read_bytes()[:-100])
    with pytest.raises(ProbeValueError, match=r"shard 2 file images/c/2/0/0/0 is truncated"):
        load_zarr(store)
    store = copy_store(cli_zarr_sets["zarr"], tmp_path / "c.zarr")
    shard = store / "images" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size, one byte flipped
    shard.write_bytes(bytes(data))
    with load_zarr(store) as ds:  # the byte counts match: only verify reads the contents
        assert len(ds.truth) == 24
    with pytest.raises(ProbeValueError, match=r"shard 0 file images/c/0/0/0/0 does not match"):
        load_zarr(store, verify=True)
    store = copy_store(cli_zarr_sets["zarr"], tmp_path / "d.zarr")
    (store / "done" / "shard-00000.json").write_text("{")
    with pytest.raises(ProbeValueError, match=r"shard 0 completion record is damaged"):
        load_set(store)


def test_gate_equals_serial(client):
    from probe.gating.run import run_gate
    from probe.gating.suite import Suite
    from tests.probe import test_gate as tg

    cloudpickle.register_pickle_by_value(tg)
    suite = Suite.from_dict(tg.suite_doc())
    a = run_gate(tg.dim_ring_model, suite, baseline=tg.ring_model, simulator=tg.RingSim())
    b = run_gate(tg.dim_ring_model, suite, baseline=tg.ring_model, simulator=tg.RingSim(),
                 client=client, chunk_size=64)  # fmt: skip
    assert a.passed == b.passed
    assert len(a.outcomes) == len(b.outcomes)
    for x, y in zip(a.outcomes, b.outcomes):
        pd.testing.assert_frame_equal(x.table, y.table, check_exact=True)


def test_study_equals_serial(client):
    from probe import study
    from tests.probe import test_study as ts

    cloudpickle.register_pickle_by_value(ts)
    cfg = study.StudyConfig(
        sizes=ts.TINY, seed=5, progress=False, experiments=("color", "psf", "mag_source_g")
    )
    models = [study.StudyModel("A", ts.ring_model)]
    a = study.run_study(ts.FakeSim(), models, config=cfg)
    b = study.run_study(ts.FakeSim(), models, config=cfg, client=client, chunk_size=64)
    assert a.results.keys() == b.results.keys()
    for key in a.results:
        pd.testing.assert_frame_equal(a.results[key].table, b.results[key].table, check_exact=True)


def test_truncated_image_shard_is_named(client, tmp_path, cli_zarr_sets):
    """A shard truncated after the store was opened is named when read."""
    store = copy_store(cli_zarr_sets["zarr"], tmp_path / "s.zarr")
    shard = store / "images" / "c" / "1" / "0" / "0" / "0"
    with load_zarr(store) as ds:
        shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
        for c in (None, client):
            with pytest.raises(ProbeValueError, match="shard 1 is truncated or corrupt"):
                Probe(mean_model, batch_size=8, client=c).predict(ds.images)


def test_resimulate_with_simlens_on_workers_equals_serial(client):
    """The real simulator pickles to the workers and renders there the serial images."""
    simlens = pytest.importorskip("simlens")
    sim = simlens.Simulator("des-sv", npix=32)
    kwargs = dict(n=6, n_nonlenses=4, rng=2)
    a = Probe(mean_model, batch_size=4).resimulate(sim, "psf_scale", [0.9, 1.3], **kwargs)
    b = Probe(mean_model, batch_size=4, client=client, chunk_size=1).resimulate(
        sim, "psf_scale", [0.9, 1.3], **kwargs
    )
    _same(a, b)


def test_open_client_workers_keep_glibc_dynamic_mmap_threshold():
    """Dask's default MALLOC_TRIM_THRESHOLD_ makes numpy-heavy chunks ~40% dearer; the
    LocalCluster that ``--workers N`` opens runs its workers without it."""
    import os

    from probe.cluster import open_client

    with open_client(2) as c:
        seen = c.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_")
        profiling = c.run(_profiler_enabled)
    assert len(seen) == 2
    assert set(seen.values()) == {os.environ.get("MALLOC_TRIM_THRESHOLD_")}
    # The statistical profiler (~7% of a chunk's CPU) is off on our workers.
    assert list(profiling.values()) == [False, False]


def _profiler_enabled():
    import dask

    return bool(dask.config.get("distributed.worker.profile.enabled"))


def _onnx_threads():
    from pathlib import Path

    import simlens
    from probe.adapters._onnx import OnnxAdapter

    path = Path(simlens.__file__).parent / "finders" / "weights" / "A.onnx"
    return OnnxAdapter(path).session.get_session_options().intra_op_num_threads


def test_onnx_on_a_worker_uses_the_workers_threads(client):
    """onnxruntime's default pool takes every core; on a one-thread Dask worker it takes one,
    so N workers on N cores do not oversubscribe the machine."""
    pytest.importorskip("onnxruntime")
    assert _onnx_threads() == 0  # outside a worker: onnxruntime's own default
    assert client.submit(_onnx_threads, pure=False).result() == 1
