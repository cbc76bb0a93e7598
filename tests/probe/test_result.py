"""Result: saving with provenance in every format, atomic writes, trends by group."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import probe
from probe import Probe, ProbeKeyError, ProbeValueError
from probe import perturbers as P


@pytest.fixture
def result(model, small_set):
    images, labels = small_set
    return Probe(model).sweep(images, labels, P.GaussianBlur, [0.0, 1.0, 2.0], rng=4)


def test_table_columns_contract(result):
    assert list(result.table.columns) == [
        "value", "group", "n", "mean", "std", "sem", "ci_low", "ci_high", "accuracy", "low_count"
    ]  # fmt: skip
    assert result.table["n"].dtype == np.int64
    assert result.table["low_count"].dtype == bool


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".json"])
def test_save_roundtrip_with_provenance(result, tmp_path, suffix):
    path = result.save(tmp_path / "sub" / f"r{suffix}")
    assert path.exists()
    assert not list(path.parent.glob(".*tmp*"))
    meta = probe.read_metadata(path)
    prov = meta["provenance"]
    assert prov["seeds"]["entropy"] == 4
    assert len(prov["model"]["hash"]) == 64
    assert len(prov["data"]["hash"]) == 64
    assert prov["perturber"]["params"][1] == {
        "class": "GaussianBlur", "sigma": 1.0, "mode": "reflect", "truncate": 4.0
    }  # fmt: skip
    assert {"numpy", "pandas", "python", "probe"} <= set(prov["packages"])
    assert "paired per-image slope" in meta["trends"]["all"]["method"]
    assert "ddof=1" in meta["methods"]["std"]
    if suffix == ".parquet":
        table = pd.read_parquet(path)
    elif suffix == ".csv":
        table = pd.read_csv(path)
    else:
        table = pd.DataFrame(json.loads(path.read_text())["table"])
    pd.testing.assert_frame_equal(
        table.reset_index(drop=True), result.table, check_dtype=False, check_exact=False
    )


def test_parquet_metadata_key(result, tmp_path):
    path = result.save(tmp_path / "r.pq")
    assert b"probe" in pq.read_schema(path).metadata


def test_bad_suffix_and_failed_write_leave_nothing(result, tmp_path, monkeypatch):
    with pytest.raises(ProbeValueError, match="must end in one of"):
        result.save(tmp_path / "r.xlsx")

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(RuntimeError, match="disk full"):
        result.save(tmp_path / "r.csv")
    assert list(tmp_path.iterdir()) == []


def test_trend_groups(result):
    assert set(result.trends()) == {"lens", "nonlens", "all"}
    with pytest.raises(ProbeKeyError, match="group 'both'"):
        result.trend("both")
    t = result.trend("lens")
    assert t.group == "lens"
    assert t.slope_low <= t.slope <= t.slope_high
    assert "Result sweep" in repr(result)


def test_atomic_write_gives_normal_permissions(tmp_path):
    """Files written through the temporary-file path get umask permissions, not mkstemp's 0600."""
    import os
    import stat

    from probe.provenance import atomic_write

    out = atomic_write(tmp_path / "x.txt", lambda p: p.write_text("hello"))
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(out.stat().st_mode) == 0o666 & ~mask
    assert out.read_text() == "hello"
