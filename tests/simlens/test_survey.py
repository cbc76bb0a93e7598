"""Survey presets: values, validation, and that defaults never change."""

import dataclasses
import math
import tomllib

import pytest

from simlens import SimlensValueError, Simulator, available_surveys, load_survey
from simlens._catalogs import catalog_file


def test_presets_available():
    assert {"des-y3", "des-sv"} <= set(available_surveys())


def test_des_y3_values_are_dr1():
    s = load_survey("des-y3")
    assert s.pixel_scale == 0.263
    assert s.zero_point == 30.0
    assert s.band_names == ("g", "r", "i", "z")
    assert [b.psf_fwhm for b in s.bands] == [1.12, 0.96, 0.88, 0.84]
    assert [b.depth_10sigma for b in s.bands] == [24.33, 24.08, 23.44, 22.69]
    assert s.psf_profile == "moffat"  # realistic wings; the study's training PSF is des-sv's
    assert s.moffat_beta == 3.0
    assert s.psf_statistic == "median"


def test_des_sv_is_the_papers_training_psf():
    s = load_survey("des-sv")
    assert [b.psf_fwhm for b in s.bands[:3]] == [1.27, 1.08, 0.98]
    assert s.psf_statistic == "mean"


@pytest.mark.parametrize("name", ["des-y3", "des-sv"])
def test_analytic_depth_matches_published(name):
    s = load_survey(name)
    for b in s.bands:
        assert s.depth(b.name) == pytest.approx(b.depth_10sigma, abs=0.01)


def test_defaults_do_not_change_when_custom_surveys_are_built(tmp_path):
    """lenstronomy's DES config mutates module state; ours must not."""
    before = load_survey("des-y3")
    text = catalog_file("surveys", "des-y3.toml").read_text()
    custom = tmp_path / "custom.toml"
    custom.write_text(text.replace("value = 0.263", "value = 0.2").replace('"des-y3"', '"mine"'))
    mine = load_survey(custom)
    assert mine.pixel_scale == 0.2
    Simulator(mine)
    after = load_survey("des-y3")
    assert after == before
    assert Simulator().survey.pixel_scale == 0.263
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.pixel_scale = 1.0  # type: ignore[misc]


def test_every_number_has_unit_and_source():
    for name in available_surveys():
        data = tomllib.loads(catalog_file("surveys", f"{name}.toml").read_text())
        for section in ("camera", "psf"):
            for key, e in data[section].items():
                assert {"value", "unit", "source"} <= set(e), (name, section, key)
                assert e["source"]
        for band, t in data["bands"].items():
            for key, e in t.items():
                assert {"value", "unit", "source"} <= set(e), (name, band, key)


def _write(tmp_path, text):
    p = tmp_path / "bad.toml"
    p.write_text(text)
    return p


def test_bad_survey_files_name_the_key(tmp_path):
    text = catalog_file("surveys", "des-y3.toml").read_text()
    with pytest.raises(SimlensValueError, match="sky_brightness.*unit"):
        load_survey(_write(tmp_path, text.replace('unit = "mag/arcsec2"', 'unit = "counts"', 1)))
    with pytest.raises(SimlensValueError, match="camera.pixel_scale.*valid range"):
        load_survey(_write(tmp_path, text.replace("value = 0.263", "value = -1.0")))
    with pytest.raises(SimlensValueError, match="missing key camera.read_noise"):
        load_survey(
            _write(
                tmp_path,
                "\n".join(ln for ln in text.splitlines() if not ln.startswith("read_noise")),
            )
        )
    with pytest.raises(SimlensValueError, match="psf.profile"):
        load_survey(_write(tmp_path, text.replace('value = "moffat"', 'value = "airy"')))
    with pytest.raises(KeyError, match="unknown survey 'des-y9'"):
        load_survey("des-y9")


def test_noise_arithmetic():
    s = load_survey("des-y3")
    for b in s.band_names:
        epc = s.electrons_per_count(b)
        band = s.band(b)
        # 1 count at ZP 30 is 10**(-0.4 (30 - zp_e)) e-/s for n_exp * 90 s
        assert epc == pytest.approx(
            band.n_exposures * 90.0 * 10 ** (-0.4 * (30 - band.zero_point_electron))
        )
        sky_e = s.sky_counts_per_pixel(b) * epc
        assert s.background_sigma(b) == pytest.approx(
            math.sqrt(sky_e + band.n_exposures * 49.0) / epc
        )
