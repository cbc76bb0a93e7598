"""probe's version: the distribution's, read from its metadata (one source: simlens/_version.py).

Its own module, so that probe's modules read the version without importing the package root.
"""

from __future__ import annotations

from importlib import metadata

from probe.adapters.simulators import DISTRIBUTION

try:
    __version__ = metadata.version(DISTRIBUTION)
except metadata.PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0+unknown"
