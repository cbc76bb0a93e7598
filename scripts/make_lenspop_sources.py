"""Write catalogs/lenspop_sources.csv.gz from LensPop's released source catalogue.

Usage: python scripts/make_lenspop_sources.py PATH/lsst.1sqdegree_catalog2.txt

The input is ``lsst.1sqdegree_catalog2.txt`` of github.com/tcollett/LensPop (Collett 2015; the
LSST ImSim-based mock catalogue that LensPop's ``SourcePopulation_.loadlsst`` reads: 34,331
galaxies in 0.2 x 0.2 deg). Kept: redshift, g/r/i/z AB magnitudes and the rest-frame absolute
r magnitude (LensPop's ``Mv``, the input of its size law ``RofMz``), every row, in file order;
redshift to 1e-4, magnitudes to 1e-3. Run once by hand; nothing is fetched at run time.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

OUT = Path(__file__).resolve().parents[1] / "catalogs" / "lenspop_sources.csv.gz"
COLUMNS = {  # LensPop column -> ours
    "redshift": "z_source",
    "g_ab": "mag_g",
    "r_ab": "mag_r",
    "i_ab": "mag_i",
    "z_ab": "mag_z",
    "absmag_r_total": "abs_mag_r",
}


def main() -> None:
    src = Path(sys.argv[1])
    df = pd.read_csv(src, skipinitialspace=True)
    df.columns = [c.lstrip("#").strip() for c in df.columns]
    out = df[list(COLUMNS)].rename(columns=COLUMNS)
    out["z_source"] = out["z_source"].round(4)
    for c in out.columns[1:]:
        out[c] = out[c].round(3)
    tmp = OUT.with_suffix(".tmp")
    out.to_csv(tmp, index=False, compression={"method": "gzip", "mtime": 0})
    tmp.replace(OUT)
    print(f"{len(out)} rows -> {OUT} ({OUT.stat().st_size} bytes)")


if __name__ == "__main__":
    main()
