"""The one loader of ``"module:callable"`` specs (models, simulators and their factories).

A spec names an object by the module to import and the attribute path inside it, e.g.
``"simlens:Simulator"`` or ``"mypkg.models:build.finder"``. Importing a module runs its code, so
a spec is code the caller chose, never read from a file that is not trusted.
"""

from __future__ import annotations

import importlib
from typing import Any


def load_callable(spec: str, *, default_attr: str | None = None) -> Any:
    """The object that ``spec`` (``"module:attr"``, ``attr`` may be dotted) names.

    Parameters
    ----------
    spec : str
        ``"module:attr"``; the module is imported, then each part of ``attr`` is looked up in
        turn.
    default_attr : str, optional
        The attribute to use when ``spec`` names none (``"module"`` or ``"module:"``).

    Raises
    ------
    ImportError
        The module cannot be imported.
    AttributeError
        The module (or an object on the path) has no such attribute.
    """
    module_name, _, attr = spec.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in (attr or default_attr or "").split("."):
        obj = getattr(obj, part)
    return obj
