"""Probe: by_parameter, sweep and resimulate against synthetic models with exact answers."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import probe
from probe import Binning, Probe, ProbeKeyError, ProbeTypeError, ProbeValueError
from probe import perturbers as P


def constant_images(levels, size=6, bands=2):
    levels = np.asarray(levels, dtype=np.float32)
    return np.broadcast_to(levels[:, None, None, None], (levels.size, size, size, bands)).copy()


# -- by_parameter ----------------------------------------------------------------------------
def test_by_parameter_known_answer(model):
    """p(lens) = value / 4 encoded in the pixels: every bin mean is computed exactly."""
    gen = np.random.default_rng(0)
    values = gen.uniform(0.0, 4.0, 600)
    values[:2] = [0.0, 4.0]  # the range's ends, so the maximum must land in the last bin
    labels = (np.arange(600) % 3 != 0).astype(int)
    images = constant_images(values / 4.0)
    r = Probe(model, batch_size=64).by_parameter(
        images, labels, values, bins=Binning.uniform(0, 4, n=8), name="theta_E", unit="arcsec"
    )
    p = (images.astype(np.float64).mean(axis=(1, 2, 3))).clip(0, 1)
    s = np.where(labels == 1, p, 1 - p)
    idx = np.minimum((values / 0.5).astype(int), 7)
    for b in range(8):
        for group, sel in (("lens", labels == 1), ("nonlens", labels == 0), ("all", labels >= 0)):
            m = (idx == b) & sel
            row = r.table[(r.table.group == group) & np.isclose(r.table.value, 0.25 + 0.5 * b)]
            assert row["n"].item() == m.sum()
            assert row["mean"].item() == pytest.approx(s[m].mean(), abs=1e-12)
            assert row["std"].item() == pytest.approx(s[m].std(ddof=1), abs=1e-12)
            assert row["accuracy"].item() == pytest.approx(np.mean(s[m] > 0.5))
    assert r.bins["count"].sum() == 600
    assert r.n_dropped == 0
    assert r.table.value.iloc[0] == pytest.approx(0.25)  # labelled at the centre
    assert r.axis_label == "theta_E [arcsec]"
    # the lens curve rises with slope 1/4 per unit; the non-lens curve falls; pooled they cancel
    assert r.trend("lens").slope == pytest.approx(0.25, rel=0.02)
    assert r.trend("nonlens").slope == pytest.approx(-0.25, rel=0.02)


def test_by_parameter_int_bins_drop_and_low_count(model):
    values = np.r_[np.linspace(0, 1, 50), 5.0, -1.0]
    images = constant_images(np.full(52, 0.7))
    labels = np.ones(52, int)
    p = Probe(model, stats=probe.StatsParams(min_count=20))
    with pytest.raises(ProbeValueError, match="outside the binning range"):
        p.by_parameter(images, labels, values, bins=Binning.uniform(0, 1, n=5))
    r = p.by_parameter(images, labels, values, bins=Binning.uniform(0, 1, n=5, outside="drop"))
    assert r.n_dropped == 2
    assert r.provenance["n_dropped"] == 2
    assert r.table["low_count"].all()  # 10 per bin < 20
    assert (r.scores["bin"] == -1).sum() == 2
    r2 = p.by_parameter(images, labels, values, bins=3)
    assert r2.bins["low"].iloc[0] == -1.0
    assert r2.bins["high"].iloc[-1] == 5.0


def test_by_parameter_seeds_reproduce_and_differ(model, small_set):
    images, labels = small_set
    values = np.linspace(0, 1, 40)
    p = Probe(model)
    a = p.by_parameter(images, labels, values, bins=4, rng=3)
    b = p.by_parameter(images, labels, values, bins=4, rng=3)
    c = p.by_parameter(images, labels, values, bins=4, rng=4)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert not np.allclose(a.table.ci_low, c.table.ci_low)
    np.testing.assert_array_equal(a.table["mean"], c.table["mean"])
    assert a.provenance["seeds"]["entropy"] == 3


@settings(max_examples=15, deadline=None)
@given(st.permutations(list(range(30))), st.integers(0, 2**32))
def test_row_order_does_not_change_results(perm, seed):
    gen = np.random.default_rng(seed)
    images = gen.uniform(0, 1, size=(30, 4, 4, 1)).astype(np.float32)
    labels = gen.integers(0, 2, 30)
    values = gen.uniform(0, 10, 30)
    p = Probe(lambda x: x.mean(axis=(1, 2, 3)), batch_size=7)
    perm = np.asarray(perm)
    bins = Binning.uniform(0, 10, n=3)
    a = p.by_parameter(images, labels, values, bins=bins, rng=1)
    b = p.by_parameter(images[perm], labels[perm], values[perm], bins=bins, rng=1)
    pd.testing.assert_frame_equal(a.table, b.table, check_exact=False, rtol=1e-12)
    s1 = p.sweep(images, labels, P.GaussianBlur, [0.0, 1.0], rng=1)
    s2 = p.sweep(images[perm], labels[perm], P.GaussianBlur, [0.0, 1.0], rng=1)
    pd.testing.assert_frame_equal(s1.table, s2.table, check_exact=False, rtol=1e-12)


# -- sweep -----------------------------------------------------------------------------------
def test_sweep_disk_occlusion_known_answer(model):
    """Images of ones: under DiskOcclusion(r) p(lens) is the exact fraction of pixels kept."""
    n, size = 30, 20
    images = np.ones((n, size, size, 2), np.float32)
    labels = np.r_[np.ones(20, int), np.zeros(10, int)]
    radii = np.arange(0, 11, 2.0)
    r = Probe(model, batch_size=8).sweep(images, labels, P.DiskOcclusion, radii, rng=0)
    d = np.hypot(*(np.mgrid[0:size, 0:size] - (size - 1) / 2))
    for radius in radii:
        kept = np.mean(d >= radius)
        rows = r.table[r.table.value == radius].set_index("group")
        assert rows.loc["lens", "mean"] == pytest.approx(kept, abs=1e-12)
        assert rows.loc["nonlens", "mean"] == pytest.approx(1 - kept, abs=1e-12)
        assert rows.loc["all", "mean"] == pytest.approx((20 * kept + 10 * (1 - kept)) / 30)
        assert rows.loc["lens", "std"] == pytest.approx(0.0, abs=1e-12)
    assert r.paired
    assert r.axis_label == "DiskOcclusion radius [pixel]"
    t = r.trend("lens")
    kept_curve = np.array([np.mean(d >= x) for x in radii])
    assert t.slope == pytest.approx(np.polyfit(radii, kept_curve, 1)[0])


def test_sweep_zero_perturbation_reproduces_baseline(model, small_set):
    images, labels = small_set
    p = Probe(model)
    r = p.sweep(images, labels, P.GaussianNoise, [0.0, 0.5], rng=0)
    base = probe.correct_class_score(p.predict(images), labels)
    at0 = r.scores[r.scores.value == 0.0].sort_values("sample")["score"].to_numpy()
    np.testing.assert_array_equal(at0, base)


@settings(max_examples=10, deadline=None)
@given(st.sampled_from(["color", "blur", "noise", "disk"]), st.integers(0, 2**31))
def test_zero_value_equals_baseline_for_every_builtin(name, seed):
    gen = np.random.default_rng(seed)
    images = gen.uniform(0, 1, size=(9, 6, 6, 2)).astype(np.float32)
    labels = gen.integers(0, 2, 9)
    p = Probe(lambda x: x.mean(axis=(1, 2, 3)), batch_size=4)
    r = p.sweep(images, labels, name, [0.0], rng=seed)
    np.testing.assert_array_equal(r.scores["p_lens"], p.predict(images))


def test_sweep_seeds_reproduce(model, small_set):
    images, labels = small_set
    p = Probe(model, batch_size=16)
    a = p.sweep(images, labels, P.ColorJitter, [0.0, 0.2, 0.4], rng=5)
    b = p.sweep(images, labels, P.ColorJitter, [0.0, 0.2, 0.4], rng=np.int64(5))
    c = p.sweep(images, labels, P.ColorJitter, [0.0, 0.2, 0.4], rng=6)
    pd.testing.assert_frame_equal(a.table, b.table)
    pd.testing.assert_frame_equal(a.scores, b.scores)
    assert not a.scores["score"].equals(c.scores["score"])


def test_sweep_uses_cache_and_skips_identity(small_set):
    images, labels = small_set
    calls = []

    def counting(x):
        calls.append(len(x))
        return x.mean(axis=(1, 2, 3))

    p = Probe(counting, batch_size=10)
    p.sweep(images, labels, P.GaussianBlur, [0.0, 1.0], rng=0)
    assert sum(calls) == 80  # baseline once + sigma=1; sigma=0 reuses the baseline
    calls.clear()
    p.sweep(images, labels, P.GaussianBlur, [0.0, 2.0], rng=0)
    assert sum(calls) == 40  # baseline cached across calls


@pytest.mark.parametrize("batch_size", [16, 100, 256])
def test_sweep_memory_is_bounded_per_block(batch_size):
    """The perturber sees one block (<= 64 images) at a time and each image once per value; the
    model sees at most batch_size images: no copy of the whole set per value."""
    images = np.random.default_rng(1).uniform(0, 1, size=(200, 4, 4, 2)).astype(np.float32)
    labels = np.arange(200) % 2
    sizes, model_sizes = [], []

    def spy(x, value, rng):
        sizes.append(x.shape[0])
        return x * (1 - value)

    def model(x):
        model_sizes.append(x.shape[0])
        return x.mean(axis=(1, 2, 3))

    Probe(model, batch_size=batch_size).sweep(images, labels, spy, [0.1, 0.2, 0.3], rng=0)
    assert sizes == [64, 64, 64, 8] * 3  # 200 = 3 whole blocks + 8, each perturbed once
    assert max(model_sizes) == min(batch_size, 200)
    assert sum(model_sizes) == 4 * 200  # baseline + 3 values


def test_sweep_with_user_callable_and_names(model, small_set):
    images, labels = small_set
    r = Probe(model).sweep(
        images, labels, lambda x, v, rng: x * v, [0.5, 1.0], rng=0, name="gain", unit="x"
    )
    assert r.axis_label == "gain [x]"
    base = model(images)
    np.testing.assert_allclose(
        r.scores[r.scores.value == 0.5]["p_lens"], np.clip(base * 0.5, 0, 1), rtol=1e-6
    )


def test_sweep_rejects_nan_from_perturber(model, small_set):
    images, labels = small_set

    def bad(x, v, rng):
        y = x.copy()
        y[3, 0, 0, 0] = np.nan
        return y

    with pytest.raises(ProbeValueError, match="NaN at image index 3"):
        Probe(model).sweep(images, labels, bad, [1.0])


def test_channels_first(small_set):
    images, labels = small_set
    seen = []

    def cf_model(x):
        seen.append(x.shape)
        return x[:, 0].mean(axis=(1, 2))  # band 0 only, channels-first

    cf = np.moveaxis(images, -1, 1).copy()
    r = Probe(cf_model, channels_first=True).sweep(cf, labels, P.FlipLeftRight, [0, 1], rng=0)
    assert seen[0][1:] == (3, 10, 10)
    np.testing.assert_allclose(r.scores["p_lens"][:40], images[..., 0].mean(axis=(1, 2)))


# -- errors ----------------------------------------------------------------------------------
def test_bad_inputs_name_argument_and_problem(model, small_set):
    images, labels = small_set
    p = Probe(model)
    nan_images = images.copy()
    nan_images[3, 1, 1, 0] = np.nan
    with pytest.raises(ProbeValueError, match="images contain NaN at index 3"):
        p.sweep(nan_images, labels, P.GaussianBlur, [1.0])
    p.predict(images)  # now something is cached: the NaN is found while hashing instead
    with pytest.raises(ProbeValueError, match="images contain NaN at index 3"):
        p.sweep(nan_images, labels, P.GaussianBlur, [1.0])
    inf_images = images.copy()
    inf_images[7, 0, 0, 2] = np.inf
    with pytest.raises(ProbeValueError, match="images contain inf at index 7"):
        Probe(model).predict(inf_images)
    with pytest.raises(ProbeValueError, match="labels has length 39 but images has 40"):
        p.sweep(images, labels[:-1], P.GaussianBlur, [1.0])
    bad_labels = labels.copy()
    bad_labels[5] = 2
    with pytest.raises(ProbeValueError, match="labels must be 0 or 1; got 2 at index 5"):
        p.sweep(images, bad_labels, P.GaussianBlur, [1.0])
    with pytest.raises(ProbeValueError, match="values is empty"):
        p.sweep(images, labels, P.GaussianBlur, [])
    with pytest.raises(ProbeValueError, match="duplicate"):
        p.sweep(images, labels, P.GaussianBlur, [1.0, 1.0])
    with pytest.raises(ProbeKeyError, match="unknown perturber 'smudge'"):
        p.sweep(images, labels, "smudge", [1.0])
    with pytest.raises(ProbeTypeError, match="not the instance"):
        p.sweep(images, labels, P.GaussianBlur(1.0), [1.0])
    with pytest.raises(ProbeValueError, match="sigma must be finite and >= 0"):
        p.sweep(images, labels, P.GaussianBlur, [1.0, -1.0])
    with pytest.raises(ProbeTypeError, match="images must be 4-D"):
        p.sweep(images[0], labels, P.GaussianBlur, [1.0])
    with pytest.raises(ProbeValueError, match="values contain nan at index 1"):
        p.by_parameter(images, labels, np.r_[0.0, np.nan, np.zeros(38)], bins=2)
    with pytest.raises(ProbeValueError, match="batch_size must be >= 1"):
        Probe(model, batch_size=0)


# -- resimulate ------------------------------------------------------------------------------
def expected_scores(truth: pd.DataFrame, psf: float) -> np.ndarray:
    p = np.clip(truth["brightness"].to_numpy() / psf, 0, 1)
    return np.where(truth["label"].to_numpy() == 1, p, 1 - p)


def test_resimulate_paired_known_answer(model, fake_sim):
    values = [0.6, 1.0, 2.0, 3.0]
    r = Probe(model, batch_size=16).resimulate(fake_sim, "psf_scale", values, n=40, rng=0)
    assert max(fake_sim.render_calls) <= 16
    lenses = fake_sim.sample_lenses(40, rng=probe.rng.child(0, 2, 0))
    nonlenses = fake_sim.sample_nonlenses(40, rng=probe.rng.child(0, 2, 1))
    for v in values:
        rows = r.table[r.table.value == v].set_index("group")
        assert rows.loc["lens", "mean"] == pytest.approx(expected_scores(lenses, v).mean())
        assert rows.loc["nonlens", "mean"] == pytest.approx(expected_scores(nonlenses, v).mean())
        assert rows.loc["all", "n"] == 80
    assert r.paired
    assert r.kind == "resimulate"
    assert r.trend("lens").slope < 0 < r.trend("nonlens").slope
    assert r.provenance["data"]["n_nonlenses"] == 40


def test_resimulate_unpaired_draws_fresh_systems(model, fake_sim):
    r = Probe(model).resimulate(fake_sim, "psf_scale", [1.0, 2.0], n=30, rng=1, paired=False)
    a = r.scores[r.scores.value == 1.0]["p_lens"].to_numpy()
    b = r.scores[r.scores.value == 2.0]["p_lens"].to_numpy()
    assert not np.allclose(a * 1.0, b * 2.0)  # different systems, not the same ones dimmed
    assert not r.paired
    assert "least squares over images" in r.trend("all").method
    assert "weighted least squares" in r.trend("all", method="weighted").method


def test_resimulate_lens_only_parameter(model, fake_sim):
    p = Probe(model)
    r = p.resimulate(fake_sim, "theta_E", [1.0, 2.0], n=10, n_nonlenses=0, rng=0, paired=False)
    assert r.groups == ("lens", "all")
    with pytest.raises(ProbeValueError, match="pass n_nonlenses=0"):
        p.resimulate(fake_sim, "theta_E", [1.0, 2.0], n=10, rng=0, paired=False)


def test_resimulate_seeds_reproduce(model, fake_sim):
    p = Probe(model)
    a = p.resimulate(fake_sim, "psf_scale", [1.0, 1.5], n=12, rng=9)
    b = p.resimulate(fake_sim, "psf_scale", [1.0, 1.5], n=12, rng=9)
    pd.testing.assert_frame_equal(a.table, b.table)
    assert a.provenance["data"]["hash"] == b.provenance["data"]["hash"]


def test_resimulate_validates_sim_and_arguments(model, fake_sim):
    p = Probe(model)
    with pytest.raises(ProbeTypeError, match="lacks sample_lenses, sample_nonlenses, render, vary"):
        p.resimulate(object(), "psf_scale", [1.0])
    with pytest.raises(ProbeValueError, match="n must be >= 1"):
        p.resimulate(fake_sim, "psf_scale", [1.0], n=0)
    with pytest.raises(ProbeValueError, match="values is empty"):
        p.resimulate(fake_sim, "psf_scale", [])
    with pytest.raises(ProbeValueError, match="controls must not contain"):
        p.resimulate(fake_sim, "psf_scale", [1.0], controls={"psf_scale": 2.0})
    assert isinstance(fake_sim, probe.SimulatorProtocol)


def test_resimulate_separate_lens_and_nonlens_controls(make_sim, model):
    """Lens-only controls go to the lens sampler only; a wrong routing names the controls,
    not the varied parameter."""
    seen: dict[str, list[dict]] = {"lens": [], "nonlens": []}

    class Recording(make_sim):
        def sample_lenses(self, n, *, rng, **kw):
            seen["lens"].append(kw)
            return super().sample_lenses(n, rng=rng, **kw)

        def sample_nonlenses(self, n, *, rng, **kw):
            seen["nonlens"].append(kw)
            return super().sample_nonlenses(n, rng=rng, **kw)

    p = Probe(model, progress=False)
    with pytest.raises(ProbeValueError, match=r"'psf_scale' and controls 'theta_E' for non-lenses"):
        p.resimulate(Recording(), "psf_scale", [1.0, 2.0], n=8, controls={"theta_E": 1.5}, rng=0)
    seen["lens"].clear()
    seen["nonlens"].clear()
    r = p.resimulate(
        Recording(), "psf_scale", [1.0, 2.0], n=8, rng=0, paired=False,
        lens_controls={"theta_E": 1.5}, nonlens_controls={},
    )  # fmt: skip
    assert all(kw.get("theta_E") == 1.5 for kw in seen["lens"])
    assert all("theta_E" not in kw for kw in seen["nonlens"])
    assert r.provenance["simulator"]["lens_controls"] == {"theta_E": "1.5"}
    with pytest.raises(ProbeValueError, match="lens_controls must not contain the varied"):
        p.resimulate(Recording(), "theta_E", [1.0, 2.0], n=8, lens_controls={"theta_E": 1.0})


def test_by_category_multiclass_reports_the_true_class_score():
    """A 3-class model (elliptical, lens, spiral): each image's score is its own class's
    probability; flagged uses p(lens)."""
    gen = np.random.default_rng(3)
    probs = gen.dirichlet([1.0, 1.0, 1.0], size=30)
    images = np.zeros((30, 2, 2, 1), np.float32)
    images[:, 0, 0, 0] = np.arange(30)  # the model looks its row up by the first pixel

    def model(x):
        return probs[np.asarray(x)[:, 0, 0, 0].astype(int)]

    kinds = np.array(["elliptical", "lens", "spiral"] * 10, dtype=object)
    labels = (kinds == "lens").astype(int)
    classes = {"elliptical": 0, "lens": 1, "spiral": 2}
    r = Probe(model, progress=False, batch_size=7).by_category(
        images, labels, kinds, name="kind", rng=0, classes=classes
    )
    col = np.array([classes[k] for k in kinds])
    np.testing.assert_allclose(r.scores["score"], probs[np.arange(30), col])
    np.testing.assert_allclose(r.scores["p_lens"], probs[:, 1])
    spiral = r.table[(r.table.category == "spiral") & (r.table.group == "nonlens")]
    assert spiral["mean"].item() == pytest.approx(probs[kinds == "spiral", 2].mean())
    assert spiral["flagged"].item() == pytest.approx(np.mean(probs[kinds == "spiral", 1] >= 0.5))
    with pytest.raises(ProbeValueError, match="no output column for category 'spiral'"):
        Probe(model, progress=False).by_category(
            images, labels, kinds, classes={"elliptical": 0, "lens": 1}
        )
