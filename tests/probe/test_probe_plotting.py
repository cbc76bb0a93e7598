"""Plots: files written (PNG/SVG), several results overlaid, panels per group, never shown."""

from __future__ import annotations

import numpy as np
import pytest

import probe
from probe import Probe, ProbeValueError
from probe import perturbers as P


@pytest.fixture
def results(model, small_set):
    images, labels = small_set
    a = Probe(model, label="A").sweep(images, labels, P.GaussianBlur, [0.0, 1.0], rng=0)
    b = Probe(lambda x: 1 - model(x), label="B").sweep(images, labels, P.GaussianBlur, [0.0, 1.0])
    return a, b


@pytest.mark.parametrize("suffix", [".png", ".svg"])
def test_overlay_writes_file(results, tmp_path, suffix):
    path = probe.plot_results(results, tmp_path / f"fig{suffix}", title="blur")
    head = path.read_bytes()[:8]
    assert head.startswith(b"\x89PNG") if suffix == ".png" else b"<?xml" in head


def test_plotting_never_uses_pyplot():
    import inspect

    import probe.sweeps.plotting

    source = inspect.getsource(probe.sweeps.plotting)
    assert "pyplot" not in source.replace("no pyplot", "")
    assert ".show(" not in source


def test_axis_labels_and_panels(results, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    captured = {}
    original = Figure.savefig

    def capture(self, *args, **kwargs):
        captured["fig"] = self
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Figure, "savefig", capture)
    results[0].plot(tmp_path / "one.png", band="ci")
    axes = captured["fig"].axes
    assert [ax.get_title() for ax in axes] == ["lenses", "non-lenses", "all"]
    assert axes[0].get_xlabel() == "GaussianBlur sigma [pixel]"
    assert "correct-class score" in axes[0].get_ylabel()


def test_plot_errors(results, tmp_path):
    with pytest.raises(ProbeValueError, match="must end in one of"):
        results[0].plot(tmp_path / "x.gif")
    with pytest.raises(ProbeValueError, match="labels has 1 entries for 2 results"):
        probe.plot_results(results, tmp_path / "x.png", labels=["a"])
    with pytest.raises(ProbeValueError, match="results is empty"):
        probe.plot_results([], tmp_path / "x.png")
    with pytest.raises(ProbeValueError, match="band"):
        results[0].plot(tmp_path / "x.png", band="iqr")
    assert not np.any([p.suffix == ".png" for p in tmp_path.iterdir()])


def test_ci_band_tolerates_an_interval_a_rounding_error_off_its_mean(tmp_path):
    """All scores equal: the bootstrap interval can sit 1e-17 beside the mean."""
    import numpy as np

    import probe

    images = np.full((40, 2, 2, 1), 0.3, np.float32)
    labels = np.arange(40) % 2
    r = probe.Probe(lambda x: x.mean(axis=(1, 2, 3)), progress=False).by_parameter(
        images, labels, np.linspace(0, 1, 40), bins=2, rng=0
    )
    r.table.loc[0, "ci_low"] = r.table.loc[0, "mean"] + 1e-17
    assert r.plot(tmp_path / "p.png").is_file()
