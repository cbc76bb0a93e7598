"""The one module of probe that names simlens: the simulator probe ships with, and its formats.

probe is simulator-agnostic: it needs only the methods of :class:`probe.SimulatorProtocol`, and a
simulator is named by a ``"module:callable"`` spec. What probe knows of simlens (the package that
ships beside it) lives here: the default specs, the package and distribution names, the image-set
store format, and the two places the command line uses simlens' API (:func:`set_loader`,
:func:`default_simulator`). Every other module of probe imports these names instead of spelling
them out, so an import-linter contract (pyproject.toml) can keep probe from importing simlens
anywhere else.

Nothing here imports simlens at import time: :func:`set_loader` and :func:`default_simulator`
import it when called.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

#: The simulator's package (its log records are ``simlens.*``; its modules are trusted by the
#: Keras adapter; its version goes into provenance once it has been imported).
SIMULATOR_PACKAGE = "simlens"

#: The distribution that ships both packages; probe's ``__version__`` is read from its metadata.
DISTRIBUTION = "simlens-probe"

#: The default ``"module:callable"`` spec of the simulator (called with ``survey=...``).
DEFAULT_SIMULATOR = "simlens:Simulator"

#: The default population module (``detectable_fraction``, ``sky_density``) of survey yields.
DEFAULT_POPULATION = "simlens.yields"

#: The ``format`` attribute of a sharded ``.zarr`` image-set store.
ZARR_FORMAT = "simlens-zarr"

#: The simulator's name in prose (reports, help texts, error messages).
SIMULATOR_NAME = SIMULATOR_PACKAGE

#: The command that finishes an unfinished ``.zarr`` store (named in error messages).
RESUME_COMMAND = "simlens generate ... --resume"


def set_loader() -> Callable[[str], Any] | None:
    """``simlens.load`` (path -> image set) when simlens provides it, else None (the caller then
    reads the HDF5 set with :func:`probe.adapters.datasets.load_hdf5`)."""
    try:
        import simlens

        return simlens.load
    except (ImportError, AttributeError):
        return None


def default_simulator(survey: str, npix: int | None = None) -> Any:
    """A ``simlens.Simulator`` for the survey preset ``survey`` (``npix`` pixels a side if given).

    Raises
    ------
    ProbeValueError
        simlens (or its ``Simulator``) cannot be imported.
    """
    from probe.errors import ProbeValueError

    try:
        import simlens

        simulator = simlens.Simulator
    except (ImportError, AttributeError) as err:
        raise ProbeValueError(f"probe resim needs simlens.Simulator: {err}") from err
    return simulator(survey=survey) if npix is None else simulator(survey=survey, npix=npix)
