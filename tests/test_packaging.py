"""The distribution ships every package of the source tree (a non-editable install too)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_source_package_is_listed_in_pyproject():
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(cfg["packages"])
    dirs = cfg["package-dir"]
    found = set()
    for name, folder in dirs.items():
        base = ROOT / folder
        for init in base.rglob("__init__.py"):
            rel = init.parent.relative_to(base)
            found.add(".".join([name, *rel.parts]))
    missing = sorted(found - listed)
    assert not missing, f"packages missing from pyproject [tool.setuptools] packages: {missing}"
    for name in listed:  # data-only packages (weights, catalogs) have no __init__.py
        root = max((k for k in dirs if name == k or name.startswith(k + ".")), key=len)
        folder = ROOT / dirs[root] / Path(*name[len(root) :].split(".")[1:])
        assert folder.is_dir(), f"pyproject lists {name}, but {folder} does not exist"
