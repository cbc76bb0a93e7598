"""Tests of the ``simlens`` command line (simlens.cli).

Most tests drive the CLI with a small fake simulator that follows the Simulator API contract
(truth first, rendering per row from each row's seed), so they test the CLI's own logic fast;
``test_real_simulator_*`` run it end to end on the real simulator.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from simlens import cli
from simlens.cli import generate as cli_generate
from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.io.dataset import load

BANDS = ("g", "r", "i", "z")


class FakeSurvey:
    name = "fake-des"
    pixel_scale = 0.263
    zero_point = 30.0

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "pixel_scale": self.pixel_scale, "zero_point": self.zero_point}


class FakeSimulator:
    """The Simulator API on toy physics: a Gaussian blob plus noise from the row's seed."""

    bands = BANDS

    def __init__(self, survey: str = "des-y3", npix: int = 100) -> None:
        if survey not in ("des-y3", "des-sv"):
            raise SimlensKeyError(f"survey: unknown survey {survey!r} (des-y3, des-sv)")
        self.survey = FakeSurvey()
        self.npix = npix
        self.render_calls: list[int] = []

    @staticmethod
    def _draw(
        rng: np.random.Generator, value: Any, n: int, name: str, lo: float, hi: float
    ) -> np.ndarray:
        if value is None:
            return rng.uniform(lo, hi, n)
        if isinstance(value, tuple):
            out = rng.uniform(value[0], value[1], n)
        else:
            out = np.full(n, float(value))
        if not ((out > lo) & (out <= hi)).all():
            raise SimlensValueError(f"{name}: must be in ({lo}, {hi}], got {value!r}")
        return out

    def _truth(self, n: int, rng: Any, kind: str, **controls: Any) -> pd.DataFrame:
        if n <= 0:
            raise SimlensValueError(f"n: must be >= 1, got {n}")
        gen = np.random.default_rng(rng)
        seeds = gen.integers(0, 2**62, n)
        psf_scale = self._draw(gen, controls.get("psf_scale", 1.0), n, "psf_scale", 0.0, 10.0)
        theta = self._draw(gen, controls.get("theta_E"), n, "theta_E", 0.0, 10.0)
        truth = pd.DataFrame(
            {
                "label": np.full(n, int(kind == "lens")),
                "kind": pd.Series([kind] * n, dtype="str"),
                "seed": seeds,
                "theta_E": theta if kind == "lens" else np.full(n, np.nan),
                "psf_scale": psf_scale,
                **{f"psf_fwhm_{b}": psf_scale * (1.0 - 0.05 * k) for k, b in enumerate(BANDS)},
                "mag_lens_r": self._draw(
                    gen, controls.get("mag_lens_r"), n, "mag_lens_r", 16.0, 22.0
                ),
            }
        )
        return truth

    def _rows(self, n: int, start: int, rng: int, kind: str, **controls: Any) -> pd.DataFrame:
        # like the real sampler: rows start..start+n-1 of one sequence per seed
        if n <= 0:
            raise SimlensValueError(f"n: must be >= 1, got {n}")
        rows = [self._truth(1, (rng, i), kind, **controls) for i in range(start, start + n)]
        return pd.concat(rows, ignore_index=True)

    def sample_lenses(
        self, n: int, rng: int = 0, start: int = 0, detectable: bool = False, **controls: Any
    ) -> pd.DataFrame:
        return self._rows(n, start, rng, "lens", **controls)

    def sample_nonlenses(
        self, n: int, rng: int = 0, kind: str = "elliptical", start: int = 0, **controls: Any
    ) -> pd.DataFrame:
        if kind not in ("elliptical", "star"):
            raise SimlensKeyError(f"kind: unknown {kind!r}")
        return self._rows(n, start, rng, kind, **controls)

    def render(self, truth: pd.DataFrame, noise: bool = True, *, workers: int = 1) -> np.ndarray:
        self.render_calls.append(len(truth))
        self.workers = workers
        y, x = np.mgrid[: self.npix, : self.npix] - (self.npix - 1) / 2
        out = np.empty((len(truth), self.npix, self.npix, 4), np.float32)
        for k, (_, row) in enumerate(truth.iterrows()):
            flux = 10 ** (-0.4 * (row["mag_lens_r"] - 30.0))
            sigma = 2.0 * row["psf_scale"]
            img = flux * np.exp(-0.5 * (x**2 + y**2) / sigma**2) / (2 * np.pi * sigma**2)
            out[k] = img[:, :, None]
            if noise:
                out[k] += np.random.default_rng(int(row["seed"])).normal(0, 3.0, out[k].shape)
        return out

    def provenance(self, **extra: Any) -> dict[str, Any]:
        return {"survey": self.survey.to_dict(), "cosmology": "toy", "bands": list(BANDS), **extra}


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> list[FakeSimulator]:
    made: list[FakeSimulator] = []

    def build(survey: str, npix: int) -> FakeSimulator:
        made.append(FakeSimulator(survey, npix))
        return made[-1]

    monkeypatch.setattr(cli_generate, "build_simulator", build)
    return made


def generate(out: Path, *extra: str) -> int:
    return cli.main(
        [
            "generate",
            "--n",
            "7",
            "--npix",
            "16",
            "--seed",
            "3",
            "--out",
            str(out),
            "--quiet",
            *extra,
        ]
    )


# --------------------------------------------------------------------------- generate
def test_generate_writes_a_set(
    tmp_path: Path, fake: list[FakeSimulator], capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "set.h5"
    assert generate(out, "--theta-E", "1.0:2.7", "--psf-scale", "0.6", "--chunk", "3") == 0
    assert "wrote 7 lens images" in capsys.readouterr().out
    assert fake[0].render_calls == [3, 3, 1]  # streamed chunk by chunk
    ds = load(out)
    assert len(ds) == 7
    assert ds.images.shape == (7, 16, 16, 4)
    assert ds.bands == BANDS
    assert (ds.labels == 1).all()
    assert ds.truth["theta_E"].between(1.0, 2.7).all()
    assert (ds.truth["psf_scale"] == 0.6).all()
    assert {k: ds.meta[k] for k in ("kind", "n", "seed", "noise", "controls")} == {
        "kind": "lens",
        "n": 7,
        "seed": 3,
        "noise": True,
        "controls": {"psf_scale": 0.6, "theta_E": [1.0, 2.7]},
    }
    assert ds.meta["survey"]["name"] == "fake-des"


def test_generate_is_independent_of_chunk_size(tmp_path: Path, fake: list[FakeSimulator]) -> None:
    sets = []
    for chunk in ("1", "3", "256"):
        out = tmp_path / f"set{chunk}.h5"
        assert generate(out, "--chunk", chunk, "--mag-lens-r", "18:20") == 0
        sets.append(load(out))
    for other in sets[1:]:
        assert other.equals(sets[0])


def test_generate_passes_workers(
    tmp_path: Path, fake: list[FakeSimulator], monkeypatch: pytest.MonkeyPatch
) -> None:
    # --workers N is a Dask LocalCluster of N processes (tests/simlens/test_generate_dask.py
    # runs one on the real simulator); here: the flag reaches the cluster factory.
    import contextlib

    import simlens.scale.cluster

    asked: list[tuple[Any, ...]] = []

    @contextlib.contextmanager
    def no_cluster(workers: int, scheduler: Any, quiet: bool = False) -> Any:
        asked.append((workers, scheduler))
        yield None

    monkeypatch.setattr(simlens.scale.cluster, "dask_client", no_cluster)
    assert generate(tmp_path / "a.h5", "--workers", "3") == 0
    assert asked == [(3, None)]
    assert generate(tmp_path / "b.h5") == 0
    assert load(tmp_path / "a.h5").equals(load(tmp_path / "b.h5"))


def test_generate_nonlenses_and_options(tmp_path: Path, fake: list[FakeSimulator]) -> None:
    out = tmp_path / "stars.h5"
    assert (
        generate(out, "--kind", "star", "--mag-lens-r", "19", "--no-noise", "--compression", "gzip")
        == 0
    )
    ds = load(out)
    assert set(ds.truth["kind"]) == {"star"}
    assert (ds.labels == 0).all()
    assert ds.meta["noise"] is False
    assert ds.images.min() >= 0.0  # no noise


def test_progress_bar_on_stderr(
    tmp_path: Path, fake: list[FakeSimulator], capsys: pytest.CaptureFixture
) -> None:
    assert cli.main(["generate", "--n", "3", "--npix", "8", "--out", str(tmp_path / "s.h5")]) == 0
    assert "simulating" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("args", "names"),
    [
        (["--n", "0"], "--n"),
        (["--n", "-5"], "--n"),
        (["--n", "many"], "--n"),
        (["--chunk", "0"], "--chunk"),
        (["--psf-scale", "abc"], "--psf-scale"),
        (["--theta-E", "nan"], "--theta-E"),
        (["--theta-E", "3:1"], "--theta-E"),
        (["--theta-E", "1:2:3"], "--theta-E"),
        (["--kind", "dragon"], "--kind"),
        (["--kind", "star", "--theta-E", "1.5"], "--theta-E"),
        (["--kind", "elliptical", "--mag-source-g", "22"], "--mag-source-g"),
        (["--seed", "-1"], "--seed"),
        (["--compression", "zip"], "--compression"),
        (["--psf-scale", "-1"], "psf_scale"),  # rejected by the simulator
        (["--theta-E", "12"], "theta_E"),
        (["--kind", "star", "--gamma-ext", "0.1"], "--gamma-ext"),
        (["--kind", "spiral", "--gamma-slope", "2.2"], "--gamma-slope"),
        (["--survey", "hsc"], "survey"),
    ],
)
def test_generate_bad_input(
    tmp_path: Path,
    fake: list[FakeSimulator],
    capsys: pytest.CaptureFixture,
    args: list[str],
    names: str,
) -> None:
    out = tmp_path / "set.h5"
    base = {"--n": "4", "--out": str(out)}
    for flag in list(base):
        if flag in args:
            del base[flag]
    argv = ["generate", "--quiet", *[x for kv in base.items() for x in kv], *args]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert names in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_failure_mid_render_writes_nothing(
    tmp_path: Path,
    fake: list[FakeSimulator],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
) -> None:
    out = tmp_path / "set.h5"
    out.write_bytes(b"previous")
    calls = {"n": 0}
    original = FakeSimulator.render

    def flaky(self: FakeSimulator, truth: pd.DataFrame, noise: bool = True) -> np.ndarray:
        calls["n"] += 1
        if calls["n"] == 2:
            raise SimlensValueError("truth: NaN in column 'theta_E' (valid: finite)")
        return original(self, truth, noise)

    monkeypatch.setattr(FakeSimulator, "render", flaky)
    assert generate(out, "--chunk", "2", "--overwrite") == 2
    assert "theta_E" in capsys.readouterr().err
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["set.h5"]


def test_missing_output_directory(
    tmp_path: Path, fake: list[FakeSimulator], capsys: pytest.CaptureFixture
) -> None:
    assert generate(tmp_path / "no" / "set.h5") == 2
    assert "directory" in capsys.readouterr().err


def test_help_and_usage(capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["--help"]) == 0
    assert "generate" in capsys.readouterr().out
    assert cli.main(["generate", "--help"]) == 0
    assert "--theta-E" in capsys.readouterr().out
    assert cli.main([]) == 2
    assert cli.main(["frobnicate"]) == 2


# --------------------------------------------------------------------------- info / show / fits
@pytest.fixture
def saved(tmp_path: Path, fake: list[FakeSimulator]) -> Path:
    out = tmp_path / "set.h5"
    assert generate(out, "--theta-E", "1.2:1.8") == 0
    return out


def test_info(saved: Path, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert cli.main(["info", str(saved)]) == 0
    text = capsys.readouterr().out
    assert "7 images" in text
    assert "16x16 px" in text
    assert "bands g r i z" in text
    assert "survey fake-des" in text
    assert "kinds: lens 7" in text
    assert "theta_E" in text
    assert "provenance:" in text


def test_info_json(saved: Path, capsys: pytest.CaptureFixture) -> None:
    capsys.readouterr()
    assert cli.main(["info", str(saved), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["n"] == 7
    assert summary["kinds"] == {"lens": 7}
    assert summary["labels"] == {"1": 7}
    lo, hi = summary["ranges"]["theta_E"]
    assert 1.2 <= lo <= hi <= 1.8
    assert summary["meta"]["seed"] == 3


def test_info_on_bad_files(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    assert cli.main(["info", str(tmp_path / "missing.h5")]) == 2
    assert "missing.h5" in capsys.readouterr().err
    (tmp_path / "x.h5").write_text("hello")
    assert cli.main(["info", str(tmp_path / "x.h5")]) == 2
    assert "not an HDF5 file" in capsys.readouterr().err


def test_show(saved: Path, tmp_path: Path) -> None:
    sheet = tmp_path / "sheet.png"
    assert cli.main(["show", str(saved), "--out", str(sheet), "--n", "5", "--ncols", "2"]) == 0
    assert imread(sheet).shape[:2] == (3 * (160 + 20), 2 * 160)
    argv = ["show", str(saved), "--out", str(sheet), "--n", "100", "--overwrite"]
    assert cli.main(argv) == 0  # all 7
    assert imread(sheet).shape[:2] == (2 * (160 + 20), 4 * 160)
    assert cli.main(["show", str(saved), "--out", str(sheet), "--n", "0"]) == 2


def test_fits(saved: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from astropy.io import fits

    out = tmp_path / "sys.fits"
    assert cli.main(["fits", str(saved), "--index", "2", "--out", str(out)]) == 0
    ds = load(saved)
    with fits.open(out) as hdul:
        assert hdul[0].header["SEED"] == int(ds.truth["seed"].iloc[2])
        np.testing.assert_array_equal(hdul["i"].data, ds.images[2, :, :, 2])
        assert hdul["g"].header["PIXSCALE"] == pytest.approx(0.263)
    assert cli.main(["fits", str(saved), "--index", "7", "--out", str(tmp_path / "b.fits")]) == 2
    assert "--index" in capsys.readouterr().err
    assert not (tmp_path / "b.fits").exists()


# --------------------------------------------------------------------------- real simulator
REAL = ["generate", "--n", "5", "--npix", "32", "--seed", "11", "--quiet"]


@pytest.fixture(scope="module")
def real_sets(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The same lens set generated by the real simulator with two chunk sizes."""
    root = tmp_path_factory.mktemp("real")
    out = {}
    for chunk in ("2", "5"):
        out[chunk] = root / f"set{chunk}.h5"
        assert (
            cli.main([*REAL, "--chunk", chunk, "--psf-scale", "0.8:1.2", "--out", str(out[chunk])])
            == 0
        )
    return out


def test_real_simulator_chunk_invariance(real_sets: dict[str, Path]) -> None:
    a, b = load(real_sets["2"]), load(real_sets["5"])
    assert a.images.shape == (5, 32, 32, 4)
    np.testing.assert_array_equal(a.images.view(np.uint32), b.images.view(np.uint32))
    pd.testing.assert_frame_equal(a.truth, b.truth, check_exact=True)
    assert a.truth["psf_scale"].between(0.8, 1.2).all()
    assert (a.labels == 1).all()
    assert a.meta["seed"] == 11
    assert a.meta["survey"]["name"] == "des-y3"


def test_real_simulator_matches_library(real_sets: dict[str, Path]) -> None:
    from simlens.simulator import Simulator

    sim = Simulator("des-y3", npix=32)
    truth = sim.sample_lenses(5, rng=11, psf_scale=(0.8, 1.2))
    images = sim.render(truth)
    ds = load(real_sets["5"])
    pd.testing.assert_frame_equal(ds.truth, truth.reset_index(drop=True), check_exact=True)
    np.testing.assert_array_equal(ds.images, images)


def test_real_simulator_shear_and_slope_flags(tmp_path: Path) -> None:
    """--gamma-ext / --psi-ext / --gamma-slope reach the sampler: the set is the library's."""
    from simlens.simulator import Simulator

    out = tmp_path / "shear.h5"
    flags = ["--gamma-ext", "0.05:0.15", "--psi-ext", "0.3", "--gamma-slope", "1.9:2.1"]
    assert cli.main([*REAL, *flags, "--out", str(out)]) == 0
    ds = load(out)
    sim = Simulator("des-y3", npix=32)
    truth = sim.sample_lenses(
        5, rng=11, gamma_ext=(0.05, 0.15), psi_ext=0.3, gamma_slope=(1.9, 2.1)
    )
    pd.testing.assert_frame_equal(ds.truth, truth.reset_index(drop=True), check_exact=True)
    assert ds.truth["gamma_ext"].between(0.05, 0.15).all()
    assert (ds.truth["psi_ext"] == 0.3).all()
    assert ds.meta["controls"]["gamma_slope"] == [1.9, 2.1]


def test_real_simulator_info_show_fits(
    real_sets: dict[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from astropy.io import fits

    assert cli.main(["info", str(real_sets["2"])]) == 0
    assert "kinds: lens 5" in capsys.readouterr().out
    assert cli.main(["show", str(real_sets["2"]), "--out", str(tmp_path / "s.png")]) == 0
    assert imread(tmp_path / "s.png").shape[:2] == (2 * (160 + 20), 4 * 160)
    assert (
        cli.main(["fits", str(real_sets["2"]), "--index", "1", "--out", str(tmp_path / "s.fits")])
        == 0
    )
    truth = load(real_sets["2"]).truth
    with fits.open(tmp_path / "s.fits") as hdul:
        assert hdul["g"].header["PSF_FWHM"] == pytest.approx(truth["psf_fwhm_g"].iloc[1])
        assert hdul["g"].header["PIXSCALE"] == pytest.approx(0.263)
        assert hdul["g"].header["MAGZERO"] == 30.0


@pytest.mark.parametrize(
    ("args", "name"),
    [
        (["--survey", "hsc"], "survey"),
        (["--psf-scale", "-1"], "psf_scale"),
        (["--mag-lens-r", "45"], "mag_lens_r"),
        (["--kind", "star", "--mag-lens-r", "5"], "mag_lens_r"),
    ],
)
def test_real_simulator_bad_input(
    tmp_path: Path, capsys: pytest.CaptureFixture, args: list[str], name: str
) -> None:
    out = tmp_path / "set.h5"
    assert cli.main([*REAL, *args, "--out", str(out)]) == 2
    assert name in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_debug_adds_the_traceback(tmp_path, capsys):
    """The exit-code policy shared with probe: one line by default, the traceback with --debug."""
    assert cli.main(["info", str(tmp_path / "missing.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("simlens info: error:")
    assert "Traceback" not in err
    assert cli.main(["info", str(tmp_path / "missing.h5"), "--debug"]) == 2
    assert "Traceback" in capsys.readouterr().err


def test_truth_is_read_by_pandas_and_astropy_without_simlens(tmp_path, capsys):
    """The stored truth table (/truth_table in the set) and `simlens truth` exports open in
    pandas and astropy in a process that never imports simlens."""
    import subprocess
    import sys

    from simlens.io.dataset import load

    path = tmp_path / "field.h5"
    gen = ["generate", "--kind", "field", "--n", "6", "--npix", "16", "--seed", "4", "--quiet"]
    assert cli.main([*gen, "--out", str(path)]) == 0
    for fmt in ("parquet", "fits", "ecsv"):
        assert cli.main(["truth", str(path), "--format", fmt]) == 0
    assert (
        cli.main(["truth", str(path), "--format", "fits", "--out", str(tmp_path / "t.fits")]) == 0
    )
    truth = load(path).truth
    code = f"""
import json, sys
import h5py, pandas as pd
from astropy.table import Table
path = {str(path)!r}
stem = path[:-3] + ".truth"
tables = {{
    "astropy h5": Table.read(path, path="truth_table").to_pandas(),
    "pandas h5": pd.DataFrame(h5py.File(path, "r")["truth_table"][()]),
    "parquet": pd.read_parquet(stem + ".parquet"),
    "fits": Table.read(stem + ".fits").to_pandas(),
    "ecsv": Table.read(stem + ".ecsv").to_pandas(),
}}
out = {{}}
for name, t in tables.items():
    kind = [k.decode() if isinstance(k, bytes) else str(k) for k in t["kind"]]
    out[name] = {{"columns": list(t.columns), "kind": kind, "theta_E": t["theta_E"].tolist(),
                  "label": [int(v) for v in t["label"]]}}
assert not any(m.split(".")[0] == "simlens" for m in sys.modules), "simlens was imported"
print(json.dumps(out))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr
    import json

    got = json.loads(done.stdout.strip().splitlines()[-1])
    for name, t in got.items():
        assert t["columns"] == list(truth.columns), name
        assert t["kind"] == truth["kind"].tolist(), name
        assert t["label"] == truth["label"].tolist(), name
        np.testing.assert_array_equal(t["theta_E"], truth["theta_E"].to_numpy(), err_msg=name)
    meta = (
        __import__("pyarrow.parquet").parquet.read_schema(tmp_path / "field.truth.parquet").metadata
    )
    assert json.loads(meta[b"simlens"])["meta"]["seed"] == 4


def _small_set(n: int, seed: int, **extra: Any) -> Any:
    from simlens.io.dataset import Dataset

    gen = np.random.default_rng(seed)
    truth = pd.DataFrame({"label": gen.integers(0, 2, n), "kind": ["lens"] * n, **extra})
    return Dataset(gen.normal(size=(n, 8, 8, 4)).astype(np.float32), truth, {"seed": seed})


def test_concat_joins_sets_in_order(tmp_path):
    from simlens.io.dataset import Dataset

    a, b = _small_set(3, 0), _small_set(4, 1, extra=np.arange(4.0))
    pa, pb = a.save(tmp_path / "a.h5"), b.save(tmp_path / "b.h5")
    assert cli.main(["concat", str(pa), str(pb), "--out", str(tmp_path / "ab.h5")]) == 0
    ab = load(tmp_path / "ab.h5")
    np.testing.assert_array_equal(ab.images, np.concatenate([a.images, b.images]))
    assert ab.truth["extra"].isna().sum() == 3
    assert [part["path"] for part in ab.meta["concat"]] == [str(pa), str(pb)]
    assert isinstance(ab, Dataset)
    assert cli.main(["concat", str(pa), "--out", str(pa)]) == 2
