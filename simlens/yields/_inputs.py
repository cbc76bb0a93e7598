"""The numbers the yields take from ``catalogs/yields.toml``: survey footprints, the source-count
normalisation and LensPop's published DES prediction."""

from __future__ import annotations

from simlens._catalogs import load_toml
from simlens.errors import SimlensValueError
from simlens.survey import Survey

__all__ = ["catalogue_value", "lenspop_des_prediction", "survey_area"]


def catalogue_value(section: str, key: str) -> float:
    """``value`` of entry ``key`` in section ``[section]`` of ``catalogs/yields.toml``."""
    table = load_toml("yields.toml")
    try:
        e = table[section][key]
        return float(e["value"])
    except (KeyError, TypeError, ValueError):
        raise SimlensValueError(f"catalogs/yields.toml: [{section}] {key} is missing") from None


def survey_area(survey: str | Survey) -> float:
    """Footprint of a lens search on a survey preset, deg^2 (``catalogs/yields.toml``)."""
    name = survey.name if isinstance(survey, Survey) else str(survey)
    table = load_toml("yields.toml")["survey_area"]
    if name not in table:
        raise SimlensValueError(
            f"survey {name!r} has no area in catalogs/yields.toml [survey_area]; known: "
            f"{sorted(table)}; pass area= explicitly"
        )
    return float(table[name]["value"])


def lenspop_des_prediction() -> float:
    """LensPop's predicted number of detectable DES lenses (Collett 2015, optimal coadd): 2400."""
    return catalogue_value("lenspop", "des_detectable")
