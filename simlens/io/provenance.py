"""Provenance records: which code, which versions and when, as plain JSON-serialisable dicts.

A record names no host, user or path, so that sets made on different machines compare equal
apart from their creation time. Versions come from installed package metadata
(:mod:`importlib.metadata`), which does not import the packages themselves: building a record
stays cheap even for galsim and lenstronomy.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import json
import platform
from collections.abc import Mapping
from importlib import metadata
from pathlib import PurePath
from typing import Any

from simlens.errors import SimlensValueError

__all__ = ["DISTRIBUTION", "dumps", "jsonable", "package_version", "provenance", "utc_now"]

#: Name of the installed distribution that ships ``simlens`` (see ``pyproject.toml``).
DISTRIBUTION = "simlens-probe"

# Libraries whose versions change what simlens produces or how it is read back.
_DEPENDENCIES = (
    "numpy",
    "scipy",
    "pandas",
    "astropy",
    "galsim",
    "lenstronomy",
    "h5py",
    "skypy",
    "speclite",
)


def package_version() -> str:
    """Version of the ``simlens-probe`` distribution (``simlens/_version.py``, its one source).

    Returns
    -------
    str
        The version string (PEP 440); the installed metadata carries the same one.
    """
    from simlens._version import __version__

    return __version__


def _dependency_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def utc_now() -> str:
    """Current UTC time, ISO 8601 to the second, e.g. ``2025-01-31T12:00:00Z``."""
    now = _dt.datetime.now(_dt.UTC).replace(microsecond=0)
    return now.isoformat().replace("+00:00", "Z")


def jsonable(value: Any, *, name: str = "value") -> Any:
    """Convert ``value`` to plain JSON types (dict, list, str, int, float, bool, None).

    Numpy scalars and arrays become Python numbers and lists, tuples become lists, paths become
    strings, dataclasses and objects with a ``to_dict()`` method become dicts. Non-finite floats
    are kept (JSON ``NaN``/``Infinity`` as Python's :mod:`json` writes them).

    Parameters
    ----------
    value
        The object to convert.
    name : str
        Name used in the error message (e.g. ``"meta"``).

    Raises
    ------
    SimlensValueError
        If some part of ``value`` has no JSON form; the message gives its location.
    """
    return _jsonable(value, name)


def _jsonable(value: Any, where: str) -> Any:
    import numpy as np  # local: keeps `import simlens.io.provenance` light

    if value is None or isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        return value
    if isinstance(value, np.generic):
        return _jsonable(value.item(), where)
    if isinstance(value, np.ndarray):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value.tolist())]
    if isinstance(value, PurePath):
        return str(value)
    if isinstance(value, Mapping):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise SimlensValueError(
                    f"{where}: keys must be strings for JSON, got {key!r} ({type(key).__name__})"
                )
            out[key] = _jsonable(item, f"{where}[{key!r}]")
        return out
    if isinstance(value, list | tuple):
        return [_jsonable(v, f"{where}[{i}]") for i, v in enumerate(value)]
    to_dict = getattr(value, "to_dict", None)
    if callable(to_dict):
        return _jsonable(to_dict(), where)
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _jsonable(dataclasses.asdict(value), where)
    raise SimlensValueError(
        f"{where}: {type(value).__name__} has no JSON form; use str, numbers, lists or dicts"
    )


def provenance(**extra: Any) -> dict[str, Any]:
    """A provenance record for data made now by this installation.

    Parameters
    ----------
    **extra
        Further entries (e.g. ``survey=sim.survey``, ``seed=1``, ``cosmology=repr(cosmo)``); they
        are converted with :func:`jsonable` and override the standard keys of the same name.

    Returns
    -------
    dict
        ``package`` (distribution name), ``version`` (its version), ``python``, ``platform``
        (operating system and machine architecture, no host name), ``dependencies`` (name ->
        installed version, or ``None`` if absent), ``created_utc`` (ISO 8601), then ``extra``.
        ``json.dumps`` accepts it unchanged.

    Raises
    ------
    SimlensValueError
        If an ``extra`` value has no JSON form.
    """
    record: dict[str, Any] = {
        "package": DISTRIBUTION,
        "version": package_version(),
        "python": platform.python_version(),
        "platform": f"{platform.system()}-{platform.machine()}",
        "dependencies": {name: _dependency_version(name) for name in _DEPENDENCIES},
        "created_utc": utc_now(),
    }
    for key, value in extra.items():
        record[key] = jsonable(value, name=key)
    return record


def dumps(record: Any) -> str:
    """Serialise a provenance-like record to a JSON string (keys in insertion order)."""
    return json.dumps(jsonable(record, name="record"), allow_nan=True)
