"""Shared test configuration."""

import os

import matplotlib

# Tests never open windows; plots are written to files.
matplotlib.use("Agg")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
