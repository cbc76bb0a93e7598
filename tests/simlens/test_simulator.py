"""The public ``Simulator`` API: construction, datasets, provenance, render determinism, errors.

Image physics (fluxes, PSF, depth, noise, supersampling, chunking) is in ``test_render.py``;
truth-table physics and controls in ``test_sampling.py``. Stamps here are small (32 pixels).
"""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from astropy.cosmology import WMAP9, Cosmology, Planck18

import simlens
from simlens import SimlensKeyError, SimlensValueError, Simulator, Survey, load_survey
from simlens._catalogs import catalog_file
from simlens.schema import required_columns

NPIX = 32


@pytest.fixture(scope="module")
def sim():
    return Simulator("des-y3", npix=NPIX)


@pytest.fixture(scope="module")
def mixed(sim):
    """4 lenses, 3 ellipticals and 3 stars in one truth table."""
    return pd.concat(
        [
            sim.sample_lenses(4, rng=1, theta_E=(1.0, 2.0), mag_source_g=21.5),
            sim.sample_nonlenses(3, rng=1, kind="elliptical"),
            sim.sample_nonlenses(3, rng=1, kind="star"),
        ],
        ignore_index=True,
    )


# -------------------------------------------------------------------------------------------
# construction
# -------------------------------------------------------------------------------------------


def test_survey_by_name_object_or_file(tmp_path):
    by_name = Simulator(survey="des-y3", npix=NPIX)
    by_object = Simulator(survey=load_survey("des-y3"), npix=NPIX)
    path = tmp_path / "copy.toml"
    path.write_text(catalog_file("surveys", "des-y3.toml").read_text())
    by_path = Simulator(survey=path, npix=NPIX)
    by_str_path = Simulator(survey=str(path), npix=NPIX)
    assert by_name.survey == by_object.survey == by_path.survey == by_str_path.survey
    assert isinstance(by_name.survey, Survey)
    ref = by_name.sample_lenses(3, rng=2)
    for other in (by_object, by_path, by_str_path):
        pd.testing.assert_frame_equal(other.sample_lenses(3, rng=2), ref, check_exact=True)


def test_defaults_and_public_attributes():
    sim = Simulator()
    assert sim.npix == 100
    assert sim.survey.name == "des-y3"
    assert sim.bands == ("g", "r", "i", "z")
    assert isinstance(sim.cosmology, Cosmology)
    assert sim.cosmology is Planck18
    assert sim.pixel_scale == 0.263
    assert "des-y3" in repr(sim)
    assert "Planck18" in repr(sim)
    sv = Simulator("des-sv", npix=NPIX)
    assert sv.bands == ("g", "r", "i", "z")
    assert sv.survey.name == "des-sv"


def test_survey_is_frozen(sim):
    with pytest.raises(dataclasses.FrozenInstanceError):
        sim.survey.pixel_scale = 0.2  # type: ignore[misc]
    with pytest.raises(dataclasses.FrozenInstanceError):
        sim.survey.bands[0].psf_fwhm = 2.0  # type: ignore[misc]


def test_cosmology_is_recorded_in_provenance(sim):
    prov = sim.provenance()
    assert "Planck18" in prov["cosmology"]
    assert prov["version"] == simlens.__version__
    assert prov["survey"]["name"] == "des-y3"
    assert prov["npix"] == NPIX
    assert prov["bands"] == ["g", "r", "i", "z"]
    other = Simulator("des-y3", npix=NPIX, cosmology=WMAP9).provenance()
    assert "WMAP9" in other["cosmology"]


@pytest.mark.parametrize(
    ("kwargs", "error", "name"),
    [
        ({"survey": "lsst-y10"}, KeyError, "survey"),
        ({"survey": "DES-Y3 "}, KeyError, "survey"),
        ({"survey": 3}, ValueError, "survey"),
        ({"survey": "/nonexistent/survey.toml"}, ValueError, "survey"),
        ({"npix": 0}, ValueError, "npix"),
        ({"npix": 7}, ValueError, "npix"),
        ({"npix": 32.0}, ValueError, "npix"),
        ({"cosmology": "Planck18"}, ValueError, "cosmology"),
        ({"psf_profile": "airy"}, ValueError, "psf_profile"),
        ({"supersampling": 0}, ValueError, "supersampling"),
    ],
)
def test_bad_construction_names_the_parameter(kwargs, error, name):
    with pytest.raises(error, match=name) as info:
        Simulator(**kwargs)
    assert isinstance(info.value, simlens.SimlensError)


def test_unknown_survey_lists_the_available_ones():
    with pytest.raises(SimlensKeyError, match="des-y3") as info:
        Simulator("lsst-y10")
    assert "lsst-y10" in str(info.value)


# -------------------------------------------------------------------------------------------
# datasets
# -------------------------------------------------------------------------------------------


def test_lenses_dataset_shape_dtype_labels(sim):
    ds = sim.lenses(3, rng=4, theta_E=1.5)
    assert ds.images.dtype == np.float32
    assert ds.images.shape == (3, NPIX, NPIX, 4)
    assert np.isfinite(ds.images).all()
    assert len(ds.truth) == 3
    assert (ds.truth["theta_E"] == 1.5).all()
    assert list(ds.labels) == [1, 1, 1]
    assert ds.bands == sim.bands
    assert ds.meta["kind"] == "lens"
    assert ds.meta["controls"] == {"theta_E": 1.5}
    # the dataset is sample + render, nothing else
    pd.testing.assert_frame_equal(ds.truth, sim.sample_lenses(3, rng=4, theta_E=1.5))
    np.testing.assert_array_equal(ds.images, sim.render(ds.truth))


@pytest.mark.parametrize("kind", ["elliptical", "star"])
def test_nonlenses_dataset(sim, kind):
    ds = sim.nonlenses(3, rng=5, kind=kind)
    assert ds.images.dtype == np.float32
    assert ds.images.shape == (3, NPIX, NPIX, 4)
    assert list(ds.labels) == [0, 0, 0]
    assert (ds.truth["kind"] == kind).all()
    assert ds.meta["kind"] == kind
    # the object is drawn at the centre of the stamp, in every band
    clean = sim.render(ds.truth, noise=False)
    centre = clean[:, NPIX // 2 - 2 : NPIX // 2 + 2, NPIX // 2 - 2 : NPIX // 2 + 2, :]
    edge = clean[:, :4, :4, :]
    assert (centre.mean(axis=(1, 2)) > 2 * edge.mean(axis=(1, 2))).all()


def test_noise_free_dataset(sim):
    ds = sim.lenses(2, rng=6, noise=False)
    assert ds.meta["noise"] is False
    assert (ds.images >= 0).all()
    np.testing.assert_array_equal(ds.images, sim.render(ds.truth, noise=False))


def test_save_load_round_trip_with_provenance(sim, tmp_path):
    ds = sim.lenses(3, rng=7, psf_scale=(0.8, 1.2))
    path = tmp_path / "set.h5"
    ds.save(path)
    back = simlens.load(path)
    np.testing.assert_array_equal(np.asarray(back.images), ds.images)
    assert np.asarray(back.images).dtype == np.float32
    pd.testing.assert_frame_equal(back.truth, ds.truth, check_exact=True)
    np.testing.assert_array_equal(back.labels, ds.labels)
    assert back.bands == ds.bands
    meta = back.meta
    assert meta["version"] == simlens.__version__
    assert meta["survey"]["name"] == "des-y3"
    assert "Planck18" in meta["cosmology"]
    assert meta["seed"] == 7
    assert meta["controls"]["psf_scale"] == [0.8, 1.2]
    assert meta == ds.meta
    # the saved truth re-renders to the saved images
    np.testing.assert_array_equal(sim.render(back.truth), np.asarray(back.images))


def test_numpy_integer_seed_is_recorded(sim):
    ds = sim.lenses(1, rng=np.int64(7), noise=False)
    assert ds.meta["seed"] == 7
    pd.testing.assert_frame_equal(ds.truth, sim.sample_lenses(1, rng=7))


def test_lens_and_nonlens_tables_render_together(sim, mixed):
    """One table of mixed kinds renders as its parts do, row for row, noise included."""
    together = sim.render(mixed)
    parts = np.concatenate(
        [sim.render(mixed.iloc[:4]), sim.render(mixed.iloc[4:7]), sim.render(mixed.iloc[7:])]
    )
    np.testing.assert_array_equal(together, parts)
    assert together.shape == (10, NPIX, NPIX, 4)
    labels = mixed["label"].to_numpy()
    assert labels.tolist() == [1] * 4 + [0] * 6


# -------------------------------------------------------------------------------------------
# determinism
# -------------------------------------------------------------------------------------------


def test_same_seed_same_images_bit_for_bit(sim):
    a = sim.lenses(2, rng=8, theta_E=1.2)
    b = sim.lenses(2, rng=8, theta_E=1.2)
    np.testing.assert_array_equal(a.images, b.images)
    pd.testing.assert_frame_equal(a.truth, b.truth, check_exact=True)
    c = sim.lenses(2, rng=9, theta_E=1.2)
    assert not np.array_equal(a.images, c.images)


def test_render_is_deterministic_and_noise_comes_only_from_seed(sim, mixed):
    first = sim.render(mixed)
    np.testing.assert_array_equal(sim.render(mixed), first)
    np.testing.assert_array_equal(sim.render(mixed.iloc[::-1])[::-1], first)
    clean = sim.render(mixed, noise=False)
    reseeded = mixed.assign(seed=mixed["seed"] + 1)
    # the noise-free image does not depend on the seed; the noise does, and only the noise
    np.testing.assert_array_equal(sim.render(reseeded, noise=False), clean)
    other = sim.render(reseeded)
    assert not np.any(np.all(other == first, axis=(1, 2, 3)))
    noise_a, noise_b = first - clean, other - clean
    assert noise_a.std() == pytest.approx(noise_b.std(), rel=0.1)
    assert abs(np.corrcoef(noise_a.ravel(), noise_b.ravel())[0, 1]) < 0.05


def test_render_does_not_depend_on_extra_columns_or_index(sim, mixed):
    base = sim.render(mixed.iloc[:3])
    shuffled = mixed.iloc[:3][list(reversed(mixed.columns))].set_index(pd.Index([7, 3, 9]))
    shuffled = shuffled.assign(note="extra", theta_E_guess=99.0)
    np.testing.assert_array_equal(sim.render(shuffled), base)
    only_needed = mixed.iloc[:3][required_columns(sim.bands)]
    np.testing.assert_array_equal(sim.render(only_needed), base)


def test_render_does_not_modify_truth(sim, mixed):
    copy = mixed.copy(deep=True)
    sim.render(mixed.iloc[:2])
    pd.testing.assert_frame_equal(mixed, copy, check_exact=True)


# -------------------------------------------------------------------------------------------
# bad truth for render
# -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("column", ["theta_E", "seed", "psf_fwhm_z", "mag_source_unlensed_g"])
def test_render_names_a_missing_column(sim, mixed, column):
    with pytest.raises(KeyError, match=column):
        sim.render(mixed.drop(columns=[column]))


@pytest.mark.parametrize(
    ("column", "value"),
    [
        ("center_x_source", np.nan),
        ("mag_lens_r", -np.inf),  # NaN magnitudes mean "no light"; infinities are errors
        ("psf_fwhm_g", np.inf),
        ("R_sersic_lens_light", np.nan),
    ],
)
def test_render_names_a_non_finite_column(sim, mixed, column, value):
    bad = mixed.copy()
    bad.loc[2, column] = value
    with pytest.raises(SimlensValueError, match=column):
        sim.render(bad)


def test_render_rejects_non_positive_psf_and_non_tables(sim, mixed):
    bad = mixed.copy()
    bad.loc[0, "psf_fwhm_r"] = 0.0
    with pytest.raises(SimlensValueError, match="psf_fwhm"):
        sim.render(bad)
    with pytest.raises(SimlensValueError, match="truth"):
        sim.render(mixed.to_dict("list"))  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("call", "name"),
    [
        (lambda s: s.lenses(0), "n"),
        (lambda s: s.lenses(2, psf_scale=0.0), "psf_scale"),
        (lambda s: s.lenses(2, theta_E=(0.5, 20.0)), "theta_E"),
        (lambda s: s.lenses(2, mag_source_g=[21.0]), "mag_source_g"),
        (lambda s: s.nonlenses(2, kind="quasar"), "kind"),
        (lambda s: s.nonlenses(2, mag_lens_r=np.nan), "mag_lens_r"),
    ],
)
def test_dataset_constructors_reject_bad_input(sim, call, name):
    with pytest.raises(SimlensValueError, match=name):
        call(sim)


def test_unknown_control_is_rejected(sim):
    with pytest.raises(TypeError, match="sigma_v"):
        sim.lenses(2, sigma_v=200.0)


# -------------------------------------------------------------------------------------------
# survey defaults never change
# -------------------------------------------------------------------------------------------


def test_defaults_never_change_after_custom_simulators(tmp_path):
    """lenstronomy's DES config mutates module state when a custom one is built; building and
    using other simulators must leave ``Simulator("des-y3")`` output bit-identical."""
    ref_sim = Simulator("des-y3", npix=NPIX)
    ref_survey = ref_sim.survey
    ref_truth = ref_sim.sample_lenses(3, rng=10)
    ref_images = ref_sim.render(ref_truth)

    text = catalog_file("surveys", "des-y3.toml").read_text()
    assert "value = 0.263" in text
    custom = tmp_path / "custom.toml"
    custom.write_text(text.replace("value = 0.263", "value = 0.2").replace('"des-y3"', '"mine"'))
    mine = Simulator(custom, npix=48, cosmology=WMAP9, psf_profile="moffat", supersampling=2)
    assert mine.survey.pixel_scale == 0.2
    mine.lenses(2, rng=10, psf_scale=2.0)
    Simulator("des-sv", npix=NPIX).nonlenses(2, rng=10, kind="star")
    replaced = dataclasses.replace(ref_survey, name="changed", pixel_scale=0.3)
    Simulator(replaced, npix=NPIX).sample_lenses(2, rng=10)

    again = Simulator("des-y3", npix=NPIX)
    assert again.survey == ref_survey == load_survey("des-y3")
    assert again.survey.pixel_scale == 0.263
    assert again.cosmology is Planck18
    truth = again.sample_lenses(3, rng=10)
    pd.testing.assert_frame_equal(truth, ref_truth, check_exact=True)
    np.testing.assert_array_equal(again.render(truth), ref_images)
    np.testing.assert_array_equal(ref_sim.render(ref_truth), ref_images)
