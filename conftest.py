"""Doctests of the packages (``--doctest-modules``, pyproject.toml) run in a temporary directory."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _doctest_in_tmp_path(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """A docstring example that writes a file (``ds.save("set.h5")``) writes it in a temp dir."""
    if isinstance(request.node, pytest.DoctestItem):
        monkeypatch.chdir(request.getfixturevalue("tmp_path"))
