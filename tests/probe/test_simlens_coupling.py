"""probe driven by the real ``simlens.Simulator`` (the probe library itself never imports simlens).

The model is a small deterministic stand-in for a lens finder whose p(lens) is an image
statistic: the share of the flux in the central 6x6 pixels. A wider PSF spreads the light, so
for every system this share falls as ``psf_scale`` grows (the noise realisation is shared, since
paired re-simulation keeps each row's seed).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import probe
from probe import Binning, Probe, ProbeValueError

simlens = pytest.importorskip("simlens")

# About 12 s on one core (4 s of it importing simlens and loading its catalogs): over 10 s.
pytestmark = pytest.mark.slow

PSF_VALUES = [0.6, 1.0, 2.0]
THETA_VALUES = [1.0, 1.5, 2.2]
# Columns vary(truth, "psf_scale", v) may change: the PSF itself and the detection summaries
# that depend on it. Everything else describes the system and must be kept.
PSF_DEPENDENT = {
    "snr_source",
    "snr_band",
    "fwhm_detection",
    "pass_snr",
    "pass_arcs_resolved",
    "pass_theta_E_resolved",
    "resolved",
    "detectable",
}


def concentration(images: np.ndarray) -> np.ndarray:
    """p(lens) = share of the (absolute) flux in the central 6x6 pixels, clipped to [0, 1]."""
    x = np.asarray(images, dtype=np.float64)
    h, w = x.shape[1] // 2, x.shape[2] // 2
    central = x[:, h - 3 : h + 3, w - 3 : w + 3].sum(axis=(1, 2, 3))
    total = np.abs(x).sum(axis=(1, 2, 3))
    return np.clip(central / np.maximum(total, 1e-12), 0.0, 1.0)


class Recording:
    """A simlens.Simulator passed through unchanged, recording what probe asks of it."""

    def __init__(self, sim) -> None:
        self.sim = sim
        self.sampled: list[tuple[str, dict, pd.DataFrame]] = []
        self.varied: list[tuple[pd.DataFrame, str, float, pd.DataFrame]] = []
        self.rendered: list[pd.DataFrame] = []
        self.images: list[np.ndarray] = []

    def sample_lenses(self, n, *, rng, **controls):
        truth = self.sim.sample_lenses(n, rng=rng, **controls)
        self.sampled.append(("lens", controls, truth))
        return truth

    def sample_nonlenses(self, n, *, rng, **controls):
        truth = self.sim.sample_nonlenses(n, rng=rng, **controls)
        self.sampled.append(("nonlens", controls, truth))
        return truth

    def vary(self, truth, name, value):
        out = self.sim.vary(truth, name, value)
        self.varied.append((truth, name, value, out))
        return out

    def render(self, truth, *, noise=True):
        self.rendered.append(truth)
        self.images.append(self.sim.render(truth, noise=noise))
        return self.images[-1]


@pytest.fixture(scope="module")
def sim():
    return simlens.Simulator("des-sv", npix=32)


def test_probe_library_does_not_import_simlens(sim):
    """simlens reaches probe only through SimulatorProtocol; only the CLI may import it."""
    import re
    from pathlib import Path

    assert isinstance(sim, probe.SimulatorProtocol)
    pattern = re.compile(r"^\s*(import|from)\s+simlens\b", re.MULTILINE)
    for path in Path(probe.__file__).parent.glob("*.py"):
        if path.name != "cli.py":
            assert not pattern.search(path.read_text()), path.name


def test_paired_psf_resimulation(sim):
    rec = Recording(sim)
    r = Probe(concentration, batch_size=8).resimulate(
        rec, "psf_scale", PSF_VALUES, n=8, rng=0, paired=True
    )
    # The systems are drawn once, on probe's documented streams (2, class), at the default PSF ...
    assert [(kind, controls) for kind, controls, _ in rec.sampled] == [
        ("lens", {}),
        ("nonlens", {}),
    ]
    lenses, nonlenses = (truth for _, _, truth in rec.sampled)
    pd.testing.assert_frame_equal(lenses, sim.sample_lenses(8, rng=probe.rng.child(0, 2, 0)))
    pd.testing.assert_frame_equal(nonlenses, sim.sample_nonlenses(8, rng=probe.rng.child(0, 2, 1)))
    assert (lenses["psf_scale"] == 1.0).all()
    assert (nonlenses["psf_scale"] == 1.0).all()
    # ... and re-rendered through Simulator.vary with only psf_scale changed.
    assert [(name, value) for _, name, value, _ in rec.varied] == [
        ("psf_scale", v) for v in PSF_VALUES for _ in range(2)
    ]
    assert all(t is lenses or t is nonlenses for t, _, _, _ in rec.varied)
    assert len(rec.rendered) == len(PSF_VALUES) * 2  # batch 8 = one render per class and value
    base = pd.concat([lenses, nonlenses], ignore_index=True)
    psf_cols = ["psf_scale"] + [f"psf_fwhm_{b}" for b in sim.bands]
    kept = [c for c in base.columns if c not in PSF_DEPENDENT and c not in psf_cols]
    assert {"seed", "theta_E", "z_lens", "mag_lens_r", "center_x_source"} <= set(kept)
    for j, value in enumerate(PSF_VALUES):
        shown = pd.concat(rec.rendered[2 * j : 2 * j + 2], ignore_index=True)
        np.testing.assert_array_equal(shown["seed"], base["seed"])  # same noise realisation
        pd.testing.assert_frame_equal(shown[kept], base[kept], check_exact=False, rtol=1e-12)
        assert (shown["psf_scale"] == value).all()
        for b in sim.bands:  # the base PSF scale is 1, so the FWHM scales exactly by the value
            np.testing.assert_array_equal(shown[f"psf_fwhm_{b}"], base[f"psf_fwhm_{b}"] * value)

    # Table: three values x (lens, nonlens, all) with the right counts.
    assert r.kind == "resimulate"
    assert r.paired
    assert r.table["value"].tolist() == [v for v in PSF_VALUES for _ in range(3)]
    assert r.table["group"].tolist() == ["lens", "nonlens", "all"] * 3
    assert r.table["n"].tolist() == [8, 8, 16] * 3
    assert r.provenance["data"]["n_lenses"] == r.provenance["data"]["n_nonlenses"] == 8
    assert r.provenance["simulator"]["parameter"] == "psf_scale"
    # Scores: the model's statistic on the very images simlens renders, system by system.
    p = r.scores.pivot(index="sample", columns="value", values="p_lens")[PSF_VALUES].to_numpy()
    for j in range(len(PSF_VALUES)):
        images = np.concatenate(rec.images[2 * j : 2 * j + 2])
        np.testing.assert_array_equal(p[:, j], concentration(images))
    # Paired: the central share of every centred system (> 5% of the flux in the central 6x6
    # pixels) falls as the PSF widens, so the lens score falls and the non-lens score rises for
    # every one of them, and so do the paired trends. (An image dominated by off-centre light,
    # e.g. a bright neighbour, can gain central flux from a wider PSF.)
    centred = p[:, 0] > 0.05
    assert centred.sum() >= 12
    assert (np.diff(p[centred], axis=1) < 0).all()
    assert r.trend("lens").slope < 0 < r.trend("nonlens").slope
    assert r.trend("lens").slope_high < 0 < r.trend("nonlens").slope_low
    assert "paired" in r.trend("lens").method

    # Same rng -> the same result, also with another batch size (renders of 5 rows, not 8).
    again = Probe(concentration, batch_size=5).resimulate(
        sim, "psf_scale", PSF_VALUES, n=8, rng=0, paired=True
    )
    pd.testing.assert_frame_equal(again.table, r.table, check_exact=True)
    pd.testing.assert_frame_equal(again.scores, r.scores, check_exact=True)
    assert again.provenance["data"]["hash"] == r.provenance["data"]["hash"]
    assert again.provenance["simulator"]["class"] == "simlens.simulator.Simulator"


def test_unpaired_lens_only_theta_e(sim):
    rec = Recording(sim)
    p = Probe(concentration, batch_size=8)
    r = p.resimulate(rec, "theta_E", THETA_VALUES, n=8, n_nonlenses=0, rng=0, paired=False)
    # A fresh set of lenses per value, drawn with theta_E fixed; no non-lenses, no vary.
    assert [(kind, controls) for kind, controls, _ in rec.sampled] == [
        ("lens", {"theta_E": v}) for v in THETA_VALUES
    ]
    assert rec.varied == []
    tables = [truth for _, _, truth in rec.sampled]
    for value, truth in zip(THETA_VALUES, tables, strict=True):
        assert len(truth) == 8
        assert (truth["label"] == 1).all()
        np.testing.assert_array_equal(truth["theta_E"], value)
    # value j is drawn on probe's documented stream (2, class, j)
    expected = sim.sample_lenses(8, rng=probe.rng.child(0, 2, 0, 2), theta_E=THETA_VALUES[2])
    pd.testing.assert_frame_equal(tables[2], expected)
    seeds = [set(t["seed"]) for t in tables]
    assert not (seeds[0] & seeds[1])
    assert not (seeds[1] & seeds[2])

    assert r.groups == ("lens", "all")
    assert not r.paired
    assert r.table["group"].tolist() == ["lens", "all"] * 3
    assert r.table["n"].tolist() == [8] * 6
    lens, pooled = r.table[r.table.group == "lens"], r.table[r.table.group == "all"]
    np.testing.assert_allclose(lens["mean"].to_numpy(), pooled["mean"].to_numpy(), rtol=1e-12)
    assert r.provenance["data"]["n_nonlenses"] == 0
    assert "least squares over images" in r.trend("lens").method

    again = p.resimulate(sim, "theta_E", THETA_VALUES, n=8, n_nonlenses=0, rng=0, paired=False)
    pd.testing.assert_frame_equal(again.table, r.table, check_exact=True)
    pd.testing.assert_frame_equal(again.scores, r.scores, check_exact=True)
    # simlens refuses theta_E for non-lenses; probe says what to do.
    with pytest.raises(ProbeValueError, match="pass n_nonlenses=0"):
        p.resimulate(sim, "theta_E", [1.0], n=1, rng=0, paired=False)


def test_by_parameter_on_simlens_truth(sim):
    lenses = sim.lenses(24, rng=5, theta_E=(1.0, 2.7))
    nonlenses = sim.nonlenses(6, rng=6)
    ds = simlens.Dataset.concat([lenses, nonlenses])
    theta = ds.truth["theta_E"].to_numpy()
    assert (theta[24:] == 0).all()  # non-lenses have no Einstein radius: outside the bins
    bins = Binning.uniform(1.0, 2.7, n=4, outside="drop")
    r = Probe(concentration, batch_size=16).by_parameter(
        ds.images, ds.labels, theta, bins=bins, name="theta_E", unit="arcsec", rng=0
    )
    assert r.n_dropped == 6
    counts, _ = np.histogram(theta[:24], bins=bins.bin_edges)
    np.testing.assert_array_equal(r.bins["count"], counts)
    assert counts.sum() == 24
    assert r.table["value"].unique().tolist() == pytest.approx([1.2125, 1.6375, 2.0625, 2.4875])
    lens = r.table[r.table.group == "lens"].reset_index(drop=True)
    np.testing.assert_array_equal(lens["n"], counts)
    score = concentration(ds.images[:24])
    index = bins.assign(theta[:24])
    for b in range(4):
        assert lens.loc[b, "mean"] == pytest.approx(score[index == b].mean(), abs=1e-12)
    assert (r.table[r.table.group == "nonlens"]["n"] == 0).all()
    assert r.axis_label == "theta_E [arcsec]"
    again = Probe(concentration, batch_size=7).by_parameter(
        ds.images, ds.labels, theta, bins=bins, name="theta_E", unit="arcsec", rng=0
    )
    pd.testing.assert_frame_equal(again.table, r.table, check_exact=True)
