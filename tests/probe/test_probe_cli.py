"""CLI: probe bin / sweep / resim end to end with a synthetic model and fake data/simulator."""

from __future__ import annotations

import sys

import h5py
import numpy as np
import pandas as pd
import pytest

import probe
from probe import cli
from probe.adapters.datasets import load_hdf5
from probe.cli import inputs as cli_inputs


@pytest.fixture
def model_spec(tmp_path, monkeypatch):
    (tmp_path / "clisynth.py").write_text(
        "import numpy as np\n\ndef model(x):\n    return np.clip(x.mean(axis=(1, 2, 3)), 0, 1)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    yield "clisynth:model"
    sys.modules.pop("clisynth", None)


@pytest.fixture
def dataset(tmp_path, monkeypatch):
    gen = np.random.default_rng(0)
    n = 60
    theta = gen.uniform(1.0, 2.7, n)
    labels = (np.arange(n) % 2).astype(np.int64)
    images = np.broadcast_to(((theta - 1) / 1.7)[:, None, None, None], (n, 8, 8, 2))
    truth = np.zeros(n, dtype=[("theta_E", "f8"), ("label", "i8"), ("kind", "S10")])
    truth["theta_E"], truth["label"], truth["kind"] = theta, labels, b"lens"
    path = tmp_path / "set.h5"
    with h5py.File(path, "w") as f:
        f["images"] = images.astype(np.float32)
        f["truth"] = truth
    # decouple from simlens.load, whose file layout is simlens' business
    monkeypatch.setattr(cli_inputs, "load_data", load_hdf5)
    return path


def test_bin(model_spec, dataset, tmp_path, capsys):
    out = tmp_path / "out"
    argv = ["bin", "--model", model_spec, "--data", str(dataset), "--by", "theta_E"]
    rc = cli.main([*argv, "--bins", "5", "--out", str(out), "--quiet", "--unit", "arcsec"])
    assert rc == 0
    table = pd.read_parquet(out / "bin_theta_E.parquet")
    assert table["n"][table.group == "all"].sum() == 60
    assert (out / "bin_theta_E.png").exists()
    assert (out / "bin_theta_E_scores.parquet").exists()
    meta = probe.read_metadata(out / "bin_theta_E.parquet")
    assert meta["unit"] == "arcsec"
    assert meta["provenance"]["seeds"]["entropy"] == 0
    assert "trend lens" in capsys.readouterr().out


def test_bin_range_drop_and_quantiles(model_spec, dataset, tmp_path):
    base = ["bin", "--model", model_spec, "--data", str(dataset), "--by", "theta_E", "--quiet"]
    out = tmp_path / "o"
    assert cli.main([*base, "--range", "1.0", "2.0", "--drop-outside", "--out", str(out),
                     "--format", "csv", "--plot", "none"]) == 0  # fmt: skip
    assert probe.read_metadata(out / "bin_theta_E.csv")["n_dropped"] > 0
    argv = [*base, "--quantiles", "--bins", "3", "--out", str(out), "--format", "json"]
    assert cli.main([*argv, "--overwrite"]) == 0


def test_sweep(model_spec, dataset, tmp_path):
    out = tmp_path / "s"
    argv = ["sweep", "--model", model_spec, "--data", str(dataset), "--perturber", "disk"]
    assert cli.main([*argv, "--values", "0:4:2", "--out", str(out), "--plot", "svg"]) == 0
    table = pd.read_parquet(out / "sweep_disk.parquet")
    assert sorted(table["value"].unique()) == [0.0, 2.0, 4.0]
    assert (out / "sweep_disk.svg").exists()


def test_resim(model_spec, fake_sim, tmp_path, monkeypatch):
    monkeypatch.setattr(cli_inputs, "make_simulator", lambda survey, npix: fake_sim)
    out = tmp_path / "r"
    argv = ["resim", "--model", model_spec, "--survey", "des-sv", "--param", "psf_scale"]
    assert (
        cli.main([*argv, "--values", "0.6:3:0.6", "--n", "20", "--out", str(out), "--quiet"]) == 0
    )
    table = pd.read_parquet(out / "resim_psf_scale.parquet")
    np.testing.assert_allclose(sorted(table["value"].unique()), [0.6, 1.2, 1.8, 2.4, 3.0])


def test_bad_input_exits_2_with_one_line(model_spec, dataset, tmp_path, capsys):
    """One policy for both CLIs (probe.cli_policy): bad input is exit 2, one line, no
    traceback unless --debug."""
    argv = ["sweep", "--model", model_spec, "--data", str(dataset), "--perturber", "smudge"]
    assert cli.main([*argv, "--values", "1", "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "probe sweep: error:" in err
    assert "unknown perturber 'smudge'" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    argv = ["bin", "--model", model_spec, "--data", str(dataset), "--by", "nope"]
    assert cli.main([*argv, "--out", str(tmp_path), "--quiet"]) == 2
    assert "--by 'nope' is not a truth column" in capsys.readouterr().err
    assert cli.main([*argv, "--out", str(tmp_path), "--quiet", "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err
    assert cli.main(["--debug", *argv, "--out", str(tmp_path), "--quiet"]) == 2
    assert "Traceback" in capsys.readouterr().err
    missing = ["bin", "--model", model_spec, "--data", str(tmp_path / "gone.h5"), "--by", "x"]
    assert cli.main([*missing, "--out", str(tmp_path), "--quiet"]) == 2
    assert "Traceback" not in capsys.readouterr().err
    assert cli.main(["sweep"]) == 2  # usage error
    assert "the following arguments are required" in capsys.readouterr().err
    bad_model = ["bin", "--model", "no_such_module_xyz:f", "--data", str(dataset), "--by", "x"]
    assert cli.main([*bad_model, "--out", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0:3:0.25", np.arange(0, 3.01, 0.25)),
        ("0.6:3:0.2", np.round(0.6 + 0.2 * np.arange(13), 12)),
        ("1,2,5", [1.0, 2.0, 5.0]),
        ("2", [2.0]),
    ],
)
def test_parse_values(text, expected):
    np.testing.assert_allclose(cli.parse_values(text), expected)
    assert len(cli.parse_values("0:3:0.25")) == 13


@pytest.mark.parametrize("text", ["1:2", "3:1:0.5", "a,b", "0:1:0"])
def test_parse_values_errors(text):
    with pytest.raises(probe.ProbeValueError, match="--values"):
        cli.parse_values(text)


def test_bin_by_kind_breaks_down_by_category(model_spec, cli_sets, tmp_path, monkeypatch, capsys):
    """--by on a string column (kind) gives per-category scores, FPRs and intervals, ordered
    by the mean, on a set the real `simlens generate` wrote."""
    monkeypatch.setattr(cli_inputs, "load_data", load_hdf5)  # probe's own reader, no simlens
    out = tmp_path / "out"
    argv = ["bin", "--model", model_spec, "--data", str(cli_sets["field"]), "--by", "kind",
            "--out", str(out), "--quiet", "--format", "csv"]  # fmt: skip
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "FPR at p >= 0.5" in printed
    table = pd.read_csv(out / "bin_kind.csv")
    kinds = pd.Series(load_hdf5(cli_sets["field"]).truth["kind"])
    assert len(set(kinds)) >= 2
    nonlens = table[table["group"] == "nonlens"]
    assert sorted(nonlens["category"]) == sorted(set(kinds))
    assert nonlens["n"].sum() == len(kinds)
    means = table[table["group"] == "all"]["mean"].to_numpy()
    assert np.all(np.diff(means) >= 0)  # ordered by the mean, lowest first
    # FPR recomputed from the saved per-image scores.
    scores = pd.read_parquet(out / "bin_kind_scores.parquet")
    for _, row in nonlens.iterrows():
        p = scores[scores["category"] == row["category"]]["p_lens"]
        assert row["flagged"] == pytest.approx(np.mean(p >= 0.5))
        assert row["flagged_low"] <= row["flagged"] <= row["flagged_high"]
    assert (out / "bin_kind.png").is_file()


def test_resim_population_flags_reach_the_lens_draw_only(model_spec, fake_sim, tmp_path,
                                                          monkeypatch):  # fmt: skip
    """--theta-E goes to sample_lenses only (the fake's sample_nonlenses rejects theta_E)."""
    monkeypatch.setattr(cli_inputs, "make_simulator", lambda survey, npix: fake_sim)
    out = tmp_path / "r"
    argv = ["resim", "--model", model_spec, "--survey", "des-sv", "--param", "psf_scale",
            "--values", "1,2", "--n", "6", "--theta-E", "1.7", "--out", str(out), "--quiet",
            "--format", "json"]  # fmt: skip
    assert cli.main(argv) == 0
    meta = probe.read_metadata(out / "resim_psf_scale.json")
    assert meta["provenance"]["simulator"]["lens_controls"] == {"theta_E": "1.7"}
    assert meta["provenance"]["simulator"]["nonlens_controls"] == {}
    bad = [*argv[:-5], "--theta-E", "1:x", "--out", str(out)]
    assert cli.main(bad) == 2


@pytest.mark.slow
def test_selection_population_flags_with_simlens(model_spec, tmp_path):
    """A bespoke simulated population: --theta-E and --mag-source-g restrict the lenses."""
    out = tmp_path / "s"
    argv = ["selection", "--model", model_spec, "--param", "theta_E", "--n", "16",
            "--npix", "24", "--theta-E", "1.2:1.6", "--mag-source-g", "21:22", "--bins", "2",
            "--thresholds", "0.5", "--out", str(out), "--quiet", "--plot", "none"]  # fmt: skip
    assert cli.main(argv) == 0
    samples = pd.read_parquet(out / "selection_theta_E_scores.parquet")
    x = samples["value"].to_numpy()
    assert len(x) == 16
    assert x.min() >= 1.2
    assert x.max() <= 1.6


def test_classes_flag_and_band(model_spec, dataset, tmp_path, capsys):
    assert cli._parse_classes("elliptical=0, lens=1") == {"elliptical": 0, "lens": 1}
    with pytest.raises(probe.ProbeValueError, match="name=column pairs"):
        cli._parse_classes("lens")
    argv = ["bin", "--model", model_spec, "--data", str(dataset), "--by", "theta_E",
            "--out", str(tmp_path), "--quiet"]  # fmt: skip
    assert cli.main([*argv, "--classes", "lens=1"]) == 2
    assert "--classes applies to --by a category column" in capsys.readouterr().err
    assert cli.main([*argv, "--band", "std", "--bins", "3"]) == 0
    assert cli.main([*argv, "--band", "iqr"]) == 2
    import inspect

    assert inspect.signature(probe.plot_results).parameters["band"].default == "ci"
