"""The public entry point: :class:`Simulator` = survey + cosmology + stamp size.

Sampling (truth tables) and rendering (images) are separate, pure steps; ``lenses`` and
``nonlenses`` chain them. ``render`` can spread rows over worker processes: each row carries its
own noise seed, so the result is the same for any ``workers`` and ``chunk_size``.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from astropy.cosmology import Cosmology, Planck18
from numpy.typing import NDArray

from simlens.errors import SimlensValueError
from simlens.io.dataset import Dataset
from simlens.io.provenance import provenance
from simlens.render.stamps import render_rows
from simlens.sampling import truth as sampling
from simlens.sampling.variation import unlensed_truth, vary_truth
from simlens.survey import PSF_PROFILES, Survey, load_survey

__all__ = ["Simulator", "jsonable_controls"]


def _render_chunk(args: tuple[pd.DataFrame, Survey, int, bool, str, int]) -> NDArray[np.float32]:
    truth, survey, npix, noise, profile, ss = args
    return render_rows(truth, survey, npix=npix, noise=noise, psf_profile=profile, supersampling=ss)


class Simulator:
    """On-demand DES-like lenses and non-lenses.

    Parameters
    ----------
    survey : str, Path or Survey
        Preset name (``"des-y3"``, ``"des-sv"``), a survey TOML file, or a :class:`Survey`.
    npix : int
        Stamp size in pixels (square), default 100 (26.3 arcsec at 0.263 arcsec/pixel).
    cosmology : astropy Cosmology
        Used for distances, Einstein radii and magnitudes; recorded in provenance.
        Default :data:`astropy.cosmology.Planck18`.
    psf_profile : {"gaussian", "moffat"}, optional
        Overrides the survey's PSF profile.
    supersampling : int
        Sub-pixel grid (per axis) where the lensed source is steep; default 3 (see
        :func:`simlens.physics.lensing.lensed_source_grid`).
    neighbours : bool
        Default of the samplers' ``neighbours``: interloping field galaxies and stars at the
        sky density of a DES coadd in every image (default ``True``;
        :mod:`simlens.sampling.neighbours`).

    Examples
    --------
    >>> sim = Simulator("des-y3")
    >>> ds = sim.lenses(8, rng=1, theta_E=(1.0, 2.7))
    >>> ds.images.shape
    (8, 100, 100, 4)
    """

    def __init__(
        self,
        survey: str | Path | Survey = "des-y3",
        npix: int = 100,
        *,
        cosmology: Cosmology = Planck18,
        psf_profile: str | None = None,
        supersampling: int = 3,
        neighbours: bool = True,
    ) -> None:
        self.survey: Survey = load_survey(survey)
        if not isinstance(neighbours, bool | np.bool_):
            raise SimlensValueError(f"neighbours must be True or False, got {neighbours!r}")
        self.neighbours = bool(neighbours)
        if (
            isinstance(npix, bool)
            or not isinstance(npix, int | np.integer)
            or not 8 <= npix <= 4096
        ):
            raise SimlensValueError(f"npix must be an integer in [8, 4096], got {npix!r}")
        if psf_profile is not None and psf_profile not in PSF_PROFILES:
            raise SimlensValueError(
                f"psf_profile must be one of {PSF_PROFILES}, got {psf_profile!r}"
            )
        if not isinstance(cosmology, Cosmology):
            raise SimlensValueError(f"cosmology must be an astropy Cosmology, got {cosmology!r}")
        if (
            isinstance(supersampling, bool)
            or not isinstance(supersampling, int)
            or not 1 <= supersampling <= 64
        ):
            raise SimlensValueError(
                f"supersampling must be an integer in [1, 64], got {supersampling!r}"
            )
        self.npix = int(npix)
        self.cosmology = cosmology
        self.psf_profile = psf_profile or self.survey.psf_profile
        self.supersampling = supersampling

    def __repr__(self) -> str:
        return (
            f"Simulator(survey={self.survey.name!r}, npix={self.npix}, "
            f"cosmology={self.cosmology.name!r}, psf_profile={self.psf_profile!r}, "
            f"neighbours={self.neighbours})"
        )

    @property
    def bands(self) -> tuple[str, ...]:
        """Band names in channel order, ``("g", "r", "i", "z")`` for DES."""
        return self.survey.band_names

    @property
    def pixel_scale(self) -> float:
        """Arcsec per pixel."""
        return self.survey.pixel_scale

    # -- sampling --------------------------------------------------------------------------
    def sample_lenses(
        self,
        n: int,
        *,
        rng: np.random.Generator | int | None = 0,
        theta_E: Any = None,
        psf_scale: Any = 1.0,
        mag_lens_r: Any = None,
        mag_source_g: Any = None,
        detectable: bool = False,
        start: int = 0,
        source_model: str = "sersic",
        n_sersic_source: Any = None,
        source_colour: str = "mixture",
        neighbours: bool | None = None,
        gamma_ext: Any = None,
        psi_ext: Any = None,
        gamma_slope: Any = None,
    ) -> pd.DataFrame:
        """Truth table of ``n`` lenses.

        Controls (each ``None`` = from the population, a scalar, a ``(low, high)`` uniform range,
        or an array of length ``n``): ``theta_E`` Einstein radius (arcsec, (0, 10]),
        ``psf_scale`` ratio of the PSF FWHM to the preset's (> 0), ``mag_lens_r`` lens galaxy r
        magnitude (AB, [10, 40]), ``mag_source_g`` lensed (observed) source g magnitude (AB,
        [10, 40]). ``detectable=True`` keeps LensPop-detectable systems only (S/N > 20,
        magnification > 3, resolved arcs), as LensPop's own samples. ``start`` returns rows
        ``start .. start + n - 1`` of the seed's sequence.

        Sources: ``source_model`` ``"sersic"`` (smooth) or ``"clumpy"`` (Sersic plus galsim
        ``RandomKnots`` clumps, ray-traced through a source-plane image); ``n_sersic_source``
        a control in [0.5, 8] (default 1, exponential); ``source_colour`` ``"mixture"`` (default:
        an SED drawn per source from the Herbel et al. 2017 blue-galaxy model) or one SED
        template for every source (``"star-forming"``, its mean; ``"passive"``,
        ``"red-sequence"`` for atypical red sources).
        ``neighbours`` (default: the simulator's) adds interloping galaxies and stars.

        Lens mass (off by default, LensPop's SIE): ``gamma_ext`` external shear ([0, 0.5],
        default 0), ``psi_ext`` its angle (rad; default uniform in [0, pi) when ``gamma_ext``
        is given), ``gamma_slope`` lenstronomy's EPL power-law slope ([1.2, 2.8], 2 = SIE).
        """
        return sampling.sample_lenses(
            n,
            survey=self.survey,
            cosmology=self.cosmology,
            npix=self.npix,
            rng=rng,
            theta_E=theta_E,
            psf_scale=psf_scale,
            mag_lens_r=mag_lens_r,
            mag_source_g=mag_source_g,
            detectable=detectable,
            start=start,
            supersampling=self.supersampling,
            source_model=source_model,
            n_sersic_source=n_sersic_source,
            source_colour=source_colour,
            neighbours=self.neighbours if neighbours is None else bool(neighbours),
            gamma_ext=gamma_ext,
            psi_ext=psi_ext,
            gamma_slope=gamma_slope,
        )

    def sample_nonlenses(
        self,
        n: int,
        *,
        rng: np.random.Generator | int | None = 0,
        kind: str = "elliptical",
        psf_scale: Any = 1.0,
        mag_lens_r: Any = None,
        start: int = 0,
        neighbours: bool | None = None,
    ) -> pd.DataFrame:
        """Truth table of ``n`` non-lenses of ``kind``.

        Kinds: ``"elliptical"`` (lens-like deflectors without a source), ``"star"``,
        ``"spiral"``, ``"merger"``, ``"ring"``, ``"blue_companion"`` and ``"field"`` (a mixture
        of them all with count-drawn magnitudes; each row's ``kind`` says which). See
        :mod:`simlens.sampling.kinds`. ``mag_lens_r`` applies to ``"elliptical"``, ``"ring"`` and
        ``"blue_companion"``. ``neighbours`` (default: the simulator's) adds interlopers.
        """
        return sampling.sample_nonlenses(
            n,
            survey=self.survey,
            cosmology=self.cosmology,
            npix=self.npix,
            rng=rng,
            kind=kind,
            psf_scale=psf_scale,
            mag_lens_r=mag_lens_r,
            start=start,
            neighbours=self.neighbours if neighbours is None else bool(neighbours),
        )

    def unlensed(self, truth: pd.DataFrame) -> pd.DataFrame:
        """The same images with the lensed source removed: matched negatives (Network A's).

        Lens rows (``label == 1``) keep every column (lens light, mass, neighbours, PSF and
        ``seed``, hence the noise realisation) but their source has no light
        (``mag_source*`` = 99, ``magnification`` 1, ``snr_source`` 0, not ``detectable``);
        ``label`` becomes 0 and ``kind`` ``"unlensed"``. Other rows are returned unchanged.
        Rendered with noise, the pixels differ from the lens image by the source and by the
        source's Poisson noise only (the Gaussian deviates are the same).
        """
        return unlensed_truth(truth, self.bands)

    def inject(
        self,
        cutouts: Any,
        truth: pd.DataFrame,
        *,
        psf_fwhm: Any = None,
        psf_image: Any = None,
        zero_point: float | None = None,
        pixel_scale: float | None = None,
    ) -> tuple[NDArray[np.float32], pd.DataFrame]:
        """Add the lensed sources of ``truth`` to real cutouts (LensPop "sim1"); see
        :func:`simlens.render.inject.inject` for the arguments. Returns ``(images, truth)``."""
        from simlens.render.inject import inject

        return inject(
            cutouts,
            truth,
            survey=self.survey,
            psf_fwhm=psf_fwhm,
            psf_image=psf_image,
            zero_point=zero_point,
            pixel_scale=pixel_scale,
            supersampling=self.supersampling,
        )

    def vary(self, truth: pd.DataFrame, name: str, value: float) -> pd.DataFrame:
        """The same systems with only control ``name`` set to ``value`` (paired re-simulation).

        ``psf_scale`` rescales every ``psf_fwhm_<band>``; ``psf_scale_source`` sets the column
        of that name (added if absent): the lensed source alone is convolved with that multiple
        of the row's PSF while the lens, neighbours and stars keep ``psf_fwhm_<band>`` (the
        paper's real-galaxy PSF test; non-lenses have no lensed source, so their images do not
        change; the derived truth, S/N and detectability, stays that of the row's PSF);
        ``mag_lens_r`` shifts the lens light
        in all bands; ``mag_source_g`` shifts the source in all bands (observed g becomes
        ``value``); ``theta_E`` changes the Einstein radius (``sigma_v`` re-solved at fixed
        redshifts, source position scaled with it, magnification and S/N recomputed). Seeds are
        kept, so the noise realisation is shared. Non-lens rows are left unchanged by the lens-only
        controls.
        """
        return vary_truth(
            truth,
            name,
            value,
            survey=self.survey,
            npix=self.npix,
            cosmology=self.cosmology,
            supersampling=self.supersampling,
        )

    # -- rendering -------------------------------------------------------------------------
    def render(
        self,
        truth: pd.DataFrame,
        noise: bool = True,
        *,
        workers: int = 1,
        chunk_size: int = 64,
    ) -> NDArray[np.float32]:
        """Images of ``truth``: float32 ``(n, npix, npix, 4)``, channels-last, counts at ZP 30.

        ``render(truth)[k]`` equals ``render(truth.iloc[[k]])[0]`` bit for bit, for any
        ``workers`` (processes) and ``chunk_size``.
        """
        if workers < 1 or chunk_size < 1:
            raise SimlensValueError("workers and chunk_size must be >= 1")
        if workers == 1 or len(truth) <= chunk_size:
            return render_rows(
                truth,
                self.survey,
                npix=self.npix,
                noise=noise,
                psf_profile=self.psf_profile,
                supersampling=self.supersampling,
            )
        out = np.empty((len(truth), self.npix, self.npix, len(self.bands)), dtype=np.float32)
        for start, imgs in self.iter_render(
            truth, noise=noise, workers=workers, chunk_size=chunk_size
        ):
            out[start : start + len(imgs)] = imgs
        return out

    def iter_render(
        self,
        truth: pd.DataFrame,
        *,
        noise: bool = True,
        workers: int = 1,
        chunk_size: int = 64,
    ) -> Iterator[tuple[int, NDArray[np.float32]]]:
        """Yield ``(start_row, images)`` chunk by chunk, in order (bounded memory)."""
        starts = list(range(0, len(truth), chunk_size))
        jobs = [
            (
                truth.iloc[s : s + chunk_size],
                self.survey,
                self.npix,
                noise,
                self.psf_profile,
                self.supersampling,
            )
            for s in starts
        ]
        if workers == 1:
            for s, job in zip(starts, jobs):
                yield s, _render_chunk(job)
            return
        with ProcessPoolExecutor(max_workers=workers) as ex:
            for s, imgs in zip(starts, ex.map(_render_chunk, jobs)):
                yield s, imgs

    # -- sample + render -------------------------------------------------------------------
    def provenance(self, **extra: Any) -> dict[str, Any]:
        """Provenance of data made by this simulator (versions, survey, cosmology, settings)."""
        return provenance(
            survey=self.survey.to_dict(),
            cosmology=repr(self.cosmology),
            npix=self.npix,
            bands=list(self.bands),
            psf_profile=self.psf_profile,
            supersampling=self.supersampling,
            neighbours=self.neighbours,
            sampler_settings=sampling.SamplerSettings.load().table,
            block_size=sampling.BLOCK,
            **extra,
        )

    def lenses(
        self,
        n: int,
        rng: np.random.Generator | int | None = 0,
        *,
        noise: bool = True,
        **controls: Any,
    ) -> Dataset:
        """Sample and render ``n`` lenses: a :class:`simlens.Dataset` (images, truth, labels)."""
        seed = sampling.resolve_entropy(rng)  # recorded, so a Generator seed reproduces too
        truth = self.sample_lenses(n, rng=seed, **controls)
        return Dataset(
            self.render(truth, noise=noise),
            truth,
            self.provenance(
                seed=seed, kind="lens", controls=jsonable_controls(controls), noise=noise
            ),
            bands=self.bands,
        )

    def nonlenses(
        self,
        n: int,
        rng: np.random.Generator | int | None = 0,
        *,
        kind: str = "elliptical",
        noise: bool = True,
        **controls: Any,
    ) -> Dataset:
        """Sample and render ``n`` non-lenses of ``kind``."""
        seed = sampling.resolve_entropy(rng)
        truth = self.sample_nonlenses(n, rng=seed, kind=kind, **controls)
        return Dataset(
            self.render(truth, noise=noise),
            truth,
            self.provenance(
                seed=seed, kind=kind, controls=jsonable_controls(controls), noise=noise
            ),
            bands=self.bands,
        )


def jsonable_controls(controls: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in controls.items():
        if isinstance(v, np.ndarray):
            out[k] = f"array(n={v.size}, min={float(v.min()):.4g}, max={float(v.max()):.4g})"
        elif isinstance(v, tuple):
            out[k] = list(v)
        else:
            out[k] = v
    return out
