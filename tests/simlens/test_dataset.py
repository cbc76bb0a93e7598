"""Tests of simlens.io.dataset: the Dataset container and its HDF5 file format."""

from __future__ import annotations

import dataclasses
import gc
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.io.atomic import atomic_path
from simlens.io.dataset import Dataset, concat, load, read_info
from simlens.io.h5format import FORMAT_NAME, FORMAT_VERSION
from simlens.io.reader import LazyImages
from simlens.io.writer import DatasetWriter

BANDS = ("g", "r", "i", "z")


def make_truth(n: int, *, start: int = 0) -> pd.DataFrame:
    """A truth table with every column dtype the format must keep."""
    k = np.arange(start, start + n)
    kinds = np.array(["lens", "elliptical", "star", "lens"])[k % 4]
    return pd.DataFrame(
        {
            "label": (kinds == "lens").astype(np.int64),
            "kind": pd.Series(kinds, dtype="str"),
            "seed": (k * 7919 + 2**62).astype(np.uint64),
            "theta_E": np.where(kinds == "lens", 1.0 + 0.01 * k, np.nan),
            "psf_fwhm_g": np.full(n, 1.1, dtype=np.float32),
            "detectable": k % 3 == 0,
            "n_images": (k % 5).astype(np.int16),
            "note": pd.Series([None if j % 4 == 1 else f"ü-{j}" for j in k], dtype=object),
            "tag": pd.Series([pd.NA if j % 4 == 2 else f"t{j}" for j in k], dtype="string"),
        }
    )


def make_dataset(n: int = 6, npix: int = 8, *, start: int = 0, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 5.0, size=(n, npix, npix, 4)).astype(np.float32)
    meta = {"survey": {"name": "des-y3", "pixel_scale": 0.263}, "seed": seed, "x": (1, 2)}
    return Dataset(images=images, truth=make_truth(n, start=start), meta=meta)


def assert_same(a: Dataset, b: Dataset) -> None:
    np.testing.assert_array_equal(
        np.asarray(a.images).view(np.uint32), np.asarray(b.images).view(np.uint32)
    )
    pd.testing.assert_frame_equal(a.truth, b.truth, check_exact=True)
    assert list(a.truth.columns) == list(b.truth.columns)
    assert list(a.truth.dtypes) == list(b.truth.dtypes)
    assert a.bands == b.bands
    assert a.meta == b.meta
    assert a.equals(b)


# --------------------------------------------------------------------------- container
def test_dataset_basics() -> None:
    ds = make_dataset(6)
    assert len(ds) == 6
    assert ds.npix == 8
    assert ds.bands == BANDS
    assert ds.images.dtype == np.float32
    np.testing.assert_array_equal(ds.labels, [1, 0, 0, 1, 1, 0])
    assert ds.labels.dtype == np.int64
    assert ds.meta["x"] == [1, 2]  # meta is normalised to JSON types
    assert "n=6" in repr(ds)
    assert "lenses=3" in repr(ds)


def test_dataset_is_frozen() -> None:
    ds = make_dataset(2)
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.images = np.zeros((2, 8, 8, 4), np.float32)  # type: ignore[misc]


def test_images_are_cast_to_float32_and_index_reset() -> None:
    truth = make_truth(3).set_index(pd.Index([10, 11, 12]))
    ds = Dataset(images=np.zeros((3, 4, 4, 4)), truth=truth)
    assert ds.images.dtype == np.float32
    assert ds.truth.index.equals(pd.RangeIndex(3))


def test_labels_need_label_column() -> None:
    ds = Dataset(images=np.zeros((2, 4, 4, 4), np.float32), truth=pd.DataFrame({"a": [1, 2]}))
    with pytest.raises(SimlensKeyError, match="label"):
        ds.labels


@pytest.mark.parametrize(
    ("images", "truth", "match"),
    [
        (np.zeros((2, 4, 4)), make_truth(2), "images"),
        (np.zeros((2, 4, 4, 4)), make_truth(3), "truth"),
        (np.full((2, 4, 4, 4), np.nan), make_truth(2), "finite"),
        (np.zeros((2, 4, 4, 4)), pd.DataFrame({"a/b": [1, 2]}), "column name"),
        (np.zeros((2, 4, 4, 4)), pd.DataFrame({"c": pd.Categorical(["a", "b"])}), "dtype"),
        (np.zeros((2, 4, 4, 4)), pd.DataFrame({"m": [1, "x"]}), "dtype"),
        (np.zeros((2, 4, 4, 3)), make_truth(2), "bands"),
        (np.zeros((2, 4, 4, 4)), {"label": [1, 0]}, "DataFrame"),
    ],
)
def test_dataset_validates(images: np.ndarray, truth: object, match: str) -> None:
    with pytest.raises(SimlensValueError, match=match):
        Dataset(images=images, truth=truth)


def test_bands_from_argument_or_meta() -> None:
    images = np.zeros((1, 4, 4, 3), np.float32)
    truth = pd.DataFrame({"label": [1]})
    assert Dataset(images, truth, bands=("g", "r", "i")).bands == ("g", "r", "i")
    assert Dataset(images, truth, meta={"bands": ["u", "g", "r"]}).bands == ("u", "g", "r")
    with pytest.raises(SimlensValueError, match="bands"):
        Dataset(images, truth, bands=("g", "g", "r"))


def test_meta_must_be_json() -> None:
    with pytest.raises(SimlensValueError, match="meta"):
        Dataset(np.zeros((1, 4, 4, 4)), make_truth(1), meta={"f": object()})
    ds = Dataset(
        np.zeros((1, 4, 4, 4)), make_truth(1), meta={"a": np.float32(1.5), "b": np.arange(2)}
    )
    assert ds.meta == {"a": 1.5, "b": [0, 1]}
    json.dumps(ds.meta)


def test_getitem_returns_datasets() -> None:
    ds = make_dataset(6)
    one = ds[2]
    assert isinstance(one, Dataset)
    assert len(one) == 1
    np.testing.assert_array_equal(one.images[0], ds.images[2])
    assert one.truth.iloc[0]["seed"] == ds.truth.iloc[2]["seed"]
    assert ds[-1].truth["seed"].iloc[0] == ds.truth["seed"].iloc[-1]
    assert len(ds[1:4]) == 3
    assert ds[1:4].truth.index.equals(pd.RangeIndex(3))
    picked = ds[[4, 0, 4]]
    np.testing.assert_array_equal(picked.images, ds.images[[4, 0, 4]])
    mask = ds.labels == 1
    assert len(ds[mask]) == 3
    assert (ds[mask].labels == 1).all()
    with pytest.raises(IndexError, match="index"):
        ds[6]
    with pytest.raises(IndexError, match="mask"):
        ds[np.array([True, False])]


def test_concat() -> None:
    a, b = make_dataset(3, seed=1), make_dataset(2, seed=2, start=3)
    both = concat([a, b])
    assert len(both) == 5
    np.testing.assert_array_equal(both.images[3:], b.images)
    pd.testing.assert_frame_equal(both.truth.iloc[3:].reset_index(drop=True), b.truth)
    assert both.meta == {"parts": [a.meta, b.meta]}
    assert Dataset.concat([a, a]).meta == a.meta
    with pytest.raises(SimlensValueError, match="datasets"):
        concat([a, make_dataset(2, npix=6)])
    with pytest.raises(SimlensValueError, match="datasets"):
        concat([])


# --------------------------------------------------------------------------- files
@pytest.mark.parametrize("compression", [None, "gzip", "lzf"])
def test_save_load_round_trip(tmp_path: Path, compression: Any) -> None:
    ds = make_dataset(7)
    out = ds.save(tmp_path / "set.h5", compression=compression)
    assert out == tmp_path / "set.h5"
    back = load(out)
    assert_same(back, ds)
    assert back.truth["kind"].dtype == ds.truth["kind"].dtype
    assert back.truth["note"].dtype == object
    assert pd.isna(back.truth["note"].iloc[1])
    assert back.truth["tag"].iloc[2] is pd.NA
    assert read_info(out)["compression"] == (compression or "none")


def test_file_layout_is_plain_hdf5(tmp_path: Path) -> None:
    ds = make_dataset(3, npix=10)
    ds.save(tmp_path / "set.h5", compression="gzip")
    with h5py.File(tmp_path / "set.h5", "r") as f:
        assert f.attrs["format"] == FORMAT_NAME
        assert f.attrs["format_version"] == FORMAT_VERSION
        assert f["images"].chunks == (1, 10, 10, 4)  # one image per chunk
        assert f["images"].dtype == np.float32
        assert f["images"].compression == "gzip"
        assert json.loads(f["truth"].attrs["columns"]) == list(ds.truth.columns)
        assert f["truth/seed"].dtype == np.uint64
        assert f["truth/kind"].asstr()[0] == "lens"
        assert json.loads(f.attrs["meta"]) == ds.meta
        writer = json.loads(f.attrs["writer"])
        assert writer["package"] == "simlens-probe"
        assert "created_utc" in writer


def test_read_info(tmp_path: Path) -> None:
    ds = make_dataset(4)
    ds.save(tmp_path / "set.h5")
    info = read_info(tmp_path / "set.h5")
    assert info["n"] == 4
    assert info["npix"] == 8
    assert info["bands"] == BANDS
    assert info["meta"] == ds.meta
    assert info["columns"] == list(ds.truth.columns)
    assert info["created_utc"].endswith("Z")


def test_empty_set_round_trip(tmp_path: Path) -> None:
    ds = make_dataset(3)[:0]
    assert len(ds) == 0
    ds.save(tmp_path / "empty.h5")
    back = load(tmp_path / "empty.h5")
    assert len(back) == 0
    assert list(back.truth.columns) == list(ds.truth.columns)
    assert list(back.truth.dtypes) == list(ds.truth.dtypes)


def test_lazy_load(tmp_path: Path) -> None:
    ds = make_dataset(9)
    ds.save(tmp_path / "set.h5")
    lazy = load(tmp_path / "set.h5", lazy=True)
    try:
        assert lazy.lazy
        assert isinstance(lazy.images, LazyImages)
        assert lazy.images.shape == (9, 8, 8, 4)
        assert lazy.equals(ds)
        for key in (3, slice(2, 7), slice(None, None, 2), [5, 1, 5], ds.labels == 1):
            assert lazy[key].equals(ds[key])
            assert not lazy[key].lazy
        np.testing.assert_array_equal(lazy.images[[8, 0]], ds.images[[8, 0]])
        np.testing.assert_array_equal(lazy.images[4], ds.images[4])
    finally:
        lazy.close()


def test_save_of_lazy_set_onto_itself(tmp_path: Path) -> None:
    ds = make_dataset(5)
    path = tmp_path / "set.h5"
    ds.save(path)
    lazy = load(path, lazy=True)
    lazy.save(path, compression="lzf")  # reads from the old inode, renames over it
    lazy.close()
    assert_same(load(path), ds)


@settings(max_examples=25, deadline=None)
@given(
    images=hnp.arrays(
        np.float32,
        st.tuples(st.integers(1, 4), st.integers(1, 5), st.just(5), st.just(2)).map(
            lambda s: (s[0], s[1], s[1], s[3])
        ),
        elements=st.floats(width=32, allow_nan=False, allow_infinity=False),
    )
)
def test_round_trip_is_bit_exact(images: np.ndarray) -> None:
    truth = pd.DataFrame({"label": np.zeros(len(images), np.int64)})
    ds = Dataset(images=images, truth=truth, bands=("g", "r"))
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "set.h5"
        ds.save(path, compression="gzip")
        assert_same(load(path), ds)


# --------------------------------------------------------------------------- streaming writer
def test_streaming_writer_equals_one_shot_save(tmp_path: Path) -> None:
    ds = make_dataset(11)
    ds.save(tmp_path / "one.h5")
    with DatasetWriter(tmp_path / "stream.h5", npix=8, bands=BANDS, meta=ds.meta) as writer:
        for start, stop in [(0, 4), (4, 5), (5, 5), (5, 11)]:
            writer.append(ds.images[start:stop], ds.truth.iloc[start:stop])
        assert writer.n == 11
        assert not (tmp_path / "stream.h5").exists()  # only renamed into place on close
    streamed = load(tmp_path / "stream.h5")
    assert_same(streamed, load(tmp_path / "one.h5"))
    assert_same(streamed, ds)


def test_writer_rejects_inconsistent_chunks(tmp_path: Path) -> None:
    ds = make_dataset(4)
    with (  # noqa: PT012
        pytest.raises(SimlensValueError, match="truth"),
        DatasetWriter(tmp_path / "s.h5", npix=8, bands=BANDS) as writer,
    ):
        writer.append(ds.images[:2], ds.truth.iloc[:2])
        writer.append(ds.images[2:], ds.truth.iloc[2:].astype({"theta_E": np.float32}))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"npix": 0}, "npix"),
        ({"npix": 8, "compression": "zip"}, "compression"),
        ({"npix": 8, "bands": ("g", "g")}, "bands"),
    ],
)
def test_writer_validates_arguments(tmp_path: Path, kwargs: dict, match: str) -> None:
    kwargs = {"bands": BANDS, **kwargs}
    with pytest.raises(SimlensValueError, match=match):
        DatasetWriter(tmp_path / "s.h5", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_writer_validates_chunks(tmp_path: Path) -> None:
    ds = make_dataset(2)
    with DatasetWriter(tmp_path / "s.h5", npix=8, bands=BANDS) as writer:
        with pytest.raises(SimlensValueError, match="images"):
            writer.append(np.zeros((2, 8, 7, 4)), ds.truth)
        with pytest.raises(SimlensValueError, match="finite"):
            writer.append(np.full((2, 8, 8, 4), np.inf), ds.truth)
        with pytest.raises(SimlensValueError, match="truth"):
            writer.append(ds.images, ds.truth.iloc[:1])
        writer.append(ds.images, ds.truth)
    assert_same(load(tmp_path / "s.h5"), Dataset(ds.images, ds.truth))


# --------------------------------------------------------------------------- atomicity
def _files(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


@pytest.mark.parametrize("error", [RuntimeError, KeyboardInterrupt])
def test_failure_mid_stream_leaves_nothing(tmp_path: Path, error: type[BaseException]) -> None:
    ds = make_dataset(4)
    target = tmp_path / "set.h5"
    make_dataset(2, seed=9).save(target)
    before = target.read_bytes()
    with pytest.raises(error), DatasetWriter(target, npix=8, bands=BANDS) as writer:  # noqa: PT012
        writer.append(ds.images[:2], ds.truth.iloc[:2])
        raise error("renderer died")
    assert target.read_bytes() == before  # the old file is untouched
    assert _files(tmp_path) == ["set.h5"]  # and no temporary file is left


def test_failed_save_leaves_existing_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "set.h5"
    old = make_dataset(3, seed=5)
    old.save(target)
    before = target.read_bytes()

    def fail(self: DatasetWriter, images: np.ndarray, truth: pd.DataFrame) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(DatasetWriter, "append", fail)
    with pytest.raises(OSError, match="disk full"):
        make_dataset(5).save(target)
    assert target.read_bytes() == before
    assert _files(tmp_path) == ["set.h5"]


def test_abandoned_writer_removes_its_temporary_file(tmp_path: Path) -> None:
    writer = DatasetWriter(tmp_path / "s.h5", npix=8, bands=BANDS)
    names = _files(tmp_path)  # the temporary file and the lock holding the writer's pid
    assert len(names) == 2
    assert names[1] == "s.h5.lock"
    assert names[0].startswith(".s.h5.")
    del writer
    gc.collect()
    assert _files(tmp_path) == []


def test_abort_and_double_close(tmp_path: Path) -> None:
    ds = make_dataset(2)
    writer = DatasetWriter(tmp_path / "s.h5", npix=8, bands=BANDS)
    writer.append(ds.images, ds.truth)
    writer.abort()
    assert _files(tmp_path) == []
    with pytest.raises(SimlensValueError, match="closed"):
        writer.append(ds.images, ds.truth)
    writer = DatasetWriter(tmp_path / "s.h5", npix=8, bands=BANDS)
    assert writer.close() == writer.close() == tmp_path / "s.h5"
    assert _files(tmp_path) == ["s.h5"]


def test_atomic_path_permissions_and_missing_directory(tmp_path: Path) -> None:
    with atomic_path(tmp_path / "x.txt") as tmp:
        tmp.write_text("hello")
    umask = os.umask(0)
    os.umask(umask)
    assert (tmp_path / "x.txt").stat().st_mode & 0o777 == 0o666 & ~umask
    with pytest.raises(FileNotFoundError, match="directory"), atomic_path(tmp_path / "nope" / "x"):
        pass


# --------------------------------------------------------------------------- reading errors
def test_load_refuses_foreign_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        load(tmp_path / "missing.h5")
    text = tmp_path / "text.h5"
    text.write_text("not hdf5")
    with pytest.raises(SimlensValueError, match="not an HDF5 file"):
        load(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["images"] = np.zeros((1, 2, 2, 4), np.float32)
    with pytest.raises(SimlensValueError, match="not a simlens set"):
        load(other)
    with pytest.raises(SimlensValueError, match="not a simlens set"):
        read_info(other)


def test_load_refuses_newer_format(tmp_path: Path) -> None:
    path = tmp_path / "set.h5"
    make_dataset(2).save(path)
    with h5py.File(path, "a") as f:
        f.attrs["format_version"] = FORMAT_VERSION + 1
    with pytest.raises(SimlensValueError, match="format_version"):
        load(path)


def test_truth_table_copy_matches_the_truth(tmp_path: Path) -> None:
    """/truth_table holds the truth as one compound table (strings as UTF-8, missing empty)."""
    ds = make_dataset(5)
    truth = ds.truth.copy()
    truth["note"] = pd.Series(["a", None, "ünï", "", "b"], dtype=object)
    path = dataclasses.replace(ds, truth=truth).save(tmp_path / "s.h5")
    with h5py.File(path) as f:
        rec = f["truth_table"][()]
    assert list(rec.dtype.names) == list(truth.columns)
    assert [v.decode("utf-8") for v in rec["note"]] == ["a", "", "ünï", "", "b"]
    for name in truth.columns:
        if truth[name].dtype.kind in "biuf":
            np.testing.assert_array_equal(rec[name], truth[name].to_numpy(), err_msg=name)
    assert load(path).truth["note"].isna().tolist() == [False, True, False, False, False]
