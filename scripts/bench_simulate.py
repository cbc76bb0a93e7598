#!/usr/bin/env python
"""Simulation throughput: simlens against a plain lenstronomy SimAPI loop, in one process.

Shows 4-band lenses per second per core (CPU time, noise included, default accuracy) for
simlens' sampler and renderer, beside the reference the issue names: one lenstronomy
``SimAPI`` per band and image (DES band config, Gaussian PSF at the image's FWHM, SIE + Sersic
lens light + Sersic source, supersampling 3, Poisson + background noise), on the very same
truth rows, with simlens on the same Gaussian PSF, interleaved in ``--rounds`` rounds (so that a
changing load on a shared machine weighs on both alike); prints the ratio, and the time with
des-y3's default Moffat PSF. Accuracy in the same run: simlens' default numerics and the SimAPI loop
against a converged lenstronomy render (supersampling 30, PSF on the supersampled grid) of
lenses with compact sources (0.02-0.09") and n = 4 lens light, as the largest pixel difference
over the peak. With ``--stream N`` it also streams an N-image set to disk through
``simlens generate`` in a child process and reports its wall time and peak memory (max RSS).

It also times a mixed ``"field"`` set (spirals, ellipticals, stars, mergers, rings, blue
companions; neighbours on, as for the lenses) sampled and rendered the same way, and reports its
throughput beside the lenses' (the issue's target: within 2x).

Run: ``python scripts/bench_simulate.py [--n 200] [--stream 10000]``.
"""

from __future__ import annotations

import argparse
import copy
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def reference_loop(truth, survey, npix: int, noise: bool = True) -> np.ndarray:  # type: ignore[no-untyped-def]
    """One lenstronomy SimAPI per band and image, supersampling 3 (the issue's reference)."""
    from lenstronomy.SimulationAPI.ObservationConfig.DES import DES
    from lenstronomy.SimulationAPI.sim_api import SimAPI

    out = np.empty((len(truth), npix, npix, 4), dtype=np.float32)
    model = {
        "lens_model_list": ["SIE"],
        "lens_light_model_list": ["SERSIC_ELLIPSE"],
        "source_light_model_list": ["SERSIC_ELLIPSE"],
    }
    for k, row in enumerate(truth.itertuples(index=False)):
        for j, b in enumerate(("g", "r", "i", "z")):
            # DES() mutates a module-level dict: deep-copy what it returns, never reuse it
            kw = copy.deepcopy(DES(band=b, psf_type="GAUSSIAN", coadd_years=3).kwargs_single_band())
            kw["seeing"] = float(getattr(row, f"psf_fwhm_{b}"))
            sim = SimAPI(num_pix=npix, kwargs_single_band=kw, kwargs_model=model)
            im = sim.image_model_class({"supersampling_factor": 3})
            kl = [
                {
                    "magnitude": float(getattr(row, f"mag_lens_{b}")),
                    "R_sersic": row.R_sersic_lens_light,
                    "n_sersic": row.n_sersic_lens_light,
                    "e1": row.e1_lens_light,
                    "e2": row.e2_lens_light,
                    "center_x": row.center_x_lens_light,
                    "center_y": row.center_y_lens_light,
                }
            ]
            ks = [
                {
                    "magnitude": float(getattr(row, f"mag_source_unlensed_{b}")),
                    "R_sersic": row.R_sersic_source,
                    "n_sersic": row.n_sersic_source,
                    "e1": row.e1_source,
                    "e2": row.e2_source,
                    "center_x": row.center_x_source,
                    "center_y": row.center_y_source,
                }
            ]
            kl, ks, _ = sim.magnitude2amplitude(kl, ks, None)
            lens = [
                {
                    "theta_E": row.theta_E,
                    "e1": row.e1_mass,
                    "e2": row.e2_mass,
                    "center_x": row.center_x_mass,
                    "center_y": row.center_y_mass,
                }
            ]
            img = im.image(lens, ks, kl, None)
            if noise:
                img = img + sim.noise_for_model(model=img)
            out[k, :, :, j] = img
    return out


def accuracy_systems(sim, n: int):  # type: ignore[no-untyped-def]
    """Lenses with compact sources (r_s 0.02-0.09") and n = 4 lens light, some of them close to
    the caustic (high magnification), lens light 0.5 mag fainter than the unlensed source."""
    t = sim.sample_lenses(n, rng=7)
    rng = np.random.default_rng(7)
    t["n_sersic_lens_light"] = 4.0
    t["R_sersic_source"] = rng.uniform(0.02, 0.09, n)
    near = np.arange(n) % 2 == 0
    th = t["theta_E"].to_numpy()
    off = rng.uniform(-0.05, 0.05, (n, 2)) * th[:, None]
    t.loc[near, "center_x_source"] = (t["center_x_mass"] + off[:, 0])[near]
    t.loc[near, "center_y_source"] = (t["center_y_mass"] + off[:, 1])[near]
    for b in sim.bands:
        t[f"mag_lens_{b}"] = t[f"mag_source_unlensed_{b}"] + 0.5
    return t


def max_error(img: np.ndarray, ref: np.ndarray) -> float:
    """Largest |img - ref| over the pixels and bands of each image, as a fraction of that image's
    peak; the worst image."""
    peak = ref.max(axis=(1, 2, 3), keepdims=True)
    return float((np.abs(img - ref) / peak).max())


def cpu() -> float:
    return time.process_time()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--n", type=int, default=200, help="lenses timed for simlens (default 200)")
    ap.add_argument("--n-ref", type=int, default=40, help="lenses timed for the reference loop")
    ap.add_argument(
        "--n-acc", type=int, default=4, help="lenses for the accuracy check (default 4)"
    )
    ap.add_argument(
        "--rounds", type=int, default=4, help="interleaved simlens / reference rounds (4)"
    )
    ap.add_argument("--stream", type=int, default=0, help="also stream this many images to disk")
    ap.add_argument("--json", type=Path, help="write the figures to this JSON file")
    args = ap.parse_args(argv)

    import simlens
    from simlens.physics.lensing import cached_grid
    from simlens.render.lens_light import prepare_galsim_tables

    # The reference renders a lens galaxy and a lensed source, nothing else: the comparison
    # uses the same content (neighbours off). Default sets (neighbours on) are timed after.
    # The reference's PSF is a Gaussian: the ratio is taken like for like. des-y3's default
    # (Moffat) PSF is timed on the same rows after.
    sim = simlens.Simulator("des-y3", neighbours=False, psf_profile="gaussian")
    sim_moffat = simlens.Simulator("des-y3", neighbours=False)
    sim_nb = simlens.Simulator("des-y3")
    t0 = cpu()
    prepare_galsim_tables()  # galsim's Sersic tables, built once per process
    sim.lenses(16, rng=99)  # SED and distance tables
    t_warm = cpu() - t0

    def end_to_end(s: simlens.Simulator, kind: str) -> tuple[float, float, object]:
        """CPU seconds to sample, then render those rows (as sim.lenses / simlens generate)."""
        t0 = cpu()
        if kind == "lens":
            rows = s.sample_lenses(args.n, rng=1)
        else:
            rows = s.sample_nonlenses(args.n, rng=1, kind=kind)
        t1 = cpu()
        s.render(rows, noise=True)
        return t1 - t0, cpu() - t1, rows

    # simlens and the reference interleaved in rounds, so that a change in the machine's load
    # (shared machines) weighs on both alike
    reference_loop(sim.sample_lenses(2, rng=97), sim.survey, sim.npix)  # lenstronomy set-up
    sim_moffat.render(sim.sample_lenses(8, rng=96), noise=True)  # warm the Moffat tables
    rounds = max(1, min(args.rounds, args.n_ref))
    t_sample = t_render = t_cold = t_moffat = t_ref = 0.0
    parts, n_ref_done = [], 0
    for r in range(rounds):
        lo, hi = r * args.n // rounds, (r + 1) * args.n // rounds
        t0 = cpu()
        rows = sim.sample_lenses(hi - lo, rng=1, start=lo)
        t1 = cpu()
        sim.render(rows, noise=True)
        t2 = cpu()
        cached_grid.cache_clear()  # a truth table from elsewhere (a saved set): nothing cached
        sim.render(rows, noise=True)
        t3 = cpu()
        sim_moffat.render(rows, noise=True)
        t4 = cpu()
        k = (r + 1) * args.n_ref // rounds - r * args.n_ref // rounds
        reference_loop(rows.iloc[:k], sim.survey, sim.npix)
        t5 = cpu()
        t_sample += t1 - t0
        t_render += t2 - t1
        t_cold += t3 - t2
        t_moffat += t4 - t3
        t_ref += t5 - t4
        n_ref_done += k
        parts.append(rows)
    truth = pd.concat(parts, ignore_index=True)

    sim_nb.render(sim_nb.sample_nonlenses(64, rng=98, kind="field"))  # warm the field kinds
    cached_grid.cache_clear()  # these lenses were ray traced above: start cold again
    t_nsample, t_nrender, _ = end_to_end(sim_nb, "lens")
    t_fsample, t_frender, field = end_to_end(sim_nb, "field")

    sub = truth.iloc[:n_ref_done]

    # accuracy of both against a converged lenstronomy render (supersampling 30, PSF on the
    # fine grid): compact sources, n = 4 lens light
    from simlens.physics.reference import lenstronomy_reference

    acc = accuracy_systems(sim, args.n_acc)
    acc_bands = ("g", "z")  # the widest and the narrowest PSF
    idx = [sim.bands.index(b) for b in acc_bands]
    conv = lenstronomy_reference(
        acc, sim.survey, npix=sim.npix, supersampling=30, bands=acc_bands, psf_profile="gaussian"
    )
    err_ours = max_error(sim.render(acc, noise=False)[..., idx].astype(float), conv)
    simapi = reference_loop(acc, sim.survey, sim.npix, noise=False)[..., idx].astype(float)
    # SimAPI counts in its own units (DES config zero points, electrons): scale each image to
    # the reference's total flux, so that only the shape is compared
    simapi *= conv.sum(axis=(1, 2), keepdims=True) / simapi.sum(axis=(1, 2), keepdims=True)
    err_ref = max_error(simapi, conv)

    n = args.n
    per_sample, per_render, per_cold = t_sample / n, t_render / n, t_cold / n
    per_e2e = per_sample + per_render
    per_ref = t_ref / len(sub)
    per_nb = (t_nsample + t_nrender) / n
    per_field = (t_fsample + t_frender) / n
    res = {
        "n": n,
        "n_reference": len(sub),
        "n_accuracy": args.n_acc,
        "max_error_vs_converged_simlens": err_ours,
        "max_error_vs_converged_simapi_ss3": err_ref,
        "warmup_cpu_s": t_warm,
        "sample_ms_per_lens": 1e3 * per_sample,
        "render_after_sampling_ms_per_lens": 1e3 * per_render,
        "render_cold_ms_per_lens": 1e3 * per_cold,
        "end_to_end_lenses_per_s_per_core": 1.0 / per_e2e,
        "render_cold_lenses_per_s_per_core": 1.0 / per_cold,
        "reference_ms_per_lens": 1e3 * per_ref,
        "reference_lenses_per_s_per_core": 1.0 / per_ref,
        "ratio_end_to_end_vs_reference": per_ref / per_e2e,
        "ratio_render_cold_vs_reference": per_ref / per_cold,
        "moffat_render_ms_per_lens": 1e3 * t_moffat / n,
        "ratio_moffat_end_to_end_vs_reference": per_ref / (per_sample + t_moffat / n),
        "with_neighbours_sample_ms_per_lens": 1e3 * t_nsample / n,
        "with_neighbours_render_ms_per_lens": 1e3 * t_nrender / n,
        "with_neighbours_lenses_per_s_per_core": 1.0 / per_nb,
        "field_sample_ms_per_image": 1e3 * t_fsample / n,
        "field_render_ms_per_image": 1e3 * t_frender / n,
        "field_images_per_s_per_core": 1.0 / per_field,
        "field_kinds": {str(k): int(v) for k, v in field["kind"].value_counts().items()},
        "field_time_vs_lens_time": per_field / per_nb,
    }
    print(f"one-off warm-up (SED, distance and galsim tables): {t_warm:.1f} s CPU")
    print("lenses as the reference draws them (lens light + lensed source + noise):")
    print(f"  simlens sample                 : {1e3 * per_sample:7.2f} ms CPU / lens")
    print(f"  simlens render after sampling  : {1e3 * per_render:7.2f} ms CPU / lens")
    print(f"  simlens render, cold (no cache): {1e3 * per_cold:7.2f} ms CPU / lens")
    print(f"  -> {1 / per_e2e:.0f} lenses/s/core sampled + rendered, {1 / per_cold:.0f} cold")
    print(f"  lenstronomy SimAPI loop (ss=3) : {1e3 * per_ref:7.2f} ms CPU / lens ({len(sub)})")
    print(f"  ratio end to end vs reference  : {per_ref / per_e2e:.1f}x")
    print(f"  ratio cold render vs reference : {per_ref / per_cold:.1f}x")
    per_moffat = per_sample + t_moffat / n
    print(
        f"  des-y3 default Moffat PSF      : {1e3 * t_moffat / n:7.2f} ms CPU / lens render, "
        f"{per_ref / per_moffat:.1f}x the reference end to end"
    )
    print(
        f"accuracy vs converged lenstronomy (ss=30, PSF on the fine grid; {args.n_acc} lenses, "
        'r_s < 0.1", n = 4 lens light; g and z): max |diff| / peak'
    )
    print(f"  simlens default                : {100 * err_ours:.2f}%")
    print(f"  lenstronomy SimAPI loop (ss=3) : {100 * err_ref:.2f}% (flux scaled to the reference)")
    print("default sets (interloping neighbours on):")
    print(
        f"  lenses: {1e3 * t_nsample / n:.2f} + {1e3 * t_nrender / n:.2f} ms / image "
        f"-> {1 / per_nb:.0f} / s / core"
    )
    print(
        f"  mixed field set: {1e3 * t_fsample / n:.2f} + {1e3 * t_frender / n:.2f} ms / image "
        f"-> {1 / per_field:.0f} / s / core, {per_field / per_nb:.2f}x the time of a lens"
    )

    if args.stream:
        with tempfile.TemporaryDirectory() as d:
            out = Path(d) / "set.h5"
            cmd = [
                sys.executable,
                "-m",
                "simlens.cli",
                "generate",
                "--n",
                str(args.stream),
                "--kind",
                "lens",
                "--seed",
                "3",
                "--out",
                str(out),
            ]
            t0 = time.perf_counter()
            subprocess.run(cmd, check=True)
            wall = time.perf_counter() - t0
            rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024.0
            size_mb = out.stat().st_size / 2**20
        res.update(
            stream_n=args.stream,
            stream_wall_s=wall,
            stream_peak_rss_mb=rss_mb,
            stream_file_mb=size_mb,
        )
        print(
            f"streamed {args.stream} lenses to disk: {wall:.0f} s wall, peak RSS {rss_mb:.0f} MB, "
            f"file {size_mb:.0f} MB"
        )
    if args.json:
        args.json.write_text(json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
