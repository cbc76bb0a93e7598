"""Tests of simlens.io.plotting: colour composites and contact sheets."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from simlens.errors import SimlensKeyError, SimlensValueError
from simlens.io.dataset import Dataset
from simlens.io.plotting import colour_composite, contact_sheet
from simlens.io.plotting import panel_title as _title

BANDS = ("g", "r", "i", "z")


def blob(npix: int = 24, flux: float = 1000.0, sigma: float = 2.0) -> np.ndarray:
    """A round Gaussian of ``flux`` counts in every band, (npix, npix, 4)."""
    y, x = np.mgrid[:npix, :npix] - (npix - 1) / 2
    profile = np.exp(-0.5 * (x**2 + y**2) / sigma**2)
    profile *= flux / profile.sum()
    return np.repeat(profile[:, :, None], 4, axis=2).astype(np.float32)


def test_composite_shape_and_dtype() -> None:
    stack = np.stack([blob(), blob(flux=10.0)])
    rgb = colour_composite(stack)
    assert rgb.shape == (2, 24, 24, 3)
    assert rgb.dtype == np.uint8
    one = colour_composite(stack[0])
    assert one.shape == (24, 24, 3)
    np.testing.assert_array_equal(one, rgb[0])


def test_brighter_object_gives_brighter_composite() -> None:
    fluxes = [30.0, 300.0, 3000.0, 30000.0]
    totals = [int(colour_composite(blob(flux=f)).astype(np.int64).sum()) for f in fluxes]
    assert totals == sorted(totals)
    assert len(set(totals)) == len(totals)


def test_empty_sky_is_black_and_colours_follow_bands() -> None:
    assert colour_composite(np.zeros((8, 8, 4), np.float32)).max() == 0
    i_only = blob()
    i_only[:, :, [0, 1, 3]] = 0.0  # flux in i alone: shown in red
    centre = colour_composite(i_only)[12, 12]
    assert centre[0] > 0
    assert centre[1] == centre[2] == 0
    g_only = blob()
    g_only[:, :, 1:] = 0.0  # g alone: blue
    centre = colour_composite(g_only)[12, 12]
    assert centre[2] > 0
    assert centre[0] == centre[1] == 0


def test_flat_spectrum_is_grey() -> None:
    pixel = colour_composite(blob())[12, 12]
    assert pixel[0] == pixel[1] == pixel[2] > 0


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"images": np.zeros((4, 4))}, SimlensValueError, "images"),
        ({"images": np.zeros((4, 4, 3))}, SimlensValueError, "bands"),
        ({"images": np.full((4, 4, 4), np.nan)}, SimlensValueError, "finite"),
        ({"images": np.zeros((4, 4, 4)), "rgb": ("y", "r", "g")}, SimlensKeyError, "rgb"),
        ({"images": np.zeros((4, 4, 4)), "stretch": 0.0}, SimlensValueError, "stretch"),
        ({"images": np.zeros((4, 4, 4)), "Q": -1.0}, SimlensValueError, "Q"),
    ],
)
def test_composite_validates(kwargs: dict, error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        colour_composite(**kwargs)


def test_titles() -> None:
    assert _title(pd.Series({"label": 1, "kind": "lens", "theta_E": 1.234})) == 'lens θE=1.23"'
    assert _title(pd.Series({"label": 0, "kind": "elliptical", "theta_E": np.nan})) == "elliptical"
    assert _title(pd.Series({"label": 0})) == "non-lens"
    assert _title(pd.Series({"label": 1})) == "lens"


@pytest.mark.parametrize(("n", "ncols", "shape"), [(5, 3, (2, 3)), (2, 4, (1, 2)), (16, 4, (4, 4))])
def test_contact_sheet_size(tmp_path: Path, n: int, ncols: int, shape: tuple[int, int]) -> None:
    images = np.stack([blob(flux=100.0 * (k + 1)) for k in range(n)])
    truth = pd.DataFrame(
        {
            "label": [k % 2 for k in range(n)],
            "kind": ["elliptical", "lens"] * (n // 2) + ["elliptical"] * (n % 2),
            "theta_E": [np.nan, 1.5] * (n // 2) + [np.nan] * (n % 2),
        }
    )
    out = contact_sheet(images, truth, path=tmp_path / "sheet.png", ncols=ncols, panel_px=64)
    assert out == tmp_path / "sheet.png"
    png = imread(out)
    nrows, cols = shape
    assert png.shape[:2] == (nrows * (64 + 8), cols * 64)
    assert [p.name for p in tmp_path.iterdir()] == ["sheet.png"]


def test_contact_sheet_from_dataset(tmp_path: Path) -> None:
    images = np.stack([blob(), blob(flux=10.0), blob(flux=1e4)])
    ds = Dataset(
        images=images, truth=pd.DataFrame({"label": [1, 0, 1], "theta_E": [1.1, np.nan, 2.0]})
    )
    contact_sheet(ds, path=tmp_path / "sheet.png", titles=["a", "b", "c"])
    png = imread(tmp_path / "sheet.png")
    assert png.shape[:2] == (160 + 20, 3 * 160)
    # the brightest image's panel is brighter than the faintest one's
    panels = [png[20:, k * 160 : (k + 1) * 160, :3].sum() for k in range(3)]
    assert panels[2] > panels[0] > panels[1]


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": np.zeros((0, 4, 4, 4))}, "images"),
        ({"images": np.zeros((2, 4, 4, 4)), "ncols": 0}, "ncols"),
        ({"images": np.zeros((2, 4, 4, 4)), "panel_px": 4}, "panel_px"),
        ({"images": np.zeros((2, 4, 4, 4)), "truth": pd.DataFrame({"label": [1]})}, "truth"),
        ({"images": np.zeros((2, 4, 4, 4)), "titles": ["a"]}, "titles"),
    ],
)
def test_contact_sheet_validates(tmp_path: Path, kwargs: dict, match: str) -> None:
    with pytest.raises(SimlensValueError, match=match):
        contact_sheet(path=tmp_path / "sheet.png", **kwargs)
    assert list(tmp_path.iterdir()) == []


def test_matplotlib_is_imported_lazily_and_pyplot_never() -> None:
    code = (
        "import sys, numpy as np, tempfile, os\n"
        "import simlens.io.plotting as p\n"
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at module import'\n"
        "d = tempfile.mkdtemp()\n"
        "p.contact_sheet(np.zeros((1, 8, 8, 4)), path=os.path.join(d, 's.png'))\n"
        "assert 'matplotlib.pyplot' not in sys.modules, 'pyplot imported'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
