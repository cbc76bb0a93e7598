"""The sharded Zarr store (simlens.io.store) and simlens.generate / simlens.load on it.

Real simulator, small stamps: the store must hold exactly what an HDF5 set of the same seed
holds, for any chunk size, and refuse to be read while a shard is missing or damaged.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import zarr

import simlens
from simlens.cli import main
from simlens.errors import SimlensValueError
from simlens.io.store import missing_shards, read_manifest, verify_shard
from simlens.io.store_reader import store_bytes
from simlens.scale.generation import generate

N, NPIX, SEED = 24, 24, 5
CONTROLS = {"theta_E": (1.0, 2.0)}


def bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=np.float32).view(np.uint32)


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same seed written three ways: .h5 (chunk 16), .zarr chunk 8 and chunk 16."""
    folder = tmp_path_factory.mktemp("sets")
    out = {}
    for name, chunk in (("h5_16.h5", 16), ("z8.zarr", 8), ("z16.zarr", 16)):
        out[name] = generate(
            folder / name, N, npix=NPIX, seed=SEED, chunk=chunk, progress=False, **CONTROLS
        )
    return out


def test_store_layout_follows_the_contract(sets: dict[str, Path]) -> None:
    root = sets["z8.zarr"]
    group = zarr.open_group(store=str(root), mode="r")
    attrs = dict(group.attrs)
    assert attrs["format"] == "simlens-zarr"
    assert attrs["format_version"] == 1
    assert (attrs["n"], attrs["npix"], attrs["shard_size"], attrs["n_shards"]) == (N, NPIX, 8, 3)
    assert attrs["bands"] == ["g", "r", "i", "z"]
    provenance = json.loads(attrs["provenance"])
    assert provenance["seed"] == SEED
    assert provenance["kind"] == "lens"
    assert provenance["n"] == N
    assert "version" in provenance
    assert "survey" in provenance
    images = group["images"]
    assert images.dtype == np.float32
    assert images.shape == (N, NPIX, NPIX, 4)
    assert images.shards == (8, NPIX, NPIX, 4)
    assert images.chunks == (1, NPIX, NPIX, 4)
    parts = sorted(p.name for p in (root / "truth").iterdir())
    assert parts == ["part-00000.parquet", "part-00001.parquet", "part-00002.parquet"]
    part = pd.read_parquet(root / "truth" / "part-00001.parquet")
    assert list(part.columns) == json.loads(attrs["columns"])
    assert len(part) == 8
    assert read_manifest(root)["complete"] is True
    assert missing_shards(root, checksum=True) == []
    # lossless compression actually saves something on real images (noise-dominated)
    sizes = store_bytes(root)
    assert 0.5 < sizes["images"] / (N * NPIX * NPIX * 4 * 4) < 1.0


def test_zarr_equals_h5_bit_for_bit_for_any_chunk(sets: dict[str, Path]) -> None:
    ref = simlens.load(sets["h5_16.h5"])
    for name in ("z8.zarr", "z16.zarr"):
        ds = simlens.load(sets[name])
        assert ds.lazy  # a store opens lazily by default
        assert np.array_equal(bits(np.asarray(ds.images)), bits(ref.images))
        pd.testing.assert_frame_equal(ds.truth, ref.truth, check_exact=True)
        assert ds.bands == ref.bands
        assert ds.meta["seed"] == ref.meta["seed"]
        assert ds.meta["controls"] == ref.meta["controls"]
    # the rows are those of the library call with the same seed
    sim = simlens.Simulator(npix=NPIX)
    pd.testing.assert_frame_equal(
        sim.sample_lenses(N, rng=SEED, **CONTROLS), ref.truth, check_exact=True
    )


def test_lazy_store_images_index_and_dask(sets: dict[str, Path]) -> None:
    ds = simlens.load(sets["z8.zarr"])
    full = np.asarray(ds.images)
    assert np.array_equal(ds.images[5], full[5])
    assert np.array_equal(ds.images[[20, 3, 3]], full[[20, 3, 3]])
    assert np.array_equal(ds[7:10].images, full[7:10])
    dask_images = ds.images.to_dask()
    assert dask_images.chunks[0] == (8, 8, 8)
    assert float(dask_images.sum().compute()) == pytest.approx(float(full.sum(dtype=np.float64)))
    eager = simlens.load(sets["z8.zarr"], lazy=False)
    assert not eager.lazy
    assert np.array_equal(eager.images, full)


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_missing_and_truncated_shards_are_refused_by_name(
    sets: dict[str, Path], tmp_path: Path
) -> None:
    missing = _copy(sets["z8.zarr"], tmp_path / "missing.zarr")
    (missing / "done" / "shard-00001.json").unlink()
    with pytest.raises(SimlensValueError, match=r"shard 1: missing"):
        simlens.load(missing)

    truncated = _copy(sets["z8.zarr"], tmp_path / "truncated.zarr")
    shard = truncated / "images" / "c" / "2" / "0" / "0" / "0"
    shard.write_bytes(shard.read_bytes()[:1000])
    with pytest.raises(SimlensValueError, match=r"shard 2: file images/c/2/0/0/0 truncated"):
        simlens.load(truncated)

    gone = _copy(sets["z8.zarr"], tmp_path / "gone.zarr")
    (gone / "truth" / "part-00000.parquet").unlink()
    with pytest.raises(SimlensValueError, match=r"shard 0: file truth/part-00000.parquet missing"):
        simlens.load(gone)

    # same size, one flipped byte: only the checksum sees it
    flipped = _copy(sets["z8.zarr"], tmp_path / "flipped.zarr")
    shard = flipped / "images" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    assert not verify_shard(flipped, 0)
    assert verify_shard(flipped, 1)
    assert [k for k, _ in missing_shards(flipped, checksum=True)] == [0]


def test_resume_redoes_damaged_and_missing_shards_only(
    sets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = _copy(sets["z8.zarr"], tmp_path / "s.zarr")
    shard0 = store / "images" / "c" / "0" / "0" / "0" / "0"
    data = bytearray(shard0.read_bytes())
    data[100] ^= 0xFF
    shard0.write_bytes(bytes(data))
    (store / "done" / "shard-00002.json").unlink()
    kept = (store / "done" / "shard-00001.json").stat().st_mtime_ns
    argv = ["generate", "--n", str(N), "--npix", str(NPIX), "--seed", str(SEED), "--chunk", "8"]
    argv += ["--theta-E", "1.0:2.0", "--quiet", "--out", str(store), "--resume"]
    assert main(argv) == 0, capsys.readouterr().err
    assert (store / "done" / "shard-00001.json").stat().st_mtime_ns == kept
    ref, again = simlens.load(sets["z8.zarr"]), simlens.load(store)
    assert np.array_equal(bits(np.asarray(again.images)), bits(np.asarray(ref.images)))
    pd.testing.assert_frame_equal(again.truth, ref.truth, check_exact=True)


def _gen(out: Path, *extra: str) -> list[str]:
    return ["generate", "--n", "8", "--npix", "16", "--seed", "1", "--quiet", "--out", str(out),
            *extra]  # fmt: skip


@pytest.mark.parametrize(
    ("extra", "names"),
    [
        (["--workers", "0"], "--workers"),
        (["--chunk", "-4"], "--chunk"),
        (["--chunk", "0"], "--chunk"),
        (["--compression", "gzip"], "--compression"),
    ],
)
def test_bad_generate_input_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, extra: list[str], names: str
) -> None:
    assert main(_gen(tmp_path / "s.zarr", *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert names in err[0]
    assert list(tmp_path.iterdir()) == []


def test_zarr_path_that_is_a_file_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    path = tmp_path / "s.zarr"
    path.write_bytes(b"not a store")
    assert main(_gen(path)) == 2
    assert "is a file" in capsys.readouterr().err
    assert path.read_bytes() == b"not a store"
    with pytest.raises(SimlensValueError, match="is a file"):
        simlens.load(path)


def test_resume_with_another_configuration_is_refused(
    sets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    store = _copy(sets["z8.zarr"], tmp_path / "s.zarr")
    before = sorted((p.name, p.stat().st_mtime_ns) for p in store.rglob("*"))

    def resume(seed: int = SEED, chunk: int = 8, theta: str = "1.0:2.0") -> int:
        argv = ["generate", "--n", str(N), "--npix", str(NPIX), "--chunk", str(chunk)]
        argv += ["--seed", str(seed), "--theta-E", theta, "--quiet", "--out", str(store)]
        return main([*argv, "--resume"])

    assert resume(seed=6) == 2
    err = capsys.readouterr().err
    assert "differs in seed (stored 5, requested 6)" in err
    assert len(err.strip().splitlines()) == 1
    assert resume(theta="1.0:2.5") == 2
    assert "differs in controls" in capsys.readouterr().err
    assert resume(chunk=16) == 2
    assert "shard_size (stored 8, requested 16)" in capsys.readouterr().err
    assert sorted((p.name, p.stat().st_mtime_ns) for p in store.rglob("*")) == before


def test_existing_store_needs_overwrite_or_resume(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "s.zarr"
    assert main(_gen(out)) == 0
    first = simlens.load(out, lazy=False)
    assert main(_gen(out, "--seed", "2")) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert main(_gen(out, "--seed", "2", "--overwrite")) == 0
    assert not np.array_equal(np.asarray(simlens.load(out).images), np.asarray(first.images))
    assert main(_gen(out, "--resume", "--overwrite")) == 2
    assert main(_gen(tmp_path / "s.h5", "--resume")) == 2
    assert "--resume" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.zarr"]
    (tmp_path / "plain.zarr").mkdir()
    (tmp_path / "plain.zarr" / "keep.txt").write_text("mine")
    assert main(_gen(tmp_path / "plain.zarr", "--overwrite")) == 2
    assert (tmp_path / "plain.zarr" / "keep.txt").read_text() == "mine"
    assert "not a simlens store" in capsys.readouterr().err


def test_info_reads_a_store(sets: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    assert main(["info", str(sets["z8.zarr"]), "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert (info["n"], info["npix"], info["n_shards"], info["shard_size"]) == (N, NPIX, 3, 8)
    assert info["labels"] == {"1": N}
    assert os.fspath(sets["z8.zarr"]) == info["path"]


def test_dataset_save_writes_a_store(sets: dict[str, Path], tmp_path: Path) -> None:
    ref = simlens.load(sets["h5_16.h5"])
    out = ref.save(tmp_path / "saved.zarr")
    back = simlens.load(out)
    assert back.equals(ref)  # images bit for bit, truth values and dtypes, bands, meta
    assert zarr.open_group(store=str(out), mode="r").attrs["n_shards"] == 1
    with pytest.raises(SimlensValueError, match="DatasetWriter writes HDF5"):
        simlens.DatasetWriter(tmp_path / "w.zarr", 16, ("g", "r", "i", "z"))
    assert not (tmp_path / "w.zarr").exists()
