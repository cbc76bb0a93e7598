"""Habits both command lines share: ``--version``, ``-v``/``-q`` over :mod:`logging`, help on
every option, each sub-command's help saying what it writes, and library code that logs
instead of printing."""

from __future__ import annotations

import argparse
import ast
import logging
import tomllib
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

import probe
import simlens
from probe import cli as probe_cli
from probe.cli import sensitivity as probe_cli_sensitivity
from probe.errors import ProbeValueError
from simlens import cli as simlens_cli
from simlens.cli import view as simlens_cli_view
from simlens.errors import SimlensValueError

ROOT = Path(__file__).resolve().parents[1]
CLIS = {"probe": probe_cli, "simlens": simlens_cli}


# --------------------------------------------------------------------------- --version
@pytest.mark.parametrize("prog", sorted(CLIS))
def test_version_prints_the_distribution_version(prog: str, capsys: Any) -> None:
    assert CLIS[prog].main(["--version"]) == 0
    out = capsys.readouterr().out
    assert out == f"{prog} {simlens._version.__version__}\n"


def test_version_has_one_source() -> None:
    """simlens/_version.py is the only place: pyproject reads it, simlens imports it, probe
    reads the installed metadata built from it; provenance records carry the same string."""
    from simlens.io.provenance import package_version, provenance

    doc = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    assert "version" not in doc["project"]
    assert "version" in doc["project"]["dynamic"]
    attr = doc["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "simlens._version.__version__"
    version = simlens._version.__version__
    assert simlens.__version__ == version
    assert probe.__version__ == version
    assert metadata.version("simlens-probe") == version
    assert package_version() == version
    assert provenance()["version"] == version
    from probe.provenance import package_versions

    assert package_versions()["probe"] == version
    # The literal is written once in the packages' code.
    literal = f'"{version}"'
    holders = [
        path.relative_to(ROOT).as_posix()
        for package in ("simlens", "probe")
        for path in (ROOT / package).rglob("*.py")
        if literal in path.read_text(encoding="utf-8")
    ]
    assert holders == ["simlens/_version.py"]


# --------------------------------------------------------------------------- help texts
def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    raise AssertionError("no sub-commands")


@pytest.mark.parametrize("prog", sorted(CLIS))
def test_every_option_has_help(prog: str) -> None:
    parser = CLIS[prog]._parser()
    commands = _subcommands(parser)
    assert len(commands) >= 6
    missing = []
    for name, command in [("", parser), *commands.items()]:
        for action in command._actions:
            if isinstance(action, argparse._SubParsersAction):
                continue
            text = action.help
            if not text or text == argparse.SUPPRESS or not text.strip():
                missing.append(f"{prog} {name} {'/'.join(action.option_strings) or action.dest}")
    assert missing == []


@pytest.mark.parametrize("prog", sorted(CLIS))
def test_every_subcommand_says_what_it_writes_and_its_exit_codes(prog: str) -> None:
    for name, command in _subcommands(CLIS[prog]._parser()).items():
        text = " ".join((command.description or "").split()).lower()
        assert "exit" in text, f"{prog} {name}: no exit codes in its description"
        assert "writes" in text or "write " in text, f"{prog} {name}: does not say what it writes"
        assert command.format_help()  # the help renders (no stray % in a help text)


# --------------------------------------------------------------------------- -v / -q
def _stop_after_logging(name: str, error: type[Exception]) -> Any:
    """A seam of a command that logs one INFO and one DEBUG line, then fails (exit 2)."""
    log = logging.getLogger(name)

    def seam(*args: Any, **kwargs: Any) -> Any:
        log.info("info line from %s", name)
        log.debug("debug line from %s", name)
        raise error("stopped after logging")

    return seam


def _argv(prog: str, tmp_path: Path) -> list[str]:
    if prog == "probe":
        return ["sweep", "--model", "m:f", "--data", "d.h5", "--perturber", "blur",
                "--values", "1", "--out", str(tmp_path / "out")]  # fmt: skip
    return ["info", str(tmp_path / "set.h5")]


@pytest.fixture
def logging_seams(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        probe_cli_sensitivity,
        "sensitivity_probe",
        _stop_after_logging("probe.sweeps.sensitivity", ProbeValueError),
    )
    monkeypatch.setattr(
        simlens_cli_view, "summary", _stop_after_logging("simlens.io.dataset", SimlensValueError)
    )


@pytest.mark.parametrize("prog", sorted(CLIS))
@pytest.mark.parametrize(
    ("flags", "info", "debug"),
    [([], True, False), (["-v"], True, True), (["--verbose"], True, True), (["-q"], False, False),
     (["--quiet"], False, False)],
)  # fmt: skip
def test_verbosity_flags_control_the_library_logs(
    prog: str,
    flags: list[str],
    info: bool,
    debug: bool,
    tmp_path: Path,
    capsys: Any,
    logging_seams: None,
) -> None:
    before = {name: logging.getLogger(name).handlers[:] for name in ("probe", "simlens")}
    for argv in ([*flags, *_argv(prog, tmp_path)], [*_argv(prog, tmp_path), *flags]):
        assert CLIS[prog].main(argv) == 2
        captured = capsys.readouterr()
        assert ("info line from" in captured.err) is info, argv
        assert ("debug line from" in captured.err) is debug, argv
        assert "stopped after logging" in captured.err  # errors always show
        assert "line from" not in captured.out  # logs go to stderr, results to stdout
    # Nothing left behind: the handler is removed, the levels restored.
    assert {name: logging.getLogger(name).handlers for name in before} == before


def test_quiet_also_stops_progress_bars() -> None:
    for argv in (["-q", "sweep"], ["sweep", "--quiet"]):
        args = probe_cli._parser().parse_args(
            [*argv, "--model", "m:f", "--data", "d", "--perturber", "blur", "--values", "1"]
        )
        assert args.quiet is True
    study = probe_cli._parser().parse_args(["-q", "study", "--model", "m:f", "--out", "x"])
    assert study.quiet is True  # a sub-command's own -q default does not undo it
    assert probe_cli._parser().parse_args(["study", "--model", "m:f", "--out", "x"]).quiet is False


# --------------------------------------------------------------------------- library: no print
_CLI_MODULES = {
    "probe/cli_policy.py",
    *(path.relative_to(ROOT).as_posix() for path in (ROOT / "simlens" / "cli").glob("*.py")),
    *(path.relative_to(ROOT).as_posix() for path in (ROOT / "probe" / "cli").glob("*.py")),
}


def _prints_outside_cli(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []

    def visit(node: ast.AST, function: str) -> None:
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            function = node.name
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Name)
            and node.func.id == "print"
            and not function.endswith("_cli")  # a command's entry point prints its results
        ):
            found.append(f"{path.relative_to(ROOT)}:{node.lineno} in {function or 'module'}")
        for child in ast.iter_child_nodes(node):
            visit(child, function)

    visit(tree, "")
    return found


def test_library_code_logs_and_never_prints() -> None:
    offenders = [
        line
        for package in ("simlens", "probe")
        for path in sorted((ROOT / package).rglob("*.py"))
        if path.relative_to(ROOT).as_posix() not in _CLI_MODULES
        for line in _prints_outside_cli(path)
    ]
    assert offenders == []


def test_verbose_shows_the_debug_messages_of_a_real_run(tmp_path: Path, capsys: Any) -> None:
    """``probe check -v`` shows the cache's DEBUG lines (lookups, hits, stores) on stderr;
    without ``-v`` they stay hidden, and stdout (the verdicts) is the same either way."""
    from tests.probe.test_gate import _write_suite

    model = "tests.probe.test_gate:ring_model"
    argv = ["check", "--suite", str(_write_suite(tmp_path)), "--out", str(tmp_path / "out"),
            "--cache-dir", str(tmp_path / "cache"), "--model", model, "--baseline", model,
            "--overwrite"]  # fmt: skip
    assert probe_cli.main(argv) == 0
    plain = capsys.readouterr()
    assert "probe cache:" not in plain.err
    assert probe_cli.main([*argv, "-v"]) == 0
    verbose = capsys.readouterr()
    assert "probe cache: set" in verbose.err
    assert ": hit" in verbose.err  # the second run reads what the first stored
    assert "PASSED" in verbose.out
    assert "probe cache:" not in verbose.out
