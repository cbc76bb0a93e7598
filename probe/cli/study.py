"""``probe study``: the paper's whole study; its parser and runner live in :mod:`probe.study`."""

from __future__ import annotations

import argparse
from typing import Any


def add_study(sub: Any) -> argparse.ArgumentParser:
    from probe.study import add_study_cli

    study = add_study_cli(sub)
    study.set_defaults(func=run_study)
    return study


def run_study(args: argparse.Namespace) -> int:
    """``probe study``: the paper's whole study (:func:`probe.study.run_study_cli`)."""
    from probe.study import run_study_cli

    return run_study_cli(args)
