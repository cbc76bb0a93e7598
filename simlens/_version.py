"""The version of the ``simlens-probe`` distribution: the one place it is written.

``pyproject.toml`` reads it at build time (``[tool.setuptools.dynamic]``, parsed statically,
without importing simlens); ``simlens.__version__`` imports it; ``probe.__version__`` reads the
installed distribution's metadata (:mod:`importlib.metadata`), which the build took from here,
so that probe never imports simlens. Bump it here only, then reinstall (``pip install -e .``)
so the metadata follows.
"""

__version__ = "0.1.0"
