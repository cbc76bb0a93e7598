"""Architecture of the reference finders (imports Keras; loaded lazily by ``simlens.finders``).

Why this network and not the paper's (10 convolutional layers, two dense layers of 256, ~12M
parameters, trained on ~150,000 images per class on GPUs): the reference finders must train
from scratch on 2 shared CPU cores in minutes, on a few thousand simulated images per class.
Four strided convolutions, each followed by batch normalisation and ReLU, take the 100x100
stamp to 7x7: a 4x4 stride-2 stem (16 filters; the DES PSF FWHM is ~4 px, so halving the
sampling first loses little), then three 3x3 stride-2 convolutions (32, 64, 64 filters). The
receptive field grows to ~46 px (12"), enough to see arcs at Einstein radii of 1-3" (4-11 px)
together with the lens. A 64-unit dense layer with dropout reads the 7x7x64 map (position
matters: lensing features sit around the centre) and one sigmoid unit gives p(lens). That is
~0.26M parameters (a 1.1 MB ``.keras`` file, no optimizer state). Strided convolutions instead of
convolution + max-pooling blocks cost ~10 ms per training image on this 2-core machine (vs.
~23 ms for stride-1 blocks of the same widths): a few minutes per network. The paper's depth
would overfit a few thousand examples and take hours on CPUs.

Scaling lives inside the model as a fixed, serialisable layer (:class:`AsinhStretch`):
``asinh(x / scale)`` per band, with ``scale`` ~ the sky noise of a DES coadd pixel in counts at
zero point 30. It is linear within the noise and logarithmic for bright cores, and it keeps
absolute band ratios (no per-image normalisation), so the network can use colour, as the
paper's networks did (their colour-jitter result depends on it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import keras

#: Default stretch scale, counts at zero point 30 per pixel (about one sky-noise sigma in griz).
STRETCH_SCALE = 10.0
#: Lens-galaxy flux ratios g/i and r/i (counts) that :class:`ColourResidual`'s regularised fit
#: falls back to: medians of the fitted ratios over simulated training lens galaxies (des-sv).
PRIOR_COLOUR = (0.07, 0.38)
#: Weight of that prior, counts^2 (see :class:`ColourResidual`).
PRIOR_WEIGHT = 1e4


@keras.saving.register_keras_serializable(package="simlens")
class AsinhStretch(keras.layers.Layer):
    """``asinh(x / scale)``: fixed (non-trainable) stretch of counts, elementwise.

    Parameters
    ----------
    scale : float
        Counts (zero point 30) where the stretch turns from linear to logarithmic.
    """

    def __init__(self, scale: float = STRETCH_SCALE, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scale = float(scale)

    def call(self, inputs: Any) -> Any:
        return keras.ops.arcsinh(keras.ops.cast(inputs, self.compute_dtype) / self.scale)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return input_shape

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "scale": self.scale}


@keras.saving.register_keras_serializable(package="simlens")
class ColourResidual(keras.layers.Layer):
    """Bands minus the lens-colour-scaled reference band: ``x_b - alpha_b x_ref`` (counts).

    ``alpha_b`` is fitted per image by weighted least squares over the centre of the stamp
    (Gaussian weight of ``sigma`` pixels), where the lens galaxy dominates:
    ``alpha_b = sum(w x_b x_ref) / sum(w x_ref^2)``. A lens galaxy has nearly the same profile
    in every band, so the residual removes most of its light and leaves what has another
    colour: blue arcs (the RingFinder idea, Gavazzi et al. 2014). Without it a faint arc is a
    ~1% modulation of the stretched lens halo, which this small network did not learn to see
    on a few thousand examples (network A collapsed to a constant output).

    Parameters
    ----------
    bands : tuple of int
        Indices of the bands to take residuals of (default g, r).
    reference : int
        Index of the reference band (default i).
    sigma : float
        Width of the central Gaussian weight, pixels.
    prior_colour : tuple of float or None
        Regularised fit (``None``, the default, is the unregularised fit above, kept so that
        saved finders without this key, B, load and score exactly as trained): each
        ``alpha_b`` is pulled towards ``prior_colour[b]`` (a typical lens-galaxy flux ratio
        band/reference) with weight ``prior_weight``:
        ``alpha_b = (sum(w x_b x_ref) + lam a0_b) / (sum(w x_ref^2) + lam)``. Without it an
        empty (blanked, or noise-only) centre makes ``alpha_b`` 0/0 or a ratio of noise: the
        residual then carries the whole galaxy halo with a random colour, and network A scored
        any image with a blanked centre as a lens (p ~ 0.93 at disk radii >= 20 px).
    prior_weight : float
        ``lam`` above, counts^2 (zero point 30): the weighted ``sum(w x_ref^2)`` at which data
        and prior count equally. Default 1e4: ~2.5x a noise-only centre at DES depth
        (``sum(w) sigma_sky,i^2 ~ 100 * 6.4^2``), ~1/40 of the faintest training lens galaxy.
    """

    def __init__(
        self,
        bands: tuple[int, ...] = (0, 1),
        reference: int = 2,
        sigma: float = 4.0,
        prior_colour: tuple[float, ...] | None = None,
        prior_weight: float = PRIOR_WEIGHT,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.bands = tuple(int(b) for b in bands)
        self.reference = int(reference)
        self.sigma = float(sigma)
        self.prior_colour = None if prior_colour is None else tuple(float(a) for a in prior_colour)
        if self.prior_colour is not None and len(self.prior_colour) != len(self.bands):
            raise ValueError(
                f"prior_colour must have one value per band {self.bands}; got {self.prior_colour}"
            )
        if not prior_weight >= 0:
            raise ValueError(f"prior_weight must be >= 0; got {prior_weight}")
        self.prior_weight = float(prior_weight)

    def call(self, inputs: Any) -> Any:
        ops = keras.ops
        x = ops.cast(inputs, self.compute_dtype)
        h, w = x.shape[1], x.shape[2]
        yy = ops.arange(h, dtype=self.compute_dtype) - (h - 1) / 2
        xx = ops.arange(w, dtype=self.compute_dtype) - (w - 1) / 2
        r2 = yy[:, None] ** 2 + xx[None, :] ** 2
        wgt = ops.exp(-0.5 * r2 / self.sigma**2)[None, :, :]
        ref = x[..., self.reference]
        out = []
        if self.prior_colour is None:  # the original fit (finder B's saved layer)
            den = ops.sum(wgt * ref * ref, axis=(1, 2)) + 1e-6
            for b in self.bands:
                alpha = ops.sum(wgt * x[..., b] * ref, axis=(1, 2)) / den
                out.append(x[..., b] - alpha[:, None, None] * ref)
            return ops.stack(out, axis=-1)
        lam = self.prior_weight
        den = ops.sum(wgt * ref * ref, axis=(1, 2)) + (lam if lam > 0 else 1e-6)
        for b, a0 in zip(self.bands, self.prior_colour):
            alpha = (ops.sum(wgt * x[..., b] * ref, axis=(1, 2)) + lam * a0) / den
            out.append(x[..., b] - alpha[:, None, None] * ref)
        return ops.stack(out, axis=-1)

    def compute_output_shape(self, input_shape: Any) -> Any:
        return (*input_shape[:-1], len(self.bands))

    def get_config(self) -> dict[str, Any]:
        return {
            **super().get_config(),
            "bands": list(self.bands),
            "reference": self.reference,
            "sigma": self.sigma,
            **(
                {}
                if self.prior_colour is None
                else {"prior_colour": list(self.prior_colour), "prior_weight": self.prior_weight}
            ),
        }


def build_model(
    *,
    npix: int = 100,
    bands: int = 4,
    filters: tuple[int, ...] = (16, 32, 64, 64),
    dense: int = 64,
    dropout: float = 0.3,
    scale: float = STRETCH_SCALE,
    colour_residuals: bool = True,
    residual_prior: tuple[float, ...] | None = PRIOR_COLOUR,
    seed: int = 0,
    name: str = "finder",
) -> keras.Model:
    """A small CNN: stretch (+ colour residuals), stride-2 conv+BN+ReLU blocks, dense, sigmoid.

    Parameters
    ----------
    npix, bands : int
        Input stamp size (pixels) and number of bands; input is ``(npix, npix, bands)``.
    filters : tuple of int
        Filters of each stride-2 convolution (4x4 for the first, 3x3 after).
    dense : int
        Units of the hidden dense layer.
    dropout : float
        Dropout rate before and after the dense layer (training only).
    scale : float
        :class:`AsinhStretch` scale in counts.
    colour_residuals : bool
        Add the stretched g and r :class:`ColourResidual` channels to the four stretched bands.
    residual_prior : tuple of float or None
        ``prior_colour`` of the :class:`ColourResidual` fit (default :data:`PRIOR_COLOUR`, the
        regularised fit of finders A and C); ``None`` is the unregularised fit finder B was
        trained with.
    seed : int
        Seed of the weight initialisers and dropout (with ``keras.utils.set_random_seed``
        called by the trainer, training is repeatable up to TensorFlow's thread scheduling).
    name : str
        Model name.
    """
    init = keras.initializers.HeUniform
    inputs = keras.Input((npix, npix, bands), dtype="float32", name="images")
    x = AsinhStretch(scale, name="stretch")(inputs)
    if colour_residuals:
        res = AsinhStretch(scale, name="stretch_residual")(
            ColourResidual(prior_colour=residual_prior, name="residual")(inputs)
        )
        x = keras.layers.Concatenate(name="channels")([x, res])
    for i, f in enumerate(filters):
        x = keras.layers.Conv2D(
            f,
            4 if i == 0 else 3,
            strides=2,
            padding="same",
            use_bias=False,  # batch normalisation supplies the offset
            kernel_initializer=init(seed + i),
            name=f"conv{i}",
        )(x)
        x = keras.layers.BatchNormalization(name=f"bn{i}")(x)
        x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    x = keras.layers.Dropout(dropout, seed=seed, name="drop0")(x)
    x = keras.layers.Dense(
        dense, activation="relu", kernel_initializer=init(seed + 100), name="dense"
    )(x)
    x = keras.layers.Dropout(dropout, seed=seed + 1, name="drop1")(x)
    out = keras.layers.Dense(
        1,
        activation="sigmoid",
        kernel_initializer=keras.initializers.GlorotUniform(seed + 101),
        name="p_lens",
    )(x)
    return keras.Model(inputs, out, name=name)


def load_keras(path: str | Path) -> keras.Model:
    """Load a saved finder (``.keras``), uncompiled (inference only)."""
    return keras.models.load_model(path, compile=False)
