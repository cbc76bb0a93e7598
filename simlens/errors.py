"""Exceptions raised by simlens.

Every error inherits from a builtin as well (GalSim's pattern), so ``except ValueError`` keeps
working, and carries the offending parameter name in its message.
"""

from __future__ import annotations


class SimlensError(Exception):
    """Base class of every simlens error."""


class SimlensValueError(SimlensError, ValueError):
    """A parameter is outside its valid range or of the wrong form.

    The message names the parameter, the valid range and the value received.
    """


class SimlensKeyError(SimlensError, KeyError):
    """A named thing (survey, kind, band, truth column) does not exist."""

    def __str__(self) -> str:  # KeyError would repr() the message, adding quotes
        return str(self.args[0]) if self.args else ""
