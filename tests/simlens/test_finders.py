"""Reference finders A, B and C: shipped weights load as Keras models of the right shape; A's
blanked centres stay non-lenses; C reaches its bar on fresh LensPop-detectable lenses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from simlens import finders


def test_import_simlens_does_not_import_tensorflow():
    code = (
        "import sys, simlens, simlens.finders; "
        "bad = [m for m in ('tensorflow', 'keras') if m in sys.modules]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize("name", finders.NAMES)
def test_weights_and_record_ship(name):
    path = finders.weights_path(name)
    assert path.is_file()
    assert path.stat().st_size < 5e6  # "a few MB at most"
    record = finders.training_record(name)
    assert record["network"] == name
    assert record["survey"] == (finders.C_SURVEY if name == "C" else "des-sv")
    for key in ("positives", "negatives", "seeds", "epochs", "val_auc", "test", "time_s"):
        assert key in record
    json.dumps(record)


def test_unknown_name_raises():
    with pytest.raises(ValueError, match="finder name"):
        finders.weights_path("D")


@pytest.mark.tf
@pytest.mark.parametrize("name", finders.NAMES)
def test_load_shape_range_and_determinism(name):
    pytest.importorskip("tensorflow")
    model = finders.load(name)
    assert tuple(model.input_shape) == (None, 100, 100, 4)
    assert tuple(model.output_shape) == (None, 1)
    rng = np.random.default_rng(0)
    x = rng.normal(0, 10, (6, 100, 100, 4)).astype(np.float32)
    x[:3, 45:55, 45:55] += 300.0  # a bright "galaxy" in three of them
    p1 = np.asarray(model(x, training=False))
    p2 = np.asarray(finders.load(name)(x, training=False))
    assert p1.shape == (6, 1)
    assert np.all((p1 >= 0) & (p1 <= 1))
    np.testing.assert_allclose(p1, p2, rtol=0, atol=1e-6)


@pytest.mark.tf
def test_build_save_load_roundtrip(tmp_path):
    pytest.importorskip("tensorflow")
    model = finders.build_model(seed=1)
    x = np.random.default_rng(1).normal(0, 10, (2, 100, 100, 4)).astype(np.float32)
    model.save(tmp_path / "m.keras")
    from simlens.finders._model import load_keras

    again = load_keras(tmp_path / "m.keras")
    np.testing.assert_allclose(
        np.asarray(model(x, training=False)), np.asarray(again(x, training=False)), atol=1e-6
    )
    assert model.get_layer("stretch").get_config()["scale"] == again.get_layer("stretch").scale


@pytest.mark.tf
def test_colour_residual_removes_a_constant_colour_galaxy():
    """A galaxy with the same profile in every band leaves no residual; a g-only arc stays."""
    pytest.importorskip("tensorflow")
    from simlens.finders._model import ColourResidual

    yy, xx = np.mgrid[:100, :100] - 49.5
    r = np.hypot(yy, xx)
    galaxy = 5000.0 * np.exp(-r / 4.0)
    arc = 30.0 * np.exp(-0.5 * ((r - 12.0) / 1.5) ** 2) * (xx > 0)
    colours = np.array([0.3, 0.6, 1.0, 1.2])  # g r i z relative to i
    x = (galaxy[None, :, :, None] * colours).astype(np.float32)
    x_arc = x.copy()
    x_arc[0, :, :, 0] += arc
    out = np.asarray(ColourResidual()(np.concatenate([x, x_arc])))
    assert out.shape == (2, 100, 100, 2)
    assert np.abs(out[0]).max() < 1e-3 * galaxy.max()
    # the arc survives in g (alpha is fitted on the centre, where the arc is faint)
    np.testing.assert_allclose(out[1, :, :, 0], arc, atol=0.02 * arc.max())
    np.testing.assert_allclose(out[1, :, :, 1], 0.0, atol=1e-3 * galaxy.max())


@pytest.mark.tf
@pytest.mark.slow
def test_shipped_finders_reach_their_auc_bar_on_fresh_sets():
    """Issue 5's bar (AUC >= 0.95 on each network's own task) on sets drawn with a seed not used
    in training; 200 lenses give an AUC standard error of ~0.01, hence the 0.93 floor here."""
    pytest.importorskip("tensorflow")
    from scipy.stats import mannwhitneyu

    import simlens

    sim = simlens.Simulator(finders.SURVEY, psf_profile=finders.TRAINING_PSF)
    lenses = sim.sample_lenses(200, rng=987, **finders.TRAINING_LENSES)
    x_lens = sim.render(lenses)
    negatives = {
        "A": sim.render(sim.unlensed(sim.sample_lenses(200, rng=988, **finders.TRAINING_LENSES))),
        "B": sim.render(sim.sample_nonlenses(200, rng=989, kind="field")),
    }
    for name, x_neg in negatives.items():
        model = finders.load(name)
        p_lens = np.asarray(model(x_lens, training=False)).ravel()
        p_neg = np.asarray(model(x_neg, training=False)).ravel()
        auc = mannwhitneyu(p_lens, p_neg).statistic / (len(p_lens) * len(p_neg))
        assert auc >= 0.93, (name, auc)
        assert finders.training_record(name)["test"]["passes"]


def test_training_and_study_psf_stay_gaussian():
    """The paper's networks were trained on a Gaussian PSF: the finders' preset, the training
    script and the study's default survey keep it, though des-y3 now defaults to a Moffat."""
    import simlens

    assert finders.TRAINING_PSF == "gaussian"
    assert simlens.Simulator(finders.SURVEY).psf_profile == "gaussian"
    assert simlens.Simulator("des-y3").psf_profile == "moffat"
    # the study's CLI default simulator is the finders' training preset
    from probe.cli import _parser

    args = _parser().parse_args(["study", "--model", "m.keras", "--out", "o"])
    assert args.survey == finders.SURVEY
    # the training script builds its simulator with the training PSF
    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "scripts"))
    try:
        import train_reference
    finally:
        sys.path.pop(0)
    assert train_reference._sim().psf_profile == "gaussian"


@pytest.mark.tf
def test_regularised_colour_residual_on_an_empty_centre():
    """A blanked (all-zero) centre or an all-zero image gives a finite residual: the fitted
    colour falls back to the prior, where the unregularised fit is a ratio of noise or 0/0."""
    pytest.importorskip("tensorflow")
    from simlens.finders._model import PRIOR_COLOUR, ColourResidual

    yy, xx = np.mgrid[:100, :100] - 49.5
    r = np.hypot(yy, xx)
    galaxy = 5000.0 * np.exp(-r / 4.0)
    colours = np.array([0.1, 0.4, 1.0, 1.2])
    x = (galaxy[None, :, :, None] * colours).astype(np.float32)
    x = np.concatenate([x, x, np.zeros_like(x)])
    x[1, r < 20] = 0.0  # centre blanked, as probe.perturbers.DiskOcclusion(20) does
    layer = ColourResidual(prior_colour=PRIOR_COLOUR)
    out = np.asarray(layer(x))
    assert np.all(np.isfinite(out))
    # bright centre: the data win (residual ~ 0, as the unregularised fit)
    assert np.abs(out[0]).max() < 2e-3 * galaxy.max()
    # blanked centre: alpha -> the prior colour, so the halo's residual is x_b - a0 x_i exactly
    # up to the prior's pull (sum(w x_i^2) ~ 0 there)
    for k, a0 in enumerate(PRIOR_COLOUR):
        expect = x[1, ..., k] - a0 * x[1, ..., 2]
        np.testing.assert_allclose(out[1, ..., k], expect, atol=1e-3 * np.abs(expect).max())
    assert np.all(out[2] == 0.0)
    # the layer's config round-trips; without prior_colour it is the old fit (finder B)
    assert ColourResidual.from_config(layer.get_config()).prior_colour == PRIOR_COLOUR
    assert "prior_colour" not in ColourResidual().get_config()
    with pytest.raises(ValueError, match="prior_colour"):
        ColourResidual(prior_colour=(0.1,))


@pytest.mark.tf
def test_finders_colour_fit_versions():
    """B keeps the unregularised colour fit it was trained with (its saved file has no
    prior_colour, so it loads and scores as before); A and C use the regularised fit."""
    pytest.importorskip("tensorflow")
    from simlens.finders._model import PRIOR_COLOUR

    for name in finders.NAMES:
        layer = finders.load(name).get_layer("residual")
        assert layer.prior_colour == (None if name == "B" else PRIOR_COLOUR), name
        assert finders.training_record(name).get("colour_residual_prior") == (
            None if name == "B" else list(PRIOR_COLOUR)
        )


#: Disk radii of the study's occlusion experiment (probe.study, "disk"), pixels.
DISK_RADII = np.arange(0.0, 35.01, 2.5)
#: Largest fraction of non-lenses finder A may score above 0.5 at any disk radius: measured
#: maxima over the radii (scripts/finder_occlusion.py, 200 per set: 10% unlensed, 36% field at
#: 5 px; 22% of the field already at 0 px, as A was trained against matched negatives, not the
#: field) plus ~2.5 binomial sigma at n = 96. Before the fix: 84-100% of both at >= 15 px.
MAX_FRACTION_ABOVE = {"unlensed": 0.2, "field": 0.5}


@pytest.mark.tf
@pytest.mark.slow
def test_blanking_the_centre_never_makes_a_non_lens_look_like_a_lens():
    """Finder A on fresh non-lenses (the study's lenses without their source, and field
    non-lenses), centre blanked by DiskOcclusion at every radius of the study's grid: mean
    p(lens) < 0.5 at every radius, and few single images above 0.5. The retrained A before its
    fix scored 0.93 on the same images at radii >= 20 px (every image above 0.5)."""
    pytest.importorskip("tensorflow")
    import simlens
    from probe.perturbers import DiskOcclusion

    sim = simlens.Simulator(finders.SURVEY, psf_profile=finders.TRAINING_PSF)
    sets = {
        "unlensed": sim.render(
            sim.unlensed(sim.sample_lenses(96, rng=4321, **finders.TRAINING_LENSES))
        ),
        "field": sim.render(sim.sample_nonlenses(96, rng=4322, kind="field")),
    }
    model = finders.load("A")
    bound = {"unlensed": MAX_FRACTION_ABOVE["unlensed"], "field": MAX_FRACTION_ABOVE["field"]}
    for kind, x in sets.items():
        for r in DISK_RADII:
            xr = DiskOcclusion(float(r))(x) if r > 0 else x
            p = np.asarray(model(xr, training=False)).ravel()
            assert p.mean() < 0.5, (kind, r, p.mean())
            assert (p > 0.5).mean() <= bound[kind], (kind, r, (p > 0.5).mean())


@pytest.mark.tf
@pytest.mark.slow
def test_finder_c_reaches_its_bar_on_fresh_detectable_lenses():
    """C's record: AUC >= 0.95 on 2,000 fresh detectable lenses vs 2,000 field non-lenses, with
    a bootstrap interval; recomputed here on 300 + 300 drawn with seeds not used in training
    (AUC standard error ~0.01 at that size, hence the 0.92 floor)."""
    pytest.importorskip("tensorflow")
    from scipy.stats import mannwhitneyu

    import simlens

    rec = finders.training_record("C")
    test = rec["test"]
    assert test["n_lenses"] >= 2000
    assert test["n_negatives"] >= 2000
    assert test["auc"] >= 0.95
    lo, hi = test["auc_interval_95"]
    assert lo <= test["auc"] <= hi
    assert test["passes"]
    used = set(rec["seeds"].values())
    seeds = (5511, 5512)
    assert not used & set(seeds)
    sim = simlens.Simulator(finders.C_SURVEY)
    assert sim.psf_profile == "moffat"
    lenses = sim.sample_lenses(300, rng=seeds[0], detectable=True)
    assert lenses["detectable"].all()
    x_lens = sim.render(lenses)
    x_neg = sim.render(sim.sample_nonlenses(300, rng=seeds[1], kind="field"))
    model = finders.load("C")
    p_lens = np.asarray(model(x_lens, training=False)).ravel()
    p_neg = np.asarray(model(x_neg, training=False)).ravel()
    auc = mannwhitneyu(p_lens, p_neg).statistic / (len(p_lens) * len(p_neg))
    assert auc >= 0.92, auc
