"""Exceptions raised by probe.

Every error also inherits the matching builtin (GalSim's pattern), so ``except ValueError`` keeps
working. Messages name the offending argument and, where there is one, the offending index or value.
"""

from __future__ import annotations


class ProbeError(Exception):
    """Base class of every probe error."""


class ProbeValueError(ProbeError, ValueError):
    """An argument has the right type but a bad value (NaN, wrong length, out of range...)."""


class ProbeTypeError(ProbeError, TypeError):
    """An argument has the wrong type or shape (e.g. a 3-D image array)."""


class ProbeKeyError(ProbeError, KeyError):
    """A named thing (perturber, group, column) does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message, adding quotes
        return str(self.args[0]) if self.args else ""


class ModelLoadError(ProbeValueError):
    """A model cannot be loaded: missing or unsupported file, not a model of its type, a device
    that does not exist, a graph probe cannot feed (the CLI exits 2 on it: bad input)."""
