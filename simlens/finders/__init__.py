"""Reference lens finders A, B and C (Keras CNNs), trained on simlens images.

* **A**: simulated lenses vs. the *same* elliptical galaxies without a source (matched
  negatives: the lens truth rendered with every source magnitude set to 99, same galaxy, PSF and
  noise seed), so only the lensed source separates the classes (Jacobs et al., Table 1).
  A also saw images with a blanked central disk (``probe.perturbers.DiskOcclusion``), so that an
  empty centre is not taken for a lens, and its colour-residual fit is regularised
  (``ColourResidual.prior_colour``).
* **B**: simulated lenses vs. field non-lenses (the kinds listed in the weights' training record).
* **C**: LensPop-detectable population lenses (``sample_lenses(detectable=True)``) vs. field
  non-lenses at :data:`C_SURVEY` (its Moffat PSF): the population that selection functions and
  yields are computed over (``probe.studies.population.population_selection``). A and B are the
  paper's replicas for the study; C is the finder whose training set matches that population.

A and B are trained at the paper's training PSF (``des-sv``) by ``scripts/train_reference.py``
(C with ``--only C``); the weights ship with the package
(``simlens/finders/weights/{A,B,C}.keras``, with a
``{A,B,C}.json`` training record beside each, and ``{A,B,C}.onnx`` exports of the same weights
made by ``scripts/export_onnx.py``: :func:`onnx_path`). A model takes images exactly as
:meth:`simlens.Simulator.render` returns them (float32 ``(n, 100, 100, 4)``, g r i z counts at
zero point 30; the scaling and a colour-residual channel are fixed layers inside the model) and
returns p(lens) as ``(n, 1)`` sigmoid. Training lenses: :data:`TRAINING_LENSES`.

TensorFlow/Keras is imported only when a model is built or loaded, never by ``import simlens``
or ``import simlens.finders``.

>>> from simlens import finders
>>> model = finders.load("A")              # doctest: +SKIP
>>> model.predict(images).shape            # doctest: +SKIP
(n, 1)
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path
from typing import Any

from ..errors import SimlensValueError

__all__ = [
    "C_SURVEY",
    "NAMES",
    "SURVEY",
    "TRAINING_LENSES",
    "TRAINING_PSF",
    "build_model",
    "load",
    "onnx_path",
    "training_record",
    "weights_path",
]

#: Names of the shipped reference finders.
NAMES = ("A", "B", "C")
#: Survey preset (default PSF, Moffat) of finder C's training images: the demo's yield survey.
C_SURVEY = "des-y3"
#: Survey preset of the training images (the paper's training PSF, DES SV).
SURVEY = "des-sv"
#: PSF profile of the training images: the paper's Gaussian, whatever a preset's default.
TRAINING_PSF = "gaussian"
#: ``Simulator.sample_lenses`` controls of the training lenses (uniform in each range): Einstein
#: radius (arcsec), lensed-source g and lens r (mag); see ``scripts/train_reference.py``.
TRAINING_LENSES: dict[str, tuple[float, float]] = {
    "theta_E": (1.0, 3.0),
    "mag_source_g": (20.0, 22.5),
    "mag_lens_r": (18.0, 21.0),
}


def weights_path(name: str) -> Path:
    """Path of the shipped ``.keras`` file of finder ``name`` (one of :data:`NAMES`)."""
    if name not in NAMES:
        raise SimlensValueError(f"finder name must be one of {NAMES}, got {name!r}")
    return Path(str(resources.files(__package__).joinpath("weights", f"{name}.keras")))


def onnx_path(name: str) -> Path:
    """Path of the shipped ONNX export of finder ``name`` (``scripts/export_onnx.py``).

    Same scores as the ``.keras`` weights within 1e-5; run with onnxruntime
    (``probe.Probe(onnx_path("A"))``), no TensorFlow needed.
    """
    return weights_path(name).with_suffix(".onnx")


def training_record(name: str) -> dict[str, Any]:
    """The training record (JSON) written next to the weights of finder ``name``."""
    path = weights_path(name).with_suffix(".json")
    return json.loads(path.read_text())


def load(name: str) -> Any:
    """Load reference finder ``name`` (one of :data:`NAMES`) as an uncompiled ``keras.Model``.

    Input: float32 ``(n, 100, 100, 4)`` images as ``Simulator.render`` returns them.
    Output: p(lens), ``(n, 1)`` sigmoid.
    """
    path = weights_path(name)
    if not path.is_file():
        raise FileNotFoundError(
            f"weights of finder {name!r} not found at {path}; run scripts/train_reference.py"
        )
    from simlens.finders._model import load_keras

    return load_keras(path)


def build_model(**kwargs: Any) -> Any:
    """A fresh, untrained finder (see :func:`simlens.finders._model.build_model`)."""
    from simlens.finders._model import build_model as _build

    return _build(**kwargs)
