"""HDF5 image sets: compound and column-group truth tables, labels, lazy images."""

from __future__ import annotations

import h5py
import numpy as np
import pytest

from probe import ProbeKeyError, ProbeValueError
from probe.adapters.datasets import load_hdf5


def test_group_truth_and_lazy_images(tmp_path):
    path = tmp_path / "g.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((3, 4, 4, 2), np.float32)
        g = f.create_group("truth")
        g["theta_E"] = [1.0, 1.5, 2.0]
        g["label"] = [1, 1, 0]
        g["kind"] = np.array([b"lens", b"lens", b"star"])
        g.attrs["columns"] = ["label", "theta_E", "kind"]
    with load_hdf5(path) as ds:
        assert isinstance(ds.images, h5py.Dataset)
        assert list(ds.truth.columns) == ["label", "theta_E", "kind"]
        assert ds.truth["kind"].tolist() == ["lens", "lens", "star"]
        np.testing.assert_array_equal(ds.labels, [1, 1, 0])


def test_labels_dataset_fallback_and_errors(tmp_path):
    path = tmp_path / "l.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 4, 4, 1), np.float32)
        f["labels"] = [0, 1]
    with load_hdf5(path) as ds:
        np.testing.assert_array_equal(ds.labels, [0, 1])
    bad = tmp_path / "b.h5"
    with h5py.File(bad, "w") as f:
        f["images"] = np.zeros((2, 4, 4, 1), np.float32)
    with pytest.raises(ProbeKeyError, match="no labels"):
        load_hdf5(bad)
    with h5py.File(bad, "a") as f:
        f["truth"] = np.zeros(3, dtype=[("label", "i8")])
    with pytest.raises(ProbeValueError, match="truth has 3 rows but images has 2"):
        load_hdf5(bad)


def test_probe_reads_h5py_dataset_in_batches(tmp_path, model):
    from probe import Probe

    gen = np.random.default_rng(0)
    images = gen.uniform(0, 1, size=(25, 5, 5, 2)).astype(np.float32)
    path = tmp_path / "d.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["labels"] = np.arange(25) % 2
    with load_hdf5(path) as ds:
        p = Probe(model, batch_size=8)
        np.testing.assert_allclose(p.predict(ds.images), model(images))


def test_reads_sets_written_by_simlens_generate(cli_sets):
    """The real file layout: /truth carries 'columns' as a JSON string, not an array."""
    import simlens

    for path in cli_sets.values():
        with h5py.File(path) as f:
            assert isinstance(f["truth"].attrs["columns"], str)
        ref = simlens.load(path)
        with load_hdf5(path) as ds:
            assert list(ds.truth.columns) == list(ref.truth.columns)
            assert len(ds.truth.columns) > 20
            np.testing.assert_array_equal(ds.labels, ref.labels)
            np.testing.assert_array_equal(ds.truth["theta_E"], ref.truth["theta_E"])
            assert ds.truth["kind"].tolist() == ref.truth["kind"].tolist()
            np.testing.assert_array_equal(ds.images[:], ref.images)


def test_columns_attribute_forms(tmp_path):
    path = tmp_path / "c.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.zeros((2, 4, 4, 1), np.float32)
        g = f.create_group("truth")
        g["label"] = [1, 0]
        g["b"] = [1.0, 2.0]
        g.attrs["columns"] = '["b"]'  # names only some: the rest follow
    with load_hdf5(path) as ds:
        assert list(ds.truth.columns) == ["b", "label"]
    with h5py.File(path, "a") as f:
        f["truth"].attrs["columns"] = "not json"
    with pytest.raises(ProbeValueError, match="neither a JSON list"):
        load_hdf5(path)
