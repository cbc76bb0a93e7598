"""Locate the data files of ``catalogs/`` (installed as the data package ``simlens.catalogs``).

An installed wheel carries them as ``simlens/catalogs``; a source checkout used without
installation finds them at the repository root. Every loader goes through :func:`catalog_file`.
"""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from importlib.abc import Traversable
from pathlib import Path
from typing import Any

__all__ = ["catalog_file", "catalog_root", "load_toml"]


@cache
def catalog_root() -> Traversable:
    """The root of the catalogs data tree."""
    try:
        root = resources.files("simlens.catalogs")
        if root.joinpath("surveys").is_dir():
            return root
    except ModuleNotFoundError:
        pass
    return Path(__file__).resolve().parent.parent / "catalogs"


def catalog_file(*parts: str) -> Traversable:
    """A file inside ``catalogs/`` (e.g. ``catalog_file("surveys", "des-y3.toml")``)."""
    node = catalog_root()
    for p in parts:
        node = node.joinpath(p)
    return node


def load_toml(*parts: str) -> dict[str, Any]:
    """Parse a TOML file of ``catalogs/``."""
    return tomllib.loads(catalog_file(*parts).read_text(encoding="utf-8"))
