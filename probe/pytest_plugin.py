"""pytest plugin of the regression gate: every expectation of a suite becomes a test item.

.. code-block:: bash

    pytest --probe-model cand.keras --probe-baseline base.keras --probe-suite suite.toml \\
           [--probe-out reports/] [--probe-cache-dir DIR] [--probe-seed N]

With ``--probe-suite``, one item per expectation (named after it, under the suite file's node)
is added to the session; the gate (:func:`probe.run_gate`) runs once, at the first item,
and each item fails with its outcome's message. ``--probe-out`` writes the HTML, JSON and JUnit
reports at the end of the session. Fixtures: ``probe_suite`` (the loaded suite) and
``probe_gate_result`` (the shared :class:`~probe.GateResult`); both skip the test when
their options are missing.

Registered through the ``pytest11`` entry point ``probe``. Without ``--probe-suite`` it adds
nothing to a session: no items, no imports beyond this module (probe is imported lazily).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

_GATE = pytest.StashKey["_Gate"]()


class _Gate:
    """Runs the gate once per session, when first needed, and remembers the result or error."""

    def __init__(self, config: pytest.Config, suite: Any) -> None:
        self.config = config
        self.suite = suite
        self.result: Any = None
        self.error: BaseException | None = None

    def get(self) -> Any:
        if self.result is None and self.error is None:
            from probe.cache import default_cache_dir
            from probe.gating.run import run_gate

            opt = self.config.getoption
            cache_dir = opt("probe_cache_dir") or default_cache_dir()
            try:
                self.result = run_gate(
                    opt("probe_model"), self.suite, baseline=opt("probe_baseline"),
                    cache_dir=cache_dir, seed=opt("probe_seed"),
                    allow_same_model=bool(opt("probe_allow_same_model")),
                )  # fmt: skip
            except Exception as err:  # reported by every item, not as a crash of the session
                self.error = err
        if self.error is not None:
            raise GateError(f"the probe gate could not run: {self.error}") from self.error
        return self.result


class GateError(Exception):
    """The gate itself failed (bad model, simulator error); every expectation item reports it."""


class ExpectationFailed(AssertionError):
    """An expectation does not hold; the message is the outcome's."""


class SuiteFile(pytest.File):
    """The suite (its TOML file, or the shipped default), parent of the expectation items."""

    def collect(self) -> list[pytest.Item]:
        gate = self.config.stash[_GATE]
        return [
            ExpectationItem.from_parent(self, name=e.name, type_=e.type)
            for e in gate.suite.expectations
        ]


class ExpectationItem(pytest.Item):
    """One expectation of the suite, checked against the session's gate result."""

    def __init__(self, *, type_: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.type_ = type_

    def runtest(self) -> None:
        result = self.config.stash[_GATE].get()
        outcome = next(o for o in result.outcomes if o.name == self.name)
        if not outcome.holds:
            raise ExpectationFailed(outcome.message)

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> Any:
        if isinstance(excinfo.value, ExpectationFailed | GateError):
            return str(excinfo.value)
        return super().repr_failure(excinfo)

    def reportinfo(self) -> tuple[Any, int | None, str]:
        return self.path, None, f"probe {self.type_}: {self.name}"


def pytest_addoption(parser: pytest.Parser) -> None:
    """The ``--probe-*`` options (the plugin does nothing without ``--probe-suite``)."""
    group = parser.getgroup("probe", "probe regression gate (docs/gate.md)")
    group.addoption(
        "--probe-model",
        help="candidate model: .keras, .h5, .onnx, .pt/.pth, .pt2 file or module:callable",
    )
    group.addoption("--probe-baseline", help="baseline model (for no_regression)")
    group.addoption("--probe-suite", help="suite TOML file or 'default': one test per expectation")
    group.addoption("--probe-out", help="write report.html, report.json, junit.xml here")
    group.addoption(
        "--probe-cache-dir", help="cache directory (default $PROBE_CACHE_DIR or ~/.cache/probe)"
    )
    group.addoption("--probe-seed", type=int, help="root seed (default: the suite's)")
    group.addoption(
        "--probe-allow-same-model",
        action="store_true",
        help="allow a candidate whose content digest equals the baseline's",
    )


def pytest_configure(config: pytest.Config) -> None:
    """Load the suite when ``--probe-suite`` is given (usage errors are reported at once)."""
    spec = config.getoption("probe_suite", None)
    if not spec:
        return
    if not config.getoption("probe_model"):
        raise pytest.UsageError("--probe-suite needs --probe-model (the candidate)")
    from probe.errors import ProbeError
    from probe.gating.suite import load_suite

    try:
        suite = load_suite(spec)
    except ProbeError as err:
        raise pytest.UsageError(f"--probe-suite {spec}: {err}") from None
    config.stash[_GATE] = _Gate(config, suite)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(
    session: pytest.Session, config: pytest.Config, items: list[pytest.Item]
) -> None:
    """Put the suite's expectation items first (before ``-k``/``-m`` deselection)."""
    gate = config.stash.get(_GATE, None)
    if gate is None:
        return
    spec = config.getoption("probe_suite")
    if spec == "default":
        from importlib import resources

        path = Path(str(resources.files("probe").joinpath("suites", "default.toml")))
    else:
        path = Path(os.path.abspath(spec))
    suite_node = SuiteFile.from_parent(session, path=path)
    # Collected through the public hooks, so reporters count the items ("collected N items").
    report = suite_node.ihook.pytest_make_collect_report(collector=suite_node)
    suite_node.ihook.pytest_collectreport(report=report)
    items[:0] = [item for item in report.result if isinstance(item, pytest.Item)]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Write the reports if the gate ran and ``--probe-out`` was given."""
    gate = session.config.stash.get(_GATE, None)
    out = session.config.getoption("probe_out", None)
    if gate is not None and gate.result is not None and out:
        gate.result.write(out)


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    """The gate's summary (one line per expectation, timings, cache use), if it ran."""
    gate = config.stash.get(_GATE, None)
    if gate is not None and gate.result is not None:
        terminalreporter.section("probe gate")
        for line in gate.result.summary().splitlines():
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def probe_suite(pytestconfig: pytest.Config) -> Any:
    """The suite given by ``--probe-suite`` (skips without it)."""
    gate = pytestconfig.stash.get(_GATE, None)
    if gate is None:
        pytest.skip("no --probe-suite given")
    return gate.suite


@pytest.fixture(scope="session")
def probe_gate_result(pytestconfig: pytest.Config) -> Any:
    """The session's :class:`probe.GateResult` (runs the gate once; skips without options)."""
    gate = pytestconfig.stash.get(_GATE, None)
    if gate is None:
        pytest.skip("the probe gate needs --probe-suite and --probe-model")
    return gate.get()
