"""The paper's study end to end on a tiny synthetic simulator and model, and the verdict rule."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from probe import study
from probe.errors import ProbeValueError
from probe.studies import report, summary
from probe.studies.run import min_bin_count
from probe.studies.simulation import RenderCache, stratified

N = 16  # stamp size of the fake simulator


class FakeSim:
    """A 16x16x2 'simulator' satisfying probe.SimulatorProtocol: lenses are rings, fast."""

    def __init__(self, **settings):
        self.settings = settings

    def _table(self, n, rng, label, **c):
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)

        def draw(name, lo, hi):
            v = c.get(name)
            if v is None:
                return gen.uniform(lo, hi, n)
            if isinstance(v, tuple):
                return gen.uniform(v[0], v[1], n)
            if np.ndim(v):  # per-object array (the study's stratified draws)
                return np.asarray(v, dtype=float)
            return np.full(n, float(v))

        return pd.DataFrame(
            {
                "label": label,
                "theta_E": draw("theta_E", 1.0, 2.7) * label,
                "mag_lens_r": draw("mag_lens_r", 18, 22),
                "mag_source_g": draw("mag_source_g", 20, 23),
                "psf_scale": np.full(n, float(c.get("psf_scale", 1.0))),
                "seed": gen.integers(0, 2**31, n),
            }
        )

    def sample_lenses(self, n, *, rng, detectable=False, **c):
        return self._table(n, rng, 1, **c)

    def sample_nonlenses(self, n, *, rng, kind="elliptical", **c):
        assert kind in ("elliptical", "star")
        return self._table(n, rng, 0, **c)

    def render(self, truth, *, noise=True):
        yy, xx = np.mgrid[:N, :N] - (N - 1) / 2
        d = np.hypot(xx, yy)
        out = np.empty((len(truth), N, N, 2), np.float32)
        for k, row in enumerate(truth.itertuples()):
            g = np.random.default_rng(int(row.seed))
            lens = np.exp(-d / 2.0)
            ring = row.label * np.exp(-((d - 2 * row.theta_E) ** 2) / row.psf_scale)
            out[k, :, :, 0] = lens + 0.1 * g.normal(size=d.shape)
            out[k, :, :, 1] = ring + lens * 0.3 + 0.1 * g.normal(size=d.shape)
        return out

    def vary(self, truth, name, value):
        out = truth.copy()
        out[name] = float(value)
        return out


def ring_model(images):
    """p(lens) from the ring band's excess over the lens band (a crude 'finder')."""
    x = np.asarray(images, dtype=np.float64)
    excess = x[..., 1].mean(axis=(1, 2)) - 0.3 * x[..., 0].mean(axis=(1, 2))
    return 1.0 / (1.0 + np.exp(-(excess - 0.05) * 60))


TINY = study.StudySizes(n_sweep=20, n_theta_E=20, n_mag=16, n_psf=6, smoke=True)
# One experiment of each kind (sweep, re-simulation, binned) keeps the test fast: each figure
# costs ~1 s of matplotlib.
SOME = ("color", "psf", "mag_source_g", "disk")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    out = tmp_path_factory.mktemp("study")
    models = [
        study.StudyModel("A", ring_model, {"elliptical": 1.0}),
        study.StudyModel("B", ring_model, {"elliptical": 0.5, "star": 0.5}),
    ]
    cfg = study.StudyConfig(sizes=TINY, seed=3, progress=False, experiments=SOME)
    res = study.run_study(FakeSim(), models, out, config=cfg)
    return res, out


def test_smoke_study_writes_report(smoke):
    res, out = smoke
    names = list(SOME)
    assert set(res.results) == {(m, e) for m in ("A", "B") for e in names}
    html = (out / "report.html").read_text()
    # one figure per experiment, plus the selection function of the one binned experiment,
    # plus one gallery per experiment and model
    assert html.count("data:image/png;base64,") == len(names) + 1
    assert html.count("<img alt='gallery ") == 2 * len(names)
    assert html.count("data:image/jpeg;base64,") == 2 * len(names)
    assert len(list((out / "galleries").glob("*.jpg"))) == 2 * len(names)
    assert "Completeness against mag_source_g" in html
    for m in ("A", "B"):
        sel = pd.read_parquet(out / "selection" / f"{m}_mag_source_g.parquet")
        assert list(sel.columns[:6]) == ["value", "threshold", "n", "completeness", "ci_low",
                                         "ci_high"]  # fmt: skip
    for e in names:
        assert (out / "figures" / f"{e}.png").stat().st_size > 1000
        for m in ("A", "B"):
            assert (out / "results" / f"{m}_{e}.parquet").is_file()
            assert (out / "results" / f"{m}_{e}.csv").is_file()
    for f in ("summary.csv", "summary.parquet", "table2.csv", "table2.md", "study.json"):
        assert (out / f).is_file()


def test_smoke_summary_rows(smoke):
    _, out = smoke
    t2 = pd.read_csv(out / "table2.csv")
    expected = {(e, m) for e in SOME for m in ("A", "B")}
    assert set(zip(t2["experiment"], t2["model"])) == expected
    assert set(t2["verdict"]) <= set(summary.FAMILY)
    assert set(t2["family_agree"]) <= {"yes", "no", "n/a"}
    # one row per claim of the paper about A or B in these experiments, each judged
    from probe.studies import claims as paper_claims

    claims = [c for c in paper_claims.CLAIMS if c.experiment in SOME]
    assert len(t2) == len(claims)
    assert set(t2["judgement"]) <= set(paper_claims.STATES)
    # the tiny sets (6 re-simulated lenses) cannot test the PSF claims, and say why
    psf = t2[t2.experiment == "psf"]
    assert (psf["judgement"] == "not testable").all()
    assert psf["reason"].str.contains("only 6 images").all()
    assert "not testable" in (out / "table2.md").read_text()
    long = pd.read_parquet(out / "summary.parquet")
    # lens-only experiments have only the lens group; sweeps have all three
    assert set(long[long.experiment == "mag_source_g"]["group"]) == {"lens"}
    assert set(long[long.experiment == "color"]["group"]) == {"lens", "nonlens", "all"}
    # the ring model ignores colour balance only partly, but occluding everything kills it
    disk = long[(long.experiment == "disk") & (long.group == "lens") & (long.model == "A")]
    assert float(disk["mean_last"].iloc[0]) < float(disk["mean_first"].iloc[0])


def test_study_selection_uses_the_study_scores(smoke):
    from probe.studies.study_selection import study_negatives, study_selection

    res, _ = smoke
    sel = study_selection(res, thresholds=(0.5,), fpr=(0.1, 0.01))
    assert set(sel) == {"mag_source_g"}
    assert set(sel["mag_source_g"]) == {"A", "B"}
    for m in ("A", "B"):
        sf = sel["mag_source_g"][m]
        lens = res.results[(m, "mag_source_g")].scores
        colour = res.results[(m, "color")].scores
        neg = colour[(colour["label"] == 0) & (colour["value"] == 0.0)]["p_lens"].to_numpy()
        np.testing.assert_array_equal(np.sort(study_negatives(res, m)), np.sort(neg))
        assert len(neg) == TINY.n_sweep
        ov = sf.overall.set_index("threshold_label")
        # 20 negatives resolve a 10% false-positive rate, not 1% (skipped)
        assert list(ov.index) == ["0.5", "fpr=0.1"]
        assert ov.loc["0.5", "completeness"] == pytest.approx((lens["p_lens"] >= 0.5).mean())
        assert ov.loc["fpr=0.1", "fpr"] <= 0.1
        assert sf.table["n"].groupby(sf.table["threshold_label"]).sum().iloc[0] == len(lens)


def test_report_with_yields(smoke, tmp_path):
    from types import SimpleNamespace

    from probe.yields import Stratum, SurveyYields, expected_yield

    res, _ = smoke
    sky = SimpleNamespace(
        survey="des-y3", area_deg2=5000.0, strong_per_deg2=100.0, detectable_per_deg2=1.2,
        detectable_low=1.0, detectable_high=1.4, n_detectable=6000.0, n_detectable_low=5000.0,
        n_detectable_high=7000.0, lenspop_prediction=2400.0,
        as_dict=lambda: {"survey": "des-y3", "area_deg2": 5000.0},
    )  # fmt: skip
    st = [Stratum("detectable", 1.2, 0.1, np.linspace(0, 1, 11))]
    y = [expected_yield(st, 5000.0, 0.5, rng=0)]
    ylds = SurveyYields(sky, {"A": y}, 11, 0, {"A": y})
    path = report.write_report(res, tmp_path, yields=ylds)
    html = path.read_text()
    assert "Expected yields over des-y3" in html
    assert "LensPop" in html
    # the three questions, each with its definition, and a table for each yield
    from html import escape

    from probe.yields import QUESTIONS

    for q in QUESTIONS.values():
        assert escape(q) in html
    assert "Detectable lenses found at threshold p" in html
    assert "All strong lenses flagged at threshold p" in html
    # 6 of 11 scores reach 0.5: 1.2 deg^-2 x 5000 deg^2 x 6/11
    assert f"{1.2 * 5000 * 6 / 11:.0f}" in html
    doc = __import__("json").loads((tmp_path / "yields.json").read_text())
    assert doc["yields"]["A"][0]["threshold"] == 0.5


class UnlensingSim(FakeSim):
    def unlensed(self, truth):
        out = truth.copy()
        out["label"] = 0
        return out


def test_unlensed_kind_draws_matched_negatives():
    cfg = study.StudyConfig(sizes=TINY, seed=4, progress=False, experiments=("color", "psf"))
    models = [study.StudyModel("A", ring_model, {study.UNLENSED: 1.0})]
    res = study.run_study(UnlensingSim(), models, None, config=cfg)
    for e in ("color", "psf"):
        s = res.results[("A", e)].scores
        # lenses without their ring: the ring model calls them non-lenses, lenses lenses
        assert s[s.label == 0]["p_lens"].mean() < 0.2 < 0.8 < s[s.label == 1]["p_lens"].mean()
    with pytest.raises(ProbeValueError, match="unlensed"):
        study.run_study(FakeSim(), models, None, config=cfg)


def test_study_is_seeded(tmp_path):
    cfg = study.StudyConfig(sizes=TINY, seed=5, progress=False, experiments=("color", "psf"))
    m = [study.StudyModel("A", ring_model)]
    r1 = study.run_study(FakeSim(), m, config=cfg)
    r2 = study.run_study(FakeSim(), m, config=cfg)
    for key in r1.results:
        pd.testing.assert_frame_equal(r1.results[key].table, r2.results[key].table)


def test_study_rejects_bad_input():
    with pytest.raises(ProbeValueError, match="models is empty"):
        study.run_study(FakeSim(), [])
    bad = study.StudyConfig(sizes=TINY, experiments=("colour",), progress=False)
    with pytest.raises(ProbeValueError, match="unknown experiments"):
        study.run_study(FakeSim(), [study.StudyModel("A", ring_model)], config=bad)
    ok = study.StudyConfig(sizes=TINY, experiments=("color",), progress=False)
    with pytest.raises(ProbeValueError, match="nonlens_kinds"):
        study.run_study(FakeSim(), [study.StudyModel("A", ring_model, {})], config=ok)


def test_cli_parser_and_run(tmp_path):
    import argparse

    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd")
    study.add_study_cli(sub)
    args = ap.parse_args(
        ["study", "--model", "tests.probe.test_study:ring_model", "--out", str(tmp_path),
         "--smoke", "--simulator", "tests.probe.test_study:FakeSim", "--experiments",
         "theta_E", "--quiet"]
    )  # fmt: skip
    assert args.smoke
    assert not args.full
    assert study.run_study_cli(args) == 0
    assert (tmp_path / "report.html").is_file()
    assert set(pd.read_csv(tmp_path / "table2.csv")["experiment"]) == {"theta_E"}


def test_cli_yields(tmp_path):
    """``--yields des-y3`` adds the simlens population's expected yields to the report."""
    import argparse
    import json

    ap = argparse.ArgumentParser()
    study.add_study_cli(ap.add_subparsers(dest="cmd"))
    args = ap.parse_args(
        ["study", "--model", "tests.probe.test_study:ring_model", "--label", "ring",
         "--out", str(tmp_path), "--smoke", "--simulator", "tests.probe.test_study:FakeSim",
         "--experiments", "mag_source_g", "--yields", "des-y3", "--quiet"]
    )  # fmt: skip
    assert study.run_study_cli(args) == 0
    doc = json.loads((tmp_path / "yields.json").read_text())
    ys = doc["yields"]["ring"]
    assert [y["threshold"] for y in ys] == list(study.YIELD_THRESHOLDS)
    assert doc["sky"]["area_deg2"] == 5000.0
    # more lenses pass a lower threshold
    assert ys[0]["expected"] >= ys[1]["expected"] >= ys[2]["expected"]
    assert "Expected yields over des-y3" in (tmp_path / "report.html").read_text()


# -- verdict rule: known answers --------------------------------------------------------------
X = np.linspace(0, 1, 21)
SEM = np.full(21, 0.005)


@pytest.mark.parametrize(
    ("mean", "slope_ci", "expected"),
    [
        (np.full(21, 0.9), (-0.01, 0.01), "insensitive"),
        (0.9 + 0.03 * np.sin(8 * X), (-0.01, 0.02), "insensitive"),  # span < 0.05
        (0.9 - 0.08 * X, (-0.2, 0.05), "insensitive"),  # small and slope consistent with 0
        (0.9 - 0.08 * X, (-0.1, -0.06), "smooth degradation"),  # small but significant
        (1.0 - 0.5 * X, (-0.55, -0.45), "smooth degradation"),
        (0.5 + 0.4 * X, (0.35, 0.45), "smooth improvement"),
        (1.0 - 0.8 * np.abs(X - 0.3), (-0.5, 0.1), "sensitive (non-monotonic)"),  # PSF-like peak
        (0.95 - 0.3 * np.exp(-(((X - 0.2) / 0.08) ** 2)), (-0.1, 0.1), "sensitive (non-monotonic)"),
        (np.where(X < 0.5, 0.95, 0.3), (-1.0, -0.5), "sensitive (abrupt)"),  # step
    ],
)
def test_verdict_known_answers(mean, slope_ci, expected):
    slope = float(np.polyfit(X, mean, 1)[0])
    assert summary.verdict(X, mean, SEM, *slope_ci, slope) == expected


def test_verdict_noisy_peak_needs_two_standard_errors():
    mean = np.array([0.80, 0.92, 0.80])  # peak 0.12 above both ends
    assert summary.verdict([0, 1, 2], mean, [0.01] * 3, -1, 1, 0.0) == "sensitive (non-monotonic)"
    # with standard errors of 0.05 the difference needs 2 * 0.07 = 0.14: not significant
    assert summary.verdict([0, 1, 2], mean, [0.05] * 3, -1, 1, 0.0) != "sensitive (non-monotonic)"


def test_verdict_undetermined_and_families():
    assert summary.verdict([1.0], [0.5], [0.1], np.nan, np.nan, np.nan) == "undetermined"
    fams = {summary.FAMILY[v] for v in summary.FAMILY}
    assert {"insensitive", "smooth", "sensitive"} <= fams
    for (exp, group), (fam, words) in summary.PAPER.items():
        assert exp in {e.name for e in study.EXPERIMENTS}
        assert group in ("lens", "nonlens", "all")
        assert fam in ("insensitive", "smooth", "sensitive")
        assert words


def test_verdict_abrupt_needs_a_jump_beyond_its_errors():
    """A step that bin scatter explains is not 'abrupt'; the same step measured precisely is."""
    from probe.studies.summary import verdict

    x = np.linspace(0.0, 1.0, 11)
    m = np.where(x < 0.5, 0.9, 0.7)
    assert verdict(x, m, np.full(11, 0.005), -0.3, -0.1, -0.2) == "sensitive (abrupt)"
    assert verdict(x, m, np.full(11, 0.2), -0.3, -0.1, -0.2) == "smooth degradation"


# -- sizes, stratified bins and galleries (issue 15) ------------------------------------------
def test_binned_sets_are_stratified_and_counted(smoke):
    res, out = smoke
    # the smoke mag_source_g set: 16 lenses over 4 bins, stratified: exactly 4 per bin
    assert res.config["min_bin_count"]["mag_source_g"] == TINY.n_mag // 4
    assert res.config["min_bin_count"]["color"] == TINY.n_sweep
    assert res.config["min_bin_count"]["psf"] == TINY.n_psf
    assert "mag_source_g: 4 bins" in res.config["stratified"]["mag_source_g"]
    counts = res.results[("A", "mag_source_g")].table["n"].to_numpy()
    assert set(counts.tolist()) == {TINY.n_mag // 4}
    saved = __import__("json").loads((out / "study.json").read_text())
    assert saved["min_bin_count"]["mag_source_g"] == TINY.n_mag // 4
    assert "fewest images per bin" in (out / "report.html").read_text()
    assert any(k.startswith("cpu ") for k in res.timings)


def test_stratified_values():
    gen = np.random.default_rng(0)
    v = stratified(17.0, 23.0, 12, 1200, gen)
    counts, _ = np.histogram(v, bins=np.linspace(17.0, 23.0, 13))
    assert counts.tolist() == [100] * 12
    # any prefix stays balanced to within one per bin
    c2, _ = np.histogram(v[:100], bins=np.linspace(17.0, 23.0, 13))
    assert c2.max() - c2.min() <= 1
    assert min_bin_count(v, np.linspace(17.0, 23.0, 13)) == 100


def test_simulator_without_array_controls_gets_uniform_draws():
    class NoArrays(FakeSim):
        def sample_lenses(self, n, *, rng, detectable=False, **c):
            if any(np.ndim(v) for v in c.values() if not isinstance(v, tuple)):
                raise TypeError("no array controls")
            return super().sample_lenses(n, rng=rng, **c)

    cfg = study.StudyConfig(sizes=TINY, seed=4, progress=False, experiments=("mag_lens_r",))
    res = study.run_study(NoArrays(), [study.StudyModel("A", ring_model)], config=cfg)
    assert "uniform draws instead" in res.config["stratified"]["mag_lens_r"]


def test_gallery_pickers_on_known_scores():
    from probe.studies.galleries import pick_moved, pick_worst_bin

    values = np.array([0.0, 1.0, 2.0])
    n = 10
    p0 = np.full(n, 0.9)
    p1 = p0 - np.r_[0.05 * np.arange(n)]  # sample i moves by 0.05 i at value 1
    p2 = p0 - 0.01  # everything moves a little at value 2
    scores = pd.DataFrame(
        {
            "sample": np.tile(np.arange(n), 3),
            "value": np.repeat(values, n),
            "p_lens": np.r_[p0, p1, p2],
        }
    )
    ref, value, picked = pick_moved(scores, 0.0, k=3)
    assert (ref, value) == (0.0, 1.0)
    assert picked.tolist() == [9, 8, 7]
    # the reference is the grid value nearest the one asked for
    assert pick_moved(scores, 1.9, k=1)[0] == 2.0

    binned = pd.DataFrame(
        {
            "sample": np.arange(8),
            "value": [1.0, 1.0, 1.0, 2.0, 2.0, 2.0, np.nan, 3.0],
            "score": [0.9, 0.8, 0.95, 0.2, 0.6, 0.1, 0.0, 0.5],
        }
    )
    centre, picked = pick_worst_bin(binned, k=2)
    assert centre == 2.0  # mean 0.3, below bin 3's 0.5; the dropped NaN image is ignored
    assert picked.tolist() == [5, 3]


def test_galleries_show_the_images_that_were_scored(smoke):
    res, _ = smoke
    assert set(res.galleries) == set(res.results)
    for (m, e), g in res.galleries.items():
        n = res.results[(m, e)].scores["sample"].nunique()
        assert len(g.samples) == (min(6, n) if g.after is not None else min(6, TINY.n_mag // 4))
        # the model scores the gallery's images exactly as the study recorded
        np.testing.assert_allclose(ring_model(g.before), g.p_before, atol=1e-6, err_msg=e)
        if g.after is not None:
            np.testing.assert_allclose(ring_model(g.after), g.p_after, atol=1e-6, err_msg=e)
            moved = np.abs(g.p_after - g.p_before)
            wide = res.results[(m, e)].scores.pivot(index="sample", columns="value",
                                                    values="p_lens")  # fmt: skip
            all_moved = (wide[g.value] - wide[g.ref_value]).abs()
            assert moved.min() >= np.sort(all_moved.to_numpy())[-len(moved)] - 1e-12
        else:
            s = res.results[(m, e)].scores
            assert np.all(s.set_index("sample").loc[g.samples, "value"] == g.value)


def test_default_and_full_sizes_give_every_bin_enough_images():
    for size in ("default", "full"):
        sz = study.SIZES[size]
        assert min(sz.n_sweep, sz.n_psf) >= study.MIN_BIN_COUNT, size
        for e in study.EXPERIMENTS:
            if e.kind == "bin":
                n = sz.n_theta_E if e.data == "lenses" else sz.n_mag
                # stratified draws: n // bins per bin (sets' ranges match the experiments')
                assert study.DEFAULT_SETS[e.data][e.column] == e.bins[:2], e.name
                assert n // e.bins[2] >= study.MIN_BIN_COUNT, (size, e.name)
    full = study.SIZES["full"]  # the paper's sizes
    assert (full.n_sweep, full.n_theta_E, full.n_mag, full.n_psf) == (5000, 10000, 4000, 5000)


def test_render_cache_renders_identical_tables_once():
    class Counting(FakeSim):
        calls = 0

        def render(self, truth, *, noise=True):
            Counting.calls += 1
            return super().render(truth, noise=noise)

    sim = Counting()
    t = sim.sample_lenses(5, rng=1)
    cache = RenderCache(sim)
    a = cache.render(t)
    b = cache.render(t.copy())
    assert Counting.calls == 1
    np.testing.assert_array_equal(a, b)
    b[:] = 0  # a copy: the stored images stay intact
    np.testing.assert_array_equal(cache.render(t), a)
    cache.render(sim.vary(t, "psf_scale", 2.0))  # another table: rendered
    assert Counting.calls == 2
    small = RenderCache(sim, max_bytes=a.nbytes // 2)  # too small to store anything
    small.render(t)
    small.render(t)
    assert Counting.calls == 4
    assert cache.sample_lenses(2, rng=0).shape[0] == 2  # everything else passes through
