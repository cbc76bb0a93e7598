"""Selection functions, 50% points, FPR thresholds, TPR0/TPR10, surfaces, yields (issue 7).

Known answers come from synthetic scores: with ``p = Phi(a (x50 - x) + e)``, ``e ~ N(0, 1)``,
the completeness at threshold ``t`` is exactly ``Phi(a (x50 - x) - Phi^-1(t))`` (an error-function
curve whose 50% point is ``x50 - Phi^-1(t)/a``).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm

import probe
from probe import cli
from probe.adapters.datasets import load_hdf5
from probe.cli import inputs as cli_inputs
from probe.completeness.fit import fit_completeness
from probe.completeness.plots import report_section
from probe.completeness.rates import tpr_before
from probe.completeness.result import TABLE_COLUMNS
from probe.completeness.thresholds import threshold_at_fpr
from probe.errors import ProbeValueError
from probe.statistics import binomial_interval

X50, SLOPE = 22.0, 1.2  # mag, 1/mag


def synthetic(n: int, seed: int, n_neg: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    g = np.random.default_rng(seed)
    x = g.uniform(18.0, 25.0, n)
    p = norm.cdf(SLOPE * (X50 - x) + g.standard_normal(n))
    neg = g.beta(1.0, 8.0, n_neg)
    scores = np.concatenate([p, neg])
    labels = np.concatenate([np.ones(n, int), np.zeros(n_neg, int)])
    values = np.concatenate([x, np.full(n_neg, np.nan)])
    return scores, labels, values


def true_completeness(x: np.ndarray, t: float) -> np.ndarray:
    return norm.cdf(SLOPE * (X50 - x) - norm.ppf(t))


def true_x50(t: float) -> float:
    return X50 - norm.ppf(t) / SLOPE


@pytest.fixture(scope="module")
def sf():
    s, lab, v = synthetic(3000, 0, n_neg=4000)
    return probe.selection_function(
        s, lab, v, probe.Binning.uniform(18, 25, n=14), (0.5, 0.9), fpr=1e-3, name="g", unit="mag"
    )


def test_table_contract_and_counts(sf):
    t = sf.table
    assert tuple(t.columns[: len(TABLE_COLUMNS)]) == TABLE_COLUMNS
    assert set(sf.overall["threshold_label"]) == {"0.5", "0.9", "fpr=0.001"}
    for _, rows in t.groupby("threshold_label"):
        assert rows["n"].sum() == 3000
        assert np.allclose(rows["completeness"], rows["k"] / rows["n"])
    assert (t["ci_low"] <= t["completeness"]).all()
    assert (t["completeness"] <= t["ci_high"]).all()
    fp = sf.overall.set_index("threshold_label")
    assert fp.loc["fpr=0.001", "n_false_positives"] <= 4
    assert fp.loc["fpr=0.001", "fpr"] <= 1e-3


def test_completeness_curve_recovered(sf):
    # each bin's truth: the exact curve averaged over the bin (x is uniform inside it)
    covered = []
    for _, r in sf.table.iterrows():
        xs = np.linspace(r["bin_low"], r["bin_high"], 201)
        truth = true_completeness(xs, r["threshold"]).mean()
        covered.append(r["ci_low"] <= truth <= r["ci_high"])
    assert np.mean(covered) >= 0.85  # 42 intervals at 95%


@pytest.mark.parametrize("model", ["erf", "logistic"])
def test_fifty_percent_points_recovered(sf, model):
    for t in sf.thresholds:
        x50, lo, hi = sf.fifty_percent_point(t, model=model, plateau=(model == "logistic"))
        assert lo < x50 < hi
        assert hi - lo < 0.5
        if model == "erf":
            assert lo <= true_x50(t) <= hi
        else:  # a logistic shape is slightly wrong for an erf truth; the midpoint is not
            assert abs(x50 - true_x50(t)) < 0.1


@pytest.mark.parametrize("method", ["wilson", "jeffreys"])
@pytest.mark.parametrize("n", [20, 60, 200])
def test_binomial_interval_coverage(method, n):
    g = np.random.default_rng(n)
    p = g.uniform(0.05, 0.95, 4000)
    k = g.binomial(n, p)
    lo, hi = binomial_interval(k, n, method=method, confidence=0.95)
    cover = np.mean((lo <= p) & (p <= hi))
    assert 0.93 <= cover <= 0.97


def test_binomial_interval_edges():
    lo, hi = binomial_interval([0, 5, 0], [10, 5, 0], method="jeffreys")
    assert lo[0] == 0.0
    assert hi[1] == 1.0
    assert np.isnan(lo[2])
    assert np.isnan(hi[2])
    # Wilson at k = 5, n = 10 (closed form): 0.5 -/+ 1.96/(10 + 1.96^2) sqrt(2.5 + 1.96^2/4)
    lo, hi = binomial_interval(5, 10)
    z = norm.ppf(0.975)
    half = z / (10 + z * z) * np.sqrt(2.5 + z * z / 4)
    assert np.isclose(lo, 0.5 - half)
    assert np.isclose(hi, 0.5 + half)
    with pytest.raises(ProbeValueError):
        binomial_interval(3, 2)


def test_fifty_percent_interval_coverage_by_simulation():
    hits = []
    for rep in range(80):
        g = np.random.default_rng(1000 + rep)
        x = g.uniform(18.0, 25.0, 300)
        found = g.random(300) < norm.cdf(SLOPE * (X50 - x))
        f = fit_completeness(x, found, model="erf", plateau=False)
        hits.append(f.low <= X50 <= f.high)
    assert np.mean(hits) >= 0.88  # nominal 0.95; 80 repetitions (binomial sd 0.024)


def test_bootstrap_interval_agrees_with_profile():
    g = np.random.default_rng(5)
    x = g.uniform(18.0, 25.0, 400)
    found = g.random(400) < norm.cdf(SLOPE * (X50 - x))
    prof = fit_completeness(x, found, model="erf", plateau=False)
    boot = fit_completeness(x, found, model="erf", plateau=False, method="bootstrap", n_boot=60)
    again = fit_completeness(x, found, model="erf", plateau=False, method="bootstrap", n_boot=60)
    assert (boot.low, boot.high) == (again.low, again.high)  # seeded
    assert boot.low < boot.x50 < boot.high
    width_p, width_b = prof.high - prof.low, boot.high - boot.low
    assert 0.5 < width_b / width_p < 2.0


def test_plateau_and_no_fifty_percent_point():
    g = np.random.default_rng(3)
    x = g.uniform(18.0, 25.0, 3000)
    found = g.random(3000) < 0.8 * norm.cdf(SLOPE * (X50 - x))
    f = fit_completeness(x, found, model="erf")
    assert abs(f.plateau - 0.8) < 0.05
    assert f.low <= f.x50 <= f.high
    # x50 solves 0.8 Phi(SLOPE (X50 - x)) = 1/2
    assert abs(f.x50 - (X50 - norm.ppf(0.5 / 0.8) / SLOPE)) < 0.15
    # completeness below 1/2 everywhere in the data: no 50% point inside it; any estimate is
    # an extrapolation with an open interval
    low = g.random(3000) < 0.3 * norm.cdf(SLOPE * (X50 - x))
    f = fit_completeness(x, low)
    assert np.isnan(f.x50) or (f.extrapolated and not np.isfinite(f.low))
    assert np.isnan(fit_completeness(x, np.ones(3000, bool)).x50)


def test_threshold_at_fpr_constructed():
    neg = np.arange(1000) / 1000.0  # 0.000 .. 0.999
    t = threshold_at_fpr(neg, 1e-2)
    assert np.count_nonzero(neg >= t) == 10
    assert np.count_nonzero(neg >= np.nextafter(neg[-11], -1)) == 11  # the next one down
    ties = np.r_[np.zeros(990), np.full(10, 0.7)]
    assert np.count_nonzero(ties >= threshold_at_fpr(ties, 5e-3)) == 0
    with pytest.raises(ProbeValueError, match="at least 1000 negatives"):
        threshold_at_fpr(np.zeros(999), 1e-3)


def test_tpr0_tpr10_constructed():
    neg = np.r_[np.linspace(0.95, 0.5, 10), np.zeros(90)]  # 10th highest negative: 0.5
    pos = np.r_[0.99, 0.97, 0.96, 0.9, 0.6, 0.5, 0.2, 0.1]
    scores = np.r_[pos, neg]
    labels = np.r_[np.ones(pos.size), np.zeros(neg.size)]
    tpr0 = tpr_before(scores, labels, 1)
    assert (tpr0.k, tpr0.n, tpr0.value) == (3, 8, 0.375)  # above 0.95: 0.99 0.97 0.96
    tpr10 = tpr_before(scores, labels, 10)
    assert tpr10.k == 5  # strictly above 0.5: 0.99 0.97 0.96 0.9 0.6
    sf = probe.selection_function(scores, labels, np.r_[np.arange(8.0), np.zeros(100)], 2)
    assert sf.tpr0.value == 0.375
    assert sf.tpr10.value == 5 / 8
    with pytest.raises(ProbeValueError, match="at least 10 negatives"):
        tpr_before(pos, None, 10)


def test_summary_joins_thresholds_fifty_percent_points_and_rates():
    rng = np.random.default_rng(4)
    g = rng.uniform(20.0, 23.0, 200)
    pos = 1.0 / (1.0 + np.exp(3.0 * (g - 21.5)))  # p falls with fainter sources
    neg = np.linspace(0.0, 0.8, 100)
    scores, labels = np.r_[pos, neg], np.r_[np.ones(200), np.zeros(100)]
    sf = probe.selection_function(scores, labels, np.r_[g, np.full(100, np.nan)], 6)
    summary = sf.summary().set_index("label")
    assert list(summary.index) == ["0.5", "0.9", "0.99", "TPR0", "TPR10"]
    assert summary.loc["0.9", "completeness"] == pytest.approx(np.mean(pos >= 0.9))
    points = sf.fifty_percent_points().set_index("threshold_label")
    assert summary.loc["0.5", "x50"] == points.loc["0.5", "x50"]
    assert summary.loc["TPR10", "completeness"] == sf.tpr10.value
    assert np.isnan(summary.loc["TPR0", "x50"])
    # without negatives the rates cannot be resolved and are left out
    alone = probe.selection_function(pos, None, g, 6).summary()
    assert list(alone["label"]) == ["0.5", "0.9", "0.99"]


def test_selection_surface():
    g = np.random.default_rng(1)
    n = 4000
    x, y = g.uniform(19, 24, n), g.uniform(16, 21, n)
    p = norm.cdf(SLOPE * (X50 - x) + 0.3 * (y - 18.5) + g.standard_normal(n))
    s = probe.selection_surface(
        p, None, x, y, 5, 4, (0.5, 0.9), x_name="g", y_name="r", x_unit="mag", y_unit="mag"
    )
    counts = s.counts()
    h, _, _ = np.histogram2d(x, y, bins=[s.x_binning.bin_edges, s.y_binning.bin_edges])
    assert np.array_equal(counts, h.astype(int))
    w = s.grid("width", 0.9)
    assert np.allclose(w, s.grid("ci_high", 0.9) - s.grid("ci_low", 0.9))
    assert np.array_equal(s.grid("thin", "0.5"), counts < s.min_count)
    c = s.grid("completeness", 0.5)
    assert c.iloc[0].mean() > c.iloc[-1].mean()  # brighter sources are found more often
    # Labelled: rows are g bins, columns r bins; .loc finds the cell holding a value.
    assert (c.index.name, c.columns.name) == ("g", "r")
    assert c.index[0].left == s.x_binning.bin_edges[0]
    i, j = 1, 2
    xv, yv = s.x_binning.centres[i], s.y_binning.centres[j]
    assert c.loc[xv, yv] == c.to_numpy()[i, j]
    row = s.table[(s.table.threshold_label == "0.5") & np.isclose(s.table.x, xv)
                  & np.isclose(s.table.y, yv)]  # fmt: skip
    assert row["completeness"].item() == pytest.approx(c.loc[xv, yv], nan_ok=True)


def test_selected_vs_parent():
    s, lab, v = synthetic(2000, 2)
    cmp = probe.selected_vs_parent(s, lab, {"g": v}, units={"g": "mag"})
    t = cmp.table
    at0 = t[t["threshold"] == 0.0]
    assert np.allclose(at0["value"], at0["parent"])
    med = t[t["quantile"] == 0.5].sort_values("threshold")["value"].to_numpy()
    assert med[-1] < med[0] - 1.0  # selected lenses are brighter as the threshold rises


def test_save_plot_and_metadata(sf, tmp_path):
    path = sf.save(tmp_path / "sel.parquet")
    meta = probe.read_metadata(path)
    assert meta["kind"] == "selection_function"
    assert meta["unit"] == "mag"
    assert meta["tpr10"]["value"] == sf.tpr10.value
    back = pd.read_parquet(path)
    assert list(back.columns[:6]) == list(TABLE_COLUMNS)
    csv = sf.save(tmp_path / "sel.csv")
    assert probe.read_metadata(csv)["interval"] == "wilson"
    assert sf.plot(tmp_path / "sel.png").stat().st_size > 0
    s, lab, v = synthetic(600, 4)
    surf = probe.selection_surface(s, lab, v, s, 4, 3, (0.5,), x_unit="mag")
    assert surf.plot(tmp_path / "surf.png").exists()
    assert surf.save(tmp_path / "surf.json").exists()
    cmp = probe.selected_vs_parent(s, lab, {"g": v})
    assert cmp.plot(tmp_path / "parent.svg").exists()
    html = report_section({"A": sf, "B": sf}, tmp_path, yields={"A": _toy_yield()})
    assert html.count("<img") == 1
    assert "TPR10" in html
    assert "expected lenses found" in html


def _toy_yield() -> probe.Yield:
    strata = [
        probe.Stratum("detectable", 2.0, 0.1, np.r_[np.full(30, 0.95), np.full(70, 0.1)]),
        probe.Stratum("other", 100.0, 5.0, np.full(200, 0.05)),
    ]
    return probe.expected_yield(strata, 5000.0, 0.9, rng=1)


def test_expected_yield_known_answer():
    y = _toy_yield()
    assert y.expected == pytest.approx(5000 * 2.0 * 0.3)
    assert y.low < y.expected < y.high
    assert y.completeness == pytest.approx(2.0 * 0.3 / 102.0)
    # the undetectable stratum found nothing but still widens the upper bound
    alone = probe.expected_yield(
        [probe.Stratum("d", 2.0, 0.1, np.r_[np.full(30, 0.95), np.full(70, 0.1)])], 5000.0, 0.9
    )
    assert y.high > alone.high
    # weights: a weighted sample equals the equivalent repeated sample
    w = probe.Stratum("w", 1.0, 0.0, [0.95, 0.1], weights=[3.0, 7.0])
    assert w.completeness(0.9)[0] == pytest.approx(0.3)
    with pytest.raises(ProbeValueError):
        probe.expected_yield([], 5000.0, 0.9)


def test_yield_interval_coverage_by_simulation():
    # truth: completeness 0.3, density 2 +/- 0.1; the 95% interval should cover N = 3000
    g = np.random.default_rng(9)
    hits = []
    for rep in range(60):
        p = np.where(g.random(200) < 0.3, 0.95, 0.1)
        rho = 2.0 + 0.1 * g.standard_normal()
        y = probe.expected_yield([probe.Stratum("d", rho, 0.1, p)], 5000.0, 0.9, n_draws=4000,
                                 rng=rep)  # fmt: skip
        hits.append(y.low <= 3000.0 <= y.high)
    assert np.mean(hits) >= 0.85


# -- CLI -----------------------------------------------------------------------------------


@pytest.fixture
def model_spec(tmp_path, monkeypatch):
    (tmp_path / "selsynth.py").write_text(
        "import numpy as np\n\ndef model(x):\n    return np.clip(x.mean(axis=(1, 2, 3)), 0, 1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "selsynth:model"
    sys.modules.pop("selsynth", None)


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    import h5py

    g = np.random.default_rng(0)
    n = 400
    mag = g.uniform(19.0, 25.0, n)
    labels = (np.arange(n) % 4 != 0).astype(np.int64)
    level = np.where(labels == 1, norm.cdf(SLOPE * (X50 - mag) + g.standard_normal(n)), 0.05)
    images = np.broadcast_to(level[:, None, None, None], (n, 4, 4, 2)).astype(np.float32)
    truth = np.zeros(n, dtype=[("mag_source_g", "f8"), ("label", "i8"), ("kind", "S10")])
    truth["mag_source_g"], truth["label"], truth["kind"] = mag, labels, b"lens"
    path = tmp_path / "set.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images
        f["truth"] = truth
    monkeypatch.setattr(cli_inputs, "load_data", load_hdf5)
    return path


def test_cli_selection(model_spec, dataset, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["selection", "--model", model_spec, "--data", str(dataset), "--param", "mag_source_g"]
    rc = cli.main([*argv, "--thresholds", "0.5,0.9", "--bins", "6", "--unit", "mag",
                   "--out", str(out), "--quiet"])  # fmt: skip
    assert rc == 0
    table = pd.read_parquet(out / "selection_mag_source_g.parquet")
    assert list(table.columns[:6]) == list(TABLE_COLUMNS)
    assert (out / "selection_mag_source_g.png").exists()
    x50 = pd.read_parquet(out / "selection_mag_source_g_x50.parquet")
    assert abs(x50.loc[0, "x50"] - X50) < 0.5
    text = capsys.readouterr().out
    assert "mag_source_g_50" in text
    assert "TPR0" in text


def test_cli_selection_needs_out(model_spec, dataset):
    assert (
        cli.main(
            ["selection", "--model", model_spec, "--data", str(dataset), "--param", "mag_source_g"]
        )
        == 2
    )  # fmt: skip (bad input: exit 2)


def test_import_stays_light():
    code = (
        "import sys, probe, probe.selection, probe.yields;"
        "bad = [m for m in ('tensorflow', 'matplotlib', 'simlens', 'scipy') if m in sys.modules];"
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_cli_selection_n_nonlenses_with_data_is_an_error(model_spec, dataset, tmp_path, capsys):
    argv = ["selection", "--model", model_spec, "--data", str(dataset), "--param",
            "mag_source_g", "--n-nonlenses", "100", "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 2
    assert "--n-nonlenses applies when simulating" in capsys.readouterr().err


def test_cli_selection_negatives_file_sets_fpr_thresholds(model_spec, dataset, tmp_path, capsys):
    import h5py

    g = np.random.default_rng(5)
    level = g.uniform(0.0, 0.6, 500)  # non-lenses' p(lens) = their pixel level
    neg = tmp_path / "neg.h5"
    with h5py.File(neg, "w") as f:
        f["images"] = np.broadcast_to(level[:, None, None, None], (500, 4, 4, 2)).astype("f4")
        f["labels"] = np.zeros(500, np.int64)
    out = tmp_path / "out"
    argv = ["selection", "--model", model_spec, "--data", str(dataset), "--param",
            "mag_source_g", "--thresholds", "0.5", "--fpr", "0.01", "--negatives", str(neg),
            "--out", str(out), "--quiet", "--format", "csv"]  # fmt: skip
    assert cli.main(argv) == 0
    table = pd.read_csv(out / "selection_mag_source_g.csv")
    t = table[table["threshold_label"] == "fpr=0.01"]["threshold"].iloc[0]
    with h5py.File(dataset) as f:
        own = f["images"][:, 0, 0, 0][f["truth"]["label"] == 0]
    negatives = np.concatenate([own, level.astype("f4")]).astype(np.float64)
    assert t == pytest.approx(probe.completeness.thresholds.threshold_at_fpr(negatives, 0.01))
    assert np.mean(negatives >= t) <= 0.01
    assert "TPR0" in capsys.readouterr().out


def test_cli_selection_surface_with_fifty_percent_contour(model_spec, tmp_path, monkeypatch):
    import h5py

    g = np.random.default_rng(1)
    n = 600
    mag = g.uniform(19.0, 25.0, n)
    theta = g.uniform(1.0, 2.5, n)
    level = norm.cdf(SLOPE * (X50 - mag) + 2.0 * (theta - 1.75) + 0.5 * g.standard_normal(n))
    truth = np.zeros(n, dtype=[("mag_source_g", "f8"), ("theta_E", "f8"), ("label", "i8")])
    truth["mag_source_g"], truth["theta_E"], truth["label"] = mag, theta, 1
    path = tmp_path / "s.h5"
    with h5py.File(path, "w") as f:
        f["images"] = np.broadcast_to(level[:, None, None, None], (n, 4, 4, 2)).astype("f4")
        f["truth"] = truth
    monkeypatch.setattr(cli_inputs, "load_data", load_hdf5)
    out = tmp_path / "out"
    argv = ["selection", "--model", model_spec, "--data", str(path), "--param", "mag_source_g",
            "--param2", "theta_E", "--bins", "5", "--bins2", "3", "--thresholds", "0.5",
            "--out", str(out), "--quiet"]  # fmt: skip
    assert cli.main(argv) == 0
    table = pd.read_parquet(out / "selection_mag_source_g_theta_E.parquet")
    assert len(table) == 5 * 3
    assert table["n"].sum() == n
    assert (out / "selection_mag_source_g_theta_E.png").is_file()


class _Ax:
    """Records the spans and lines a plot helper draws."""

    def __init__(self):
        self.spans, self.lines = [], []

    def axvspan(self, lo, hi, **kw):
        self.spans.append((lo, hi, kw))

    def axvline(self, x, **kw):
        self.lines.append(x)


@pytest.mark.parametrize(
    ("x50", "low", "high", "spans", "hatched", "lines"),
    [
        (21.0, 20.5, 21.5, [(20.5, 21.5)], False, [21.0]),  # closed, inside
        (21.0, 20.5, np.inf, [(20.5, 25.0)], True, [21.0]),  # open above: hatched to the edge
        (26.0, 25.5, 27.0, [], False, []),  # wholly outside the range: nothing drawn
        (24.8, 24.0, 26.0, [(24.0, 25.0)], False, [24.8]),  # clipped at the range
    ],
)
def test_fifty_percent_shading_stays_inside_the_range(x50, low, high, spans, hatched, lines):
    from types import SimpleNamespace

    from probe.completeness.plots import shade_fifty_percent_point

    ax = _Ax()
    shade_fifty_percent_point(ax, SimpleNamespace(x50=x50, low=low, high=high), 19.0, 25.0, "C0")
    assert [(lo, hi) for lo, hi, _ in ax.spans] == spans
    assert all(("hatch" in kw) == hatched for _, _, kw in ax.spans)
    assert ax.lines == lines


def test_thresholds_are_shown_as_given():
    from probe.completeness.plots import threshold_legend
    from probe.completeness.thresholds import format_threshold

    assert threshold_legend(0.9996, "0.9996") == "p >= 0.9996"
    assert threshold_legend(0.99963, "fpr=0.001") == "fpr=0.001 (p >= 0.99963)"
    assert format_threshold(0.99999987) != "1"
    assert float(format_threshold(0.99999987)) < 1
    pos = np.linspace(0, 1, 50)
    sf = probe.selection_function(pos, None, pos, 4, [0.9996, 0.5])
    assert list(sf.overall["threshold_label"]) == ["0.9996", "0.5"]
