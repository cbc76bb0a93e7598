"""Shared test configuration."""

import os

import matplotlib

# Tests never open windows; plots are written to files.
matplotlib.use("Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

# The `pytester` fixture, for testing probe's pytest plugin (tests/probe/test_gate_plugin.py).
pytest_plugins = ["pytester"]
