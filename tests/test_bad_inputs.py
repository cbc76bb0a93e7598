"""Bad-input contract of both tools, generated from ONE table (issue #18).

Every row is a plausible mistake: a Python call or a command line, the error it must raise and
words its message must contain (the parameter or file, and the valid range or names). Python
calls raise the package's error classes (subclasses of ValueError/TypeError/KeyError), or
OSError subclasses for missing/unreadable paths; the command lines exit 2 with ONE line on stderr
naming the option or file, and no traceback (``--debug`` adds it).

To extend: add a row to ``CASES`` with :func:`py` (a call on the fixture files ``f``) or
:func:`cli` (an argv string with ``{placeholders}`` from :func:`files`, ``{out}`` a fresh
directory per case).
"""

from __future__ import annotations

import os
import shlex
import shutil
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import h5py
import numpy as np
import pandas as pd
import pytest

import probe
import simlens
from probe.errors import ModelLoadError, ProbeError, ProbeKeyError, ProbeValueError
from simlens.errors import SimlensError, SimlensKeyError, SimlensValueError

NAN = float("nan")
INF = float("inf")


@dataclass(frozen=True)
class Case:
    name: str
    call: Callable[[Any], Any] | None  # Python: a call on the fixture files
    argv: str | None  # command line: "simlens ..." or "probe ..."
    error: type[BaseException] | None  # Python: the class the call must raise
    words: tuple[str, ...]  # the message must contain each (case-insensitive)


def py(name: str, call: Callable[[Any], Any], error: type[BaseException], *words: str) -> Case:
    return Case(name, call, None, error, words)


def cli(name: str, argv: str, *words: str) -> Case:
    return Case(name, None, argv, None, words)


# ------------------------------------------------------------------------------ Python calls
def _sim(f: Any) -> Any:
    return simlens.Simulator(npix=16)


def _probe(f: Any, **kw: Any) -> probe.Probe:
    return probe.Probe(f.model_fn, **kw)


def _images(n: int = 4) -> np.ndarray:
    return np.full((n, 8, 8, 2), 0.5, np.float32)


def _binning(**kw: Any) -> Any:
    from probe.binning import Binning

    return Binning.uniform(**kw)


def _paired(values: Any, matrix: Any) -> Any:
    from probe.trends import paired_trend

    return paired_trend(
        np.asarray(values, float),
        np.asarray(matrix, float),
        n_boot=10,
        confidence=0.9,
        rng=np.random.default_rng(0),
        group="lens",
    )


def _stats(**kw: Any) -> Any:
    from probe.statistics import StatsParams

    return StatsParams(**kw)


def _suite(path: Any) -> Any:
    from probe.gating.suite import load_suite

    return load_suite(path)


def _gate_wrong_baseline(f: Any) -> Any:
    from probe.gating.run import run_gate

    return run_gate(f.model_spec, f.suite_ok, baseline=f.wide_spec, data=f.set)


def _dataset(images: Any, truth: pd.DataFrame | None = None) -> Any:
    truth = pd.DataFrame({"label": [1, 0]}) if truth is None else truth
    return simlens.Dataset(images, truth, {}, bands=("g", "r", "i", "z"))


# fmt: off
PY_CASES = [
    # simlens: the simulator and its controls
    py("Simulator npix too small", lambda f: simlens.Simulator(npix=4), SimlensValueError,
       "npix", "[8, 4096]"),
    py("Simulator npix NaN", lambda f: simlens.Simulator(npix=NAN), SimlensValueError, "npix"),
    py("Simulator npix str", lambda f: simlens.Simulator(npix="100"), SimlensValueError, "npix"),
    py("Simulator unknown survey", lambda f: simlens.Simulator("hst-deep"), SimlensKeyError,
       "survey", "des-y3"),
    py("survey TOML damaged", lambda f: simlens.load_survey(f.bad_toml), SimlensValueError,
       "bad.toml"),
    py("survey TOML a directory", lambda f: simlens.load_survey(Path(f.dir)), SimlensValueError,
       "survey", "adir"),
    py("sample n negative", lambda f: _sim(f).sample_lenses(-1, rng=0), SimlensValueError, "n"),
    py("sample theta_E NaN", lambda f: _sim(f).sample_lenses(2, rng=0, theta_E=NAN),
       SimlensValueError, "theta_E"),
    py("sample theta_E inf", lambda f: _sim(f).sample_lenses(2, rng=0, theta_E=INF),
       SimlensValueError, "theta_E"),
    py("sample theta_E out of range", lambda f: _sim(f).sample_lenses(2, rng=0, theta_E=50.0),
       SimlensValueError, "theta_E", "10"),
    py("sample theta_E lo > hi", lambda f: _sim(f).sample_lenses(2, rng=0, theta_E=(2.0, 1.0)),
       SimlensValueError, "theta_E"),
    py("sample psf_scale negative", lambda f: _sim(f).sample_lenses(2, rng=0, psf_scale=-1.0),
       SimlensValueError, "psf_scale"),
    py("sample theta_E wrong type", lambda f: _sim(f).sample_lenses(2, rng=0, theta_E="big"),
       SimlensValueError, "theta_E"),
    py("sample unknown kind", lambda f: _sim(f).sample_nonlenses(2, rng=0, kind="dragon"),
       SimlensValueError, "kind", "elliptical"),
    py("sample unknown source colour",
       lambda f: _sim(f).sample_lenses(2, rng=0, source_colour="plaid"), SimlensValueError,
       "source_colour"),
    py("vary unknown column",
       lambda f: _sim(f).vary(_sim(f).sample_lenses(1, rng=0), "nope", 1.0), SimlensError,
       "nope"),
    py("render not a table", lambda f: _sim(f).render("rows"), SimlensValueError, "truth"),
    # simlens: sets in memory and on disk
    py("Dataset images 3-D", lambda f: _dataset(np.zeros((2, 8, 8))), SimlensValueError,
       "images"),
    py("Dataset images NaN", lambda f: _dataset(np.full((2, 8, 8, 4), NAN)), SimlensValueError,
       "images", "NaN"),
    py("Dataset bands wrong count", lambda f: simlens.Dataset(np.zeros((2, 8, 8, 4)),
       pd.DataFrame({"label": [1, 0]}), {}, bands=("g", "r", "i")), SimlensValueError,
       "bands"),
    py("load missing file", lambda f: simlens.load(f.missing), FileNotFoundError,
       "no such file", "gone.h5"),
    py("load a directory", lambda f: simlens.load(f.dir), IsADirectoryError, "directory", "adir"),
    py("load empty file", lambda f: simlens.load(f.empty), SimlensValueError, "empty.h5",
       "not an HDF5"),
    py("load truncated file", lambda f: simlens.load(f.truncated), SimlensValueError,
       "truncated.h5"),
    py("load text file", lambda f: simlens.load(f.text), SimlensValueError, "text.h5"),
    py("load HDF5 not a set", lambda f: simlens.load(f.plain), SimlensValueError, "plain.h5",
       "not a simlens set"),
    py("load damaged header", lambda f: simlens.load(f.damaged), SimlensValueError,
       "damaged.h5", "damaged"),
    py("load damaged header lazily", lambda f: simlens.load(f.damaged, lazy=True),
       SimlensValueError, "damaged.h5", "damaged"),
    py("read_info damaged header",
       lambda f: __import__("simlens.io.dataset").io.dataset.read_info(f.damaged),
       SimlensValueError, "damaged.h5"),
    py("save into a missing directory",
       lambda f: simlens.load(f.set).save(Path(f.dir) / "no" / "x.h5"), FileNotFoundError,
       "does not exist"),
    py("save under a file", lambda f: simlens.load(f.set).save(Path(f.text) / "x.h5"), OSError,
       "text.h5"),
    py("read_cutouts missing dir",
       lambda f: __import__("simlens.render.inject").render.inject.read_cutouts(f.missing, "griz"),
       SimlensValueError, "cutouts", "not a directory"),
    py("read_cutouts damaged FITS",
       lambda f: __import__("simlens.render.inject").render.inject.read_cutouts(f.cutouts, "g"),
       SimlensValueError, "x_g.fits"),
    # probe: models
    py("Probe batch_size 0", lambda f: _probe(f, batch_size=0), ProbeValueError, "batch_size"),
    py("Probe batch_size float", lambda f: _probe(f, batch_size=1.5), ProbeError, "batch_size"),
    py("Probe missing model file", lambda f: probe.Probe(f.missing_keras), ModelLoadError,
       "gone.keras", "not found"),
    py("Probe model is a directory", lambda f: probe.Probe(f.dir), ModelLoadError, "adir",
       "directory"),
    py("Probe empty .keras", lambda f: probe.Probe(f.empty_keras), ModelLoadError,
       "empty.keras"),
    py("Probe garbage .onnx", lambda f: probe.Probe(f.bad_onnx), ModelLoadError, "bad.onnx"),
    py("Probe garbage .pt", lambda f: probe.Probe(f.bad_pt), ModelLoadError, "bad.pt"),
    py("Probe unknown file type", lambda f: probe.Probe(f.text_txt), ModelLoadError, "text.txt",
       "unsupported"),
    py("Probe text file as .h5 model", lambda f: probe.Probe(f.text), ModelLoadError, "text.h5",
       "not a readable Keras model"),
    py("Probe unimportable spec", lambda f: probe.Probe("no_such_mod_xyz:f"), ModelLoadError,
       "no_such_mod_xyz"),
    py("Probe spec missing attr", lambda f: probe.Probe(f.model_spec + "_nope"), ModelLoadError,
       "has no"),
    py("predict 3-D images", lambda f: _probe(f).predict(np.zeros((4, 8, 8))), ProbeError,
       "images"),
    py("predict wrong output shape", lambda f: probe.Probe(f.wide_spec).predict(_images()),
       ProbeError, "badinput_models:wide"),
    # probe: measurements
    py("sweep unknown perturber",
       lambda f: _probe(f).sweep(_images(), [1, 0, 1, 0], "smudge", [0, 1]), ProbeKeyError,
       "smudge", "blur"),
    py("sweep values NaN",
       lambda f: _probe(f).sweep(_images(), [1, 0, 1, 0], "blur", [0, NAN]), ProbeValueError,
       "values"),
    py("sweep labels wrong length",
       lambda f: _probe(f).sweep(_images(), [1, 0], "blur", [0, 1]), ProbeValueError, "labels"),
    py("sweep labels not 0/1",
       lambda f: _probe(f).sweep(_images(), [1, 0, 2, 0], "blur", [0, 1]), ProbeValueError,
       "labels"),
    py("by_parameter values NaN",
       lambda f: _probe(f).by_parameter(_images(), [1, 0, 1, 0], [1, NAN, 2, 3], bins=2),
       ProbeValueError, "values"),
    py("Binning lo > hi", lambda f: _binning(lo=1.0, hi=0.0, n=5), ProbeValueError, "hi"),
    py("Binning n 0", lambda f: _binning(lo=0.0, hi=1.0, n=0), ProbeValueError, "n"),
    py("Binning NaN edge", lambda f: _binning(lo=0.0, hi=NAN, n=3), ProbeValueError, "finite"),
    py("StatsParams confidence > 1", lambda f: _stats(confidence=1.5), ProbeValueError,
       "confidence"),
    py("StatsParams n_boot 0", lambda f: _stats(n_boot=0), ProbeValueError, "n_boot"),
    py("StatsParams unknown trend", lambda f: _stats(trend="median"), ProbeValueError, "trend"),
    py("paired_trend one value", lambda f: _paired([1.0], [[0.5]]), ProbeValueError,
       "2 distinct values"),
    # probe: suites and the gate
    py("suite missing", lambda f: _suite(f.missing), ProbeValueError, "gone.h5", "not found"),
    py("suite a directory", lambda f: _suite(f.dir), ProbeValueError, "adir"),
    py("suite not TOML", lambda f: _suite(f.bad_toml), ProbeValueError, "bad.toml", "TOML"),
    py("suite unknown expectation key", lambda f: _suite(f.suite_unknown_key), ProbeValueError,
       "unknown key", "treshold"),
    py("suite unknown expectation type", lambda f: _suite(f.suite_unknown_type),
       ProbeValueError, "type", "bogus"),
    py("suite path outside its directory", lambda f: _suite(f.suite_outside), ProbeValueError,
       "outside", "path_outside_suite"),
    py("gate baseline wrong output shape", _gate_wrong_baseline, ProbeError, "baseline"),
    # probe: result files (Parquet, CSV, JSON)
    py("read_metadata garbage Parquet", lambda f: probe.read_metadata(f.bad_parquet),
       ProbeValueError, "bad.parquet", "not a readable"),
    py("read_metadata damaged JSON", lambda f: probe.read_metadata(f.bad_json), ProbeValueError,
       "bad.json"),
    py("read_metadata a directory", lambda f: probe.read_metadata(f.dir_parquet),
       ProbeValueError, "adir.parquet", "directory"),
    py("read_metadata missing", lambda f: probe.read_metadata(f.missing_parquet), OSError,
       "gone.parquet"),
    py("read_metadata unknown suffix", lambda f: probe.read_metadata(f.text_txt),
       ProbeValueError, ".parquet", ".csv"),
]

# ------------------------------------------------------------------------------ command lines
GEN = "simlens generate --n 1 --quiet --out {out}/o.h5"
BIN = "probe bin --model {model_spec} --data {set} --by theta_E --quiet --out {out}"
SWEEP = "probe sweep --model {model_spec} --data {set} --perturber blur --quiet --out {out}"
CHECK = "probe check --model {model_spec} --no-cache --quiet --out {out}"

CLI_CASES = [
    cli("generate --npix 4", GEN + " --npix 4", "npix", "[8, 4096]"),
    cli("generate --npix 99999", GEN + " --npix 99999", "npix", "[8, 4096]"),
    cli("generate --npix abc", GEN + " --npix abc", "--npix", "abc"),
    cli("generate --n 0", "simlens generate --n 0 --out {out}/o.h5", "--n", ">= 1"),
    cli("generate --n -3", "simlens generate --n -3 --out {out}/o.h5", "--n", "-3"),
    cli("generate --kind dragon", GEN + " --kind dragon", "--kind", "dragon", "elliptical"),
    cli("generate --theta-E nan", GEN + " --theta-E nan", "--theta-E", "finite"),
    cli("generate --theta-E 3:1", GEN + " --theta-E 3:1", "--theta-E", "lo <= hi"),
    cli("generate --theta-E 50", GEN + " --theta-E 50", "theta_E", "10"),
    cli("generate --psf-scale -1", GEN + " --psf-scale -1", "psf_scale"),
    cli("generate --seed -1", GEN + " --seed -1", "--seed", "non-negative"),
    cli("generate --survey unknown", GEN + " --survey hst-deep", "survey", "des-y3"),
    cli("generate --survey damaged TOML", GEN + " --survey {bad_toml}", "bad.toml"),
    cli("generate --compression zip", GEN + " --compression zip", "--compression", "gzip"),
    cli("generate --out in missing dir", "simlens generate --n 1 --quiet --out {dir}/no/o.h5",
        "does not exist"),
    cli("generate --out under a file", "simlens generate --n 1 --quiet --out {text}/o.h5",
        "text.h5"),
    cli("generate --out a directory", "simlens generate --n 1 --quiet --out {dir}", "adir"),
    cli("generate --mag-source-g on a non-lens", GEN + " --kind star --mag-source-g 22",
        "--mag-source-g", "lens only"),
    cli("info missing file", "simlens info {missing}", "gone.h5", "no such file"),
    cli("info a directory", "simlens info {dir}", "adir", "directory"),
    cli("info empty file", "simlens info {empty}", "empty.h5"),
    cli("info truncated file", "simlens info {truncated}", "truncated.h5"),
    cli("info damaged header", "simlens info {damaged}", "damaged.h5", "damaged"),
    cli("info HDF5 not a set", "simlens info {plain}", "plain.h5", "not a simlens set"),
    cli("show --n 0", "simlens show {set} --n 0 --out {out}/s.png", "--n", ">= 1"),
    cli("fits --index out of range", "simlens fits {set} --index 99 --out {out}/x.fits",
        "--index", "[-4, 3]"),
    cli("truth --format xls", "simlens truth {set} --format xls", "--format", "parquet"),
    cli("inject --cutouts missing", "simlens inject --cutouts {missing} --out {out}/i.h5",
        "cutouts", "gone.h5"),
    cli("concat --out is an input", "simlens concat {set} --out {set}", "--out"),
    cli("unknown command", "simlens frobnicate", "frobnicate"),
    cli("bin --by unknown column", BIN.replace("theta_E", "nope"), "--by", "nope"),
    cli("bin --bins 0", BIN + " --bins 0", "--bins", ">= 1"),
    cli("bin --batch-size 0", BIN + " --batch-size 0", "--batch-size", ">= 1"),
    cli("bin --n-boot 0", BIN + " --n-boot 0", "--n-boot", ">= 1"),
    cli("bin --bins abc", BIN + " --bins abc", "--bins", "abc"),
    cli("bin --range 2 1", BIN + " --range 2 1", "hi"),
    cli("bin --format xlsx", BIN + " --format xlsx", "--format", "parquet"),
    cli("bin --data missing", BIN.replace("{set}", "{missing}"), "gone.h5", "no such file"),
    cli("bin --data a directory", BIN.replace("{set}", "{dir}"), "adir", "directory"),
    cli("bin --data empty file", BIN.replace("{set}", "{empty}"), "empty.h5"),
    cli("bin --data truncated", BIN.replace("{set}", "{truncated}"), "truncated.h5"),
    cli("bin --data damaged header", BIN.replace("{set}", "{damaged}"), "damaged.h5"),
    cli("bin --model missing .keras", BIN.replace("{model_spec}", "{missing_keras}"),
        "gone.keras", "not found"),
    cli("bin --model a directory", BIN.replace("{model_spec}", "{dir}"), "adir", "directory"),
    cli("bin --model empty .keras", BIN.replace("{model_spec}", "{empty_keras}"), "empty.keras"),
    cli("bin --model garbage .onnx", BIN.replace("{model_spec}", "{bad_onnx}"), "bad.onnx"),
    cli("bin --model garbage .pt", BIN.replace("{model_spec}", "{bad_pt}"), "bad.pt"),
    cli("bin --model unknown module", BIN.replace("{model_spec}", "no_such_mod_xyz:f"),
        "no_such_mod_xyz"),
    cli("bin --model wrong output shape", BIN.replace("{model_spec}", "{wide_spec}"),
        "badinput_models:wide"),
    cli("sweep --perturber unknown", SWEEP.replace("blur", "smudge") + " --values 0,1",
        "smudge", "blur"),
    cli("sweep --values abc", SWEEP + " --values abc", "--values", "start:stop:step"),
    cli("sweep --values 1:0:1", SWEEP + " --values 1:0:1", "--values", "stop >= start"),
    cli("sweep --values nan", SWEEP + " --values 0,nan", "values"),
    cli("sweep --values missing", SWEEP + " --values", "--values"),
    cli("resim --npix 4", "probe resim --model {model_spec} --survey des-sv --param psf_scale "
        "--values 1,2 --n 2 --npix 4 --quiet --out {out}", "npix", "[8, 4096]"),
    cli("resim --survey unknown", "probe resim --model {model_spec} --survey hst --param "
        "psf_scale --values 1,2 --n 2 --quiet --out {out}", "survey", "des-y3"),
    cli("resim --param unknown", "probe resim --model {model_spec} --survey des-sv --param "
        "wobble --values 1,2 --n 2 --npix 16 --quiet --out {out}", "wobble"),
    cli("resim --theta-E nan", "probe resim --model {model_spec} --survey des-sv --param "
        "psf_scale --values 1,2 --theta-E nan --quiet --out {out}", "--theta-E"),
    cli("selection --thresholds 1.5", "probe selection --model {model_spec} --data {set} "
        "--param theta_E --thresholds 1.5 --quiet --out {out}", "threshold", "1.5"),
    cli("selection --param unknown", "probe selection --model {model_spec} --data {set} "
        "--param nope --quiet --out {out}", "nope"),
    cli("yield --threshold 2", "probe yield --model {model_spec} --threshold 2 --n-density 100 "
        "--n-other 2 --npix 16 --quiet", "threshold"),
    cli("check --suite missing", CHECK + " --suite {missing}", "gone.h5", "not found"),
    cli("check --suite a directory", CHECK + " --suite {dir}", "adir"),
    cli("check --suite not TOML", CHECK + " --suite {bad_toml}", "bad.toml", "TOML"),
    cli("check --suite unknown key", CHECK + " --suite {suite_unknown_key}", "treshold"),
    cli("check --suite path outside", CHECK + " --suite {suite_outside}", "outside"),
    cli("check --baseline wrong output shape", CHECK + " --suite {suite_ok} --baseline "
        "{wide_spec} --data {set}", "baseline"),
    cli("check --seed -1", CHECK + " --suite {suite_ok} --seed -1 --data {set}", "seed", ">= 0"),
    cli("study --model missing", "probe study --model {missing_keras} --smoke --out {out}",
        "gone.keras"),
    # more options and outputs
    cli("generate --chunk 0", GEN + " --chunk 0", "--chunk", ">= 1"),
    cli("generate --workers 0", GEN + " --workers 0", "--workers", ">= 1"),
    cli("show --out in missing dir", "simlens show {set} --out {dir}/no/s.png", "does not exist"),
    cli("fits --out under a file", "simlens fits {set} --out {text}/x.fits", "text.h5"),
    cli("truth --out under a file", "simlens truth {set} --out {text}/t.parquet", "text.h5"),
    cli("inject --cutouts damaged FITS", "simlens inject --cutouts {cutouts4} --out {out}/i.h5",
        "x_g.fits", "FITS"),
    cli("inject --psf-fwhm two values", "simlens inject --cutouts {cutouts4} --psf-fwhm 1,2 "
        "--out {out}/i.h5", "--psf-fwhm", "1 or 4"),
    cli("bin --out under a file", BIN.replace("{out}", "{text}/o"), "text.h5"),
    cli("resim --values -1,1 psf_scale", "probe resim --model {model_spec} --survey des-sv "
        "--param psf_scale --values -1,1 --n 2 --npix 16 --quiet --out {out}", "psf_scale"),
    cli("yield --survey unknown", "probe yield --model {model_spec} --threshold 0.5 --survey hst "
        "--n-density 100 --n-other 2 --npix 16 --quiet", "survey", "des-y3"),
    cli("yield --area negative", "probe yield --model {model_spec} --threshold 0.5 --area -5 "
        "--n-density 100 --n-other 2 --npix 16 --quiet", "area"),
    cli("yield --resume without --out", "probe yield --model {model_spec} --threshold 0.5 "
        "--n-density 100 --n-other 2 --npix 16 --resume --quiet", "--resume", "--out"),
    cli("check --suite unknown type", CHECK + " --suite {suite_unknown_type}", "type", "bogus"),
    cli("generate --out unwritable dir", "simlens generate --n 1 --quiet --out {ro}/o.h5",
        "--out", "cannot write"),
    cli("truth --out unwritable dir", "simlens truth {set} --out {ro}/t.parquet", "--out",
        "cannot write"),
    cli("bin --out unwritable dir", BIN.replace("{out}", "{ro}/o"), "--out", "cannot write"),
    cli("check --out unwritable dir", "probe check --model {model_spec} --suite {suite_ok} "
        "--no-cache --quiet --out {ro}/o", "--out", "cannot write"),
    cli("study --out under a file", "probe study --model {model_spec} --smoke --out {text}/o",
        "--out", "text.h5"),
    cli("study --nonlens-kinds unknown", "probe study --model {model_spec} --smoke "
        "--nonlens-kinds dragon --out {out}", "dragon"),
]

# fmt: on
CASES = PY_CASES + CLI_CASES


# ------------------------------------------------------------------------------ fixture files
MODELS = """
import numpy as np


def model(x):
    return np.clip(np.asarray(x, dtype=np.float64).mean(axis=(1, 2, 3)), 0.0, 1.0)


def wide(x):
    return np.full((len(x), 2, 3), 0.5)
"""

SUITE = """
[data]
survey = "des-sv"
{data}

[[expectation]]
type = "{type}"
name = "no worse"
{extra}
"""


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("bad")
    (root / "badinput_models.py").write_text(MODELS)
    sys.path.insert(0, str(root))
    sim = simlens.Simulator(npix=16)
    good = simlens.Dataset.concat(
        [sim.lenses(2, rng=0, theta_E=(1.0, 2.0)), sim.nonlenses(2, rng=1, kind="elliptical")]
    ).save(root / "set.h5")
    damaged = shutil.copy(good, root / "damaged.h5")
    with h5py.File(damaged, "a") as h5:
        h5.attrs["meta"] = "{not json"
    (root / "truncated.h5").write_bytes(good.read_bytes()[:2048])
    (root / "empty.h5").write_bytes(b"")
    (root / "text.h5").write_text("images,labels\n1,2\n")
    (root / "text.txt").write_text("not a model\n")
    with h5py.File(root / "plain.h5", "w") as h5:
        h5["images"] = np.zeros((2, 4, 4, 1))
    (root / "adir").mkdir()
    (root / "empty.keras").write_bytes(b"")
    (root / "bad.onnx").write_bytes(b"\x00not an onnx graph" * 10)
    (root / "bad.pt").write_bytes(b"PK\x03\x04 not torch" * 10)
    (root / "bad.toml").write_text("[data\nsurvey = ")
    (root / "bad.parquet").write_bytes(b"PAR1 garbage")
    (root / "bad.json").write_text('{"metadata": ')
    (root / "adir.parquet").mkdir()
    (root / "cutouts").mkdir()
    (root / "cutouts" / "x_g.fits").write_bytes(b"SIMPLE  = not really FITS")
    (root / "cutouts4").mkdir()
    for band in "griz":
        (root / "cutouts4" / f"x_{band}.fits").write_bytes(b"not FITS at all")
    no_reg = "over = 'theta_E'\nrange = [1.0, 2.0]\nbins = 2\ndelta = 0.5"
    (root / "suite_ok.toml").write_text(
        SUITE.format(data="", type="no_regression", extra=f"set = 'main'\n{no_reg}")
    )
    (root / "suite_unknown_key.toml").write_text(
        SUITE.format(data="", type="no_regression", extra=f"treshold = 0.5\n{no_reg}")
    )
    (root / "suite_unknown_type.toml").write_text(SUITE.format(data="", type="bogus", extra=""))
    (root / "suites").mkdir()
    (root / "suites" / "outside.toml").write_text(
        SUITE.format(data='path = "../set.h5"', type="no_regression", extra=no_reg)
    )
    paths = {
        "set": good,
        "damaged": damaged,
        "truncated": root / "truncated.h5",
        "empty": root / "empty.h5",
        "text": root / "text.h5",
        "text_txt": root / "text.txt",
        "plain": root / "plain.h5",
        "dir": root / "adir",
        "missing": root / "gone.h5",
        "missing_keras": root / "gone.keras",
        "empty_keras": root / "empty.keras",
        "bad_onnx": root / "bad.onnx",
        "bad_pt": root / "bad.pt",
        "bad_toml": root / "bad.toml",
        "bad_parquet": root / "bad.parquet",
        "bad_json": root / "bad.json",
        "dir_parquet": root / "adir.parquet",
        "missing_parquet": root / "gone.parquet",
        "cutouts": root / "cutouts",
        "cutouts4": root / "cutouts4",
        "suite_ok": root / "suite_ok.toml",
        "suite_unknown_key": root / "suite_unknown_key.toml",
        "suite_unknown_type": root / "suite_unknown_type.toml",
        "suite_outside": root / "suites" / "outside.toml",
    }
    ns = {k: os.fspath(v) for k, v in paths.items()}
    ns["ro"] = _unwritable_dir(root)
    ns.update(model_spec="badinput_models:model", wide_spec="badinput_models:wide")
    import badinput_models  # type: ignore[import-not-found]

    ns["model_fn"] = badinput_models.model
    yield SimpleNamespace(**ns)
    sys.path.remove(str(root))
    sys.modules.pop("badinput_models", None)


def _unwritable_dir(root: Path) -> str:
    """A directory this process cannot write in: a read-only one, or (as root, who ignores
    permission bits) /sys, where the kernel refuses new files."""
    ro = root / "readonly"
    ro.mkdir()
    ro.chmod(0o500)
    for candidate in (ro, Path("/sys")):
        try:
            with tempfile.TemporaryFile(dir=candidate):
                pass
        except OSError:
            return os.fspath(candidate)
    return ""  # none here: the rows that need one are skipped


def _run_cli(argv: str, f: Any, out: Path) -> int:
    from probe import cli as probe_cli
    from simlens import cli as simlens_cli

    args = shlex.split(argv.format(out=out, **vars(f)))
    main = {"simlens": simlens_cli.main, "probe": probe_cli.main}[args[0]]
    return main(args[1:])


def _has_words(message: str, words: tuple[str, ...]) -> None:
    for word in words:
        assert word.lower() in message.lower(), f"{word!r} not in {message!r}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, files: Any, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    if case.argv is None:
        assert case.call is not None
        assert case.error is not None
        with pytest.raises(case.error) as info:
            case.call(files)
        err = info.value
        # The package's own class, or an OSError subclass for a path the OS rejects.
        assert isinstance(err, SimlensError | ProbeError | OSError), type(err)
        assert isinstance(err, ValueError | TypeError | KeyError | OSError), type(err)
        _has_words(str(err), case.words)
        return
    if "{ro}" in case.argv and not files.ro:
        pytest.skip("no unwritable directory on this machine")
    capsys.readouterr()
    rc = _run_cli(case.argv, files, tmp_path)
    captured = capsys.readouterr()
    prog = case.argv.split()[0]
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert rc == 2, (rc, captured.err)
    assert len(lines) == 1, captured.err
    assert lines[0].startswith(prog), lines[0]
    assert "Traceback" not in captured.err
    _has_words(lines[0], case.words)
    assert not list(tmp_path.glob("*.h5")), "nothing written on bad input"


def test_table_size() -> None:
    """The issue asks for at least 40 cases; names must be unique (they are the test ids)."""
    assert len(CASES) >= 40
    assert len({c.name for c in CASES}) == len(CASES)


def test_debug_adds_the_traceback(files: Any, tmp_path: Path, capsys) -> None:
    rc = _run_cli("simlens info {damaged} --debug", files, tmp_path)
    err = capsys.readouterr().err
    assert rc == 2
    assert "Traceback" in err
    assert "JSONDecodeError" in err
    assert err.strip().splitlines()[-1].startswith("simlens info: error:")


@pytest.mark.parametrize("values", ["--values=-1,0,1", "--values -1,0,1", "--values -1:1:1"])
def test_negative_values_are_values(files: Any, tmp_path: Path, values: str) -> None:
    """`--values -1,0,1` is read as a value, not an unknown option (argparse's default)."""
    rc = _run_cli(SWEEP.replace("blur", "rot90") + " --plot none --n-boot 10 " + values, files,
                  tmp_path)  # fmt: skip
    assert rc == 0
    table = pd.read_parquet(tmp_path / "sweep_rot90.parquet")
    np.testing.assert_allclose(sorted(table["value"].unique()), [-1.0, 0.0, 1.0])


@pytest.mark.parametrize("kind", ["lens", "field", "elliptical", "spiral", "star"])
@pytest.mark.parametrize("npix", [8, 11, 15])
def test_small_stamps_render(kind: str, npix: int) -> None:
    """npix 8-15 (accepted by the range check) simulates: the neighbours' exclusion disk is
    larger than such a stamp, which made the expected count negative."""
    sim = simlens.Simulator(npix=npix)
    truth = (
        sim.sample_lenses(3, rng=0) if kind == "lens" else sim.sample_nonlenses(3, rng=0, kind=kind)
    )
    images = sim.render(truth)
    assert images.shape == (3, npix, npix, 4)
    assert np.all(np.isfinite(images))


def test_paired_trend_one_image_has_its_intercept() -> None:
    """One image: slope and intercept of its own least-squares line (the intercept used to be
    the slope); no interval or p-value."""
    t = _paired([0.0, 1.0, 2.0], [[0.5, 0.7, 0.9]])
    assert t.slope == pytest.approx(0.2)
    assert t.intercept == pytest.approx(0.5)
    assert np.isnan(t.slope_low)
    assert np.isnan(t.p_value)
