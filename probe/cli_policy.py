"""One exit-code policy for both command lines, ``simlens`` and ``probe``.

- 0: success.
- 1: a check ran and failed (``probe check`` only: an expectation does not hold).
- 2: bad input: a usage error, a bad value, a missing or unreadable file or model. One line on
  stderr, ``<prog> <command>: error: <message>``, and no traceback unless ``--debug``.
- 130: interrupted (Ctrl-C); 143: terminated (SIGTERM, what SLURM and ``kill`` send). Both
  clean up like any failure: temporary files removed, existing outputs untouched, one line.

Commands that write refuse to replace an existing output unless given ``--overwrite``
(:func:`probe.safe_io.overwrite_policy`).

Both CLIs build their parsers with :class:`Parser` (usage errors raise instead of exiting, so
``main`` returns the code) and run their commands through :func:`run`. Every command accepts
``--debug`` (anywhere on the line), which prints the traceback of an error as well, and
``-v/--verbose`` and ``-q/--quiet`` (:func:`add_verbosity`): the library modules log through
:mod:`logging` (``probe.*``, ``simlens.*``) and never print; :func:`run` shows their messages on
stderr at INFO (``-v``: DEBUG too; ``-q``: errors only, and no progress bars).

This module is deliberately tiny and imports nothing heavy: ``simlens.cli`` uses it too.
"""

from __future__ import annotations

import argparse
import contextlib
import logging
import re
import signal
import sys
import threading
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from probe.adapters.simulators import SIMULATOR_PACKAGE

__all__ = [
    "EXIT_BAD_INPUT",
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "LOGGERS",
    "BadInput",
    "Parser",
    "add_debug",
    "add_overwrite",
    "add_verbosity",
    "add_version",
    "log_to_stderr",
    "notice",
    "one_line",
    "positive_int",
    "run",
    "verbosity_options",
]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143

EPILOG = (
    "Exit codes: 0 success, 1 a check failed (probe check), 2 bad input or an unreadable "
    "file/model (one-line message; --debug adds the traceback), 130 interrupted, 143 terminated "
    "(SIGTERM). Outputs are never replaced without --overwrite."
)

_MAX_MESSAGE = 400  # characters of an error message printed without --debug


class BadInput(Exception):
    """A command-line value is invalid; the message names the parameter."""


# A token argparse would take for an option although it is a value: "-1,0,1", "-1:1:0.5", "-.5".
_NEGATIVE_VALUE = re.compile(r"^-(\d|\.\d|inf|nan)", re.IGNORECASE)


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: unwinds like Ctrl-C, so every writer cleans up."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated()


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Any:
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be set from the main thread
        return
    previous = signal.signal(signal.SIGTERM, _on_sigterm)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def positive_int(text: str) -> int:
    """An argparse type: an integer >= 1 (the message names the range; argparse the option)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an integer >= 1, got {value}")
    return value


def add_overwrite(parser: argparse.ArgumentParser) -> None:
    """Add ``--overwrite`` to a command that writes files."""
    parser.add_argument(
        "--overwrite",
        action="store_true",
        help="replace existing output files (default: refuse, nothing written)",
    )


class Parser(argparse.ArgumentParser):
    """argparse, but usage errors raise :class:`BadInput` instead of exiting, and an option
    taking one value accepts one that starts with '-' (``--values -1,0,1`` as well as
    ``--values=-1,0,1``; plain argparse reads ``-1,0,1`` as an unknown option)."""

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        if args is not None:
            args = self._join_negative_values(list(args))
        return super().parse_known_args(args, namespace)

    def _join_negative_values(self, args: list[str]) -> list[str]:
        one_value = {
            option
            for action in self._actions
            if action.nargs is None and action.option_strings
            for option in action.option_strings
        }
        out: list[str] = []
        i = 0
        while i < len(args):
            token = args[i]
            if token == "--":
                out.extend(args[i:])
                break
            if token in one_value and i + 1 < len(args) and _NEGATIVE_VALUE.match(args[i + 1]):
                out.append(f"{token}={args[i + 1]}")
                i += 2
                continue
            out.append(token)
            i += 1
        return out

    def error(self, message: str) -> None:  # type: ignore[override]
        raise BadInput(f"{self.prog}: error: {message}")


def add_debug(parser: argparse.ArgumentParser, commands: Any) -> None:
    """Add ``--debug`` to ``parser`` and to each sub-command of ``commands`` (the object
    ``parser.add_subparsers()`` returned); call it once every sub-command is added."""
    help_text = "print the traceback of an error (default: one line)"
    parser.add_argument("--debug", action="store_true", help=help_text)
    for sub in commands.choices.values():
        # SUPPRESS: a sub-command's default must not overwrite a --debug given before it.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=help_text)


def add_verbosity(parser: argparse.ArgumentParser, commands: Any) -> None:
    """Add ``-v/--verbose`` and ``-q/--quiet`` to ``parser`` and to each sub-command of
    ``commands`` (as :func:`add_debug`, given before or after the sub-command's name).

    ``args.verbose`` counts ``-v``; ``args.quiet`` (bool) also turns progress bars off. A
    sub-command that already has them (built on its own by :func:`verbosity_options`, e.g.
    ``probe study``) keeps its options, whose defaults then defer to the main parser's."""
    verbosity_options(parser)
    for sub in commands.choices.values():
        own = [a for a in sub._actions if a.dest in ("verbose", "quiet")]
        if own:
            for action in own:
                # SUPPRESS: the sub-command's default must not overwrite a -q given before it.
                action.default = argparse.SUPPRESS
        else:
            verbosity_options(sub, default=argparse.SUPPRESS)


def verbosity_options(parser: argparse.ArgumentParser, default: Any = None) -> None:
    """Add ``-v/--verbose`` (a count, default 0) and ``-q/--quiet`` (default False) to one
    parser; ``default=argparse.SUPPRESS`` for a sub-command of a parser that has them."""
    parser.add_argument(
        "-v", "--verbose", action="count", default=0 if default is None else default,
        help="show DEBUG log messages too (default: INFO and above, on stderr)",
    )  # fmt: skip
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=False if default is None else default,
        help="no progress bars or progress messages; log errors only",
    )  # fmt: skip


def add_version(parser: argparse.ArgumentParser, version: str) -> None:
    """Add ``--version``: prints ``<prog> <version>`` on stdout and exits 0."""
    parser.add_argument(
        "--version", action="version", version=f"%(prog)s {version}", help="print the version"
    )


#: Loggers whose messages the command lines show (the library modules log under these names).
LOGGERS = ("probe", SIMULATOR_PACKAGE)


@contextlib.contextmanager
def log_to_stderr(verbose: int = 0, quiet: bool = False) -> Any:
    """Show the ``probe.*`` and ``simlens.*`` log messages on stderr, one plain line each, for
    the duration of a command: INFO and above; DEBUG too when ``verbose``; ERROR only when
    ``quiet``. The loggers' previous levels are restored and the handler removed afterwards."""
    level = logging.ERROR if quiet else logging.DEBUG if verbose else logging.INFO
    handler = logging.StreamHandler(sys.stderr)  # the stream of now (pytest swaps it)
    handler.setFormatter(logging.Formatter("%(message)s"))
    loggers = [logging.getLogger(name) for name in LOGGERS]
    saved = [lg.level for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(level)
    try:
        yield
    finally:
        for lg, old in zip(loggers, saved):
            lg.removeHandler(handler)
            lg.setLevel(old)


def notice(line: str) -> None:
    """One line for the user on stderr, shown even with ``--quiet``: what a ``--resume`` kept,
    redid or discarded of an earlier run's checkpoints is part of the result, not progress."""
    print(line, file=sys.stderr, flush=True)


def one_line(err: BaseException) -> str:
    """The first line of an error's message (Keras and h5py errors run to many lines)."""
    text = str(err).strip()
    if isinstance(err, KeyError) and len(err.args) == 1 and text.startswith(("'", '"')):
        text = str(err.args[0])
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    first = lines[0] if lines else type(err).__name__
    if len(first) > _MAX_MESSAGE:
        first = first[: _MAX_MESSAGE - 3] + "..."
    if len(lines) > 1 or len(text) > len(first):
        first += " (more with --debug)"
    return first


def run(
    prog: str,
    parser: argparse.ArgumentParser,
    commands: Callable[[argparse.Namespace], int],
    argv: Sequence[str] | None,
) -> int:
    """Parse ``argv`` and run ``commands(args)`` under the exit-code policy above.

    ``commands`` returns 0 or 1 (a failed check); any exception it raises is bad input: exit
    2 with one line on stderr (and the traceback with ``--debug``).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in args_list
    try:
        args = parser.parse_args(args_list)
    except BadInput as err:
        print(err, file=sys.stderr)
        return EXIT_BAD_INPUT
    except SystemExit as exit_:  # --help, --version
        return int(exit_.code or 0)
    command = getattr(args, "command", None)
    where = f"{prog} {command}" if command else prog
    from probe.safe_io import overwrite_policy

    verbosity = log_to_stderr(getattr(args, "verbose", 0), bool(getattr(args, "quiet", False)))
    try:
        with (
            verbosity,
            _sigterm_as_interrupt(),
            overwrite_policy(bool(getattr(args, "overwrite", False))),
        ):
            return commands(args)
    except Terminated:
        print(f"{where}: terminated (SIGTERM); nothing written", file=sys.stderr)
        return EXIT_TERMINATED
    except KeyboardInterrupt:
        print(f"{where}: interrupted; nothing written", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception as err:
        if debug:
            traceback.print_exc()
        known = isinstance(err, ValueError | TypeError | KeyError | OSError | ImportError)
        kind = "" if known or _is_package_error(err) else f"{type(err).__name__}: "
        print(f"{where}: error: {kind}{one_line(err)}", file=sys.stderr)
        return EXIT_BAD_INPUT


def _is_package_error(err: BaseException) -> bool:
    return type(err).__module__.split(".")[0] in ("probe", SIMULATOR_PACKAGE)
