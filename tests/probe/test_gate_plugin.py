"""probe's pytest plugin: one test item per expectation, shared gate run, inert without options.

Runs pytest in-process (``pytester``) on a tiny suite with a ring 'simulator' and numpy models
written into the test's directory.
"""

from __future__ import annotations

import importlib
import io
from importlib.metadata import entry_points

import pandas as pd
import pytest

FAKES = """
import numpy as np
import pandas as pd

N = 12
GATE_RUNS = []


class RingSim:
    def __init__(self, survey="des-sv"):
        self.survey = survey

    def _table(self, n, rng, label, **c):
        gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
        return pd.DataFrame({"label": np.full(n, label), "theta_E": gen.uniform(1, 2.7, n) * label,
                             "seed": gen.integers(0, 2**31, n)})

    def sample_lenses(self, n, *, rng, **c):
        return self._table(n, rng, 1)

    def sample_nonlenses(self, n, *, rng, kind="elliptical", **c):
        return self._table(n, rng, 0)

    def render(self, truth, *, noise=True):
        yy, xx = np.mgrid[:N, :N] - (N - 1) / 2
        d = np.hypot(xx, yy)
        out = np.empty((len(truth), N, N, 2), np.float32)
        for k, row in enumerate(truth.itertuples()):
            g = np.random.default_rng(int(row.seed))
            out[k, :, :, 0] = np.exp(-d / 2) + 0.1 * g.normal(size=d.shape)
            out[k, :, :, 1] = (row.label * np.exp(-((d - 2 * row.theta_E) ** 2))
                               + 0.1 * g.normal(size=d.shape))
        return out

    def vary(self, truth, name, value):
        return truth.assign(**{name: value})


def model(images):
    GATE_RUNS.append(len(images))
    x = np.asarray(images, dtype=np.float64)
    return 1 / (1 + np.exp(-(x[..., 1].mean(axis=(1, 2)) - 0.1) * 30))
"""

SUITE = """
seed = 1
n_boot = 500

[data]
simulator = "probe_fakes:RingSim"

[data.sets.main]
n_lenses = 80
n_nonlenses = 80

[[expectation]]
type = "min_score"
name = "non-lens score"
group = "nonlens"
min_mean = 0.6

[[expectation]]
type = "no_regression"
name = "no regression under blur"
over = "blur"
values = [0.0, 0.5]
delta = 0.03

[[expectation]]
type = "min_score"
name = "impossible lens floor"
over = "theta_E"
range = [1.0, 2.7]
bins = 2
min_mean = 0.99
"""

USER_TEST = """
from probe.testing import assert_gate

def test_uses_the_shared_result(probe_gate_result, probe_suite):
    import probe_fakes
    assert len(probe_gate_result.outcomes) == len(probe_suite.expectations) == 3
    calls = len(probe_fakes.GATE_RUNS)
    assert calls > 0  # the gate ran once, for the items and this fixture alike
    assert [o.name for o in probe_gate_result.failures] == ["impossible lens floor"]
"""


def _plugin_args() -> list[str]:
    """``-p probe.pytest_plugin`` unless the installed package registers the entry point."""
    if any(ep.name == "probe" for ep in entry_points(group="pytest11")):
        return []
    return ["-p", "probe.pytest_plugin"]


# In-process runs drop the modules they imported, and some extension modules cannot be loaded
# twice in one process (pandas' Arrow extension types, scipy's compiled modules): import what
# the gate uses now, before any inner run (its cache writes Parquet, its tests use scipy).
pd.DataFrame({"a": [1]}).to_parquet(io.BytesIO())
importlib.import_module("scipy.stats")
importlib.import_module("scipy.special")
importlib.import_module("probe.gating.run")
importlib.import_module("probe.study")


@pytest.fixture
def project(pytester):
    pytester.makepyfile(probe_fakes=FAKES)
    pytester.makefile(".toml", suite=SUITE)
    pytester.syspathinsert()
    return pytester


def test_plugin_is_inert_without_options(project):
    project.makepyfile(test_plain="def test_one():\n    assert True\n")
    project.makepyfile(test_fixture=USER_TEST)
    result = project.runpytest_inprocess(*_plugin_args(), "-p", "no:cacheprovider", "-rs")
    result.assert_outcomes(passed=1, skipped=1)
    result.stdout.fnmatch_lines(["*the probe gate needs --probe-suite and --probe-model*"])
    result.stdout.fnmatch_lines(["collected 2 items"])  # no expectation items added
    assert "= probe gate =" not in result.stdout.str()  # and no gate summary


def test_each_expectation_is_a_test_item(project, tmp_path):
    out = tmp_path / "reports"
    project.makepyfile(test_fixture=USER_TEST)
    result = project.runpytest_inprocess(
        *_plugin_args(), "-p", "no:cacheprovider", "-v",
        "--probe-model", "probe_fakes:model", "--probe-baseline", "probe_fakes:model",
        "--probe-suite", "suite.toml", "--probe-out", str(out),
        "--probe-cache-dir", str(tmp_path / "cache"), "--probe-seed", "2",
    )  # fmt: skip
    result.assert_outcomes(passed=3, failed=1)
    result.stdout.fnmatch_lines(
        [
            "suite.toml::non-lens score PASSED*",
            "suite.toml::no regression under blur PASSED*",
            "suite.toml::impossible lens floor FAILED*",
            "*min_score 'impossible lens floor' FAILS: mean lens score must exceed 0.99*"
            "theta_E [[]1, 1.85): measured*required > 0.99*",
            "*probe gate*",
            "FAILED: 2 of 3 expectations hold",
        ]
    )
    assert {p.name for p in out.iterdir()} == {"report.html", "report.json", "junit.xml"}
    assert '"seed": 2' in (out / "report.json").read_text()


def test_only_selected_items_run(project, tmp_path):
    result = project.runpytest_inprocess(
        *_plugin_args(), "-p", "no:cacheprovider", "-k", "blur",
        "--probe-model", "probe_fakes:model", "--probe-baseline", "probe_fakes:model",
        "--probe-suite", "suite.toml", "--probe-cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    result.assert_outcomes(passed=1, deselected=2)


def test_usage_errors(project):
    result = project.runpytest_inprocess(*_plugin_args(), "--probe-suite", "suite.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--probe-suite needs --probe-model*"])
    project.makefile(".toml", bad=SUITE.replace("min_mean = 0.6", "min_men = 0.6"))
    result = project.runpytest_inprocess(
        *_plugin_args(), "--probe-suite", "bad.toml", "--probe-model", "probe_fakes:model"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*#1 ('non-lens score'): unknown key 'min_men'*"])


def test_a_gate_that_cannot_run_fails_every_item(project, tmp_path):
    result = project.runpytest_inprocess(
        *_plugin_args(), "-p", "no:cacheprovider",
        "--probe-model", "probe_fakes:missing", "--probe-baseline", "probe_fakes:model",
        "--probe-suite", "suite.toml", "--probe-cache-dir", str(tmp_path / "cache"),
    )  # fmt: skip
    result.assert_outcomes(failed=3)
    result.stdout.fnmatch_lines(["*the probe gate could not run*has no 'missing'*"])
