"""docs/study.md's study statements are generated from the recorded table only."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from probe.studies import claims, paper_table

ROOT = Path(__file__).resolve().parents[2]
RECORD = ROOT / "docs" / "study"


def _script():
    spec = importlib.util.spec_from_file_location(
        "update_study_docs", ROOT / "scripts" / "update_study_docs.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _recorded_block() -> str:
    table = pd.read_csv(RECORD / "table2.csv")
    run = json.loads((RECORD / "study.json").read_text())
    return paper_table.docs_block(table, run)


@pytest.mark.parametrize("doc", ["docs/study.md"])
def test_docs_block_is_what_the_recorded_table_generates(doc):
    """No hand-written study statement can drift: regenerate with scripts/update_study_docs.py."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert paper_table.replace_docs_block(text, _recorded_block(), name=doc) == text


@pytest.mark.parametrize("doc", ["docs/study.md"])
def test_yields_block_is_what_the_recorded_yields_generate(doc):
    """The selection functions and yields quoted in the docs come from docs/study/ only."""
    script = _script()
    block = script.recorded_yields_block(ROOT)
    assert block is not None, "docs/study/yields.json is missing"
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert (
        script.replace_block(text, block, script.YIELDS_START, script.YIELDS_END, name=doc) == text
    )


def test_yields_block_numbers(tmp_path):
    """Yields rounded to two significant figures; selection bullets from first to last bin."""
    script = _script()
    y = {"threshold": 0.5, "expected": 2345.6, "low": 1890.0, "high": 3120.0, "completeness": 0.4}
    sky = {
        "survey": "des-y3", "area_deg2": 5000.0, "density": {"per_deg2": 234.8},
        "detectable_per_deg2": 1.1, "detectable_low": 0.9, "detectable_high": 1.3,
        "n_detectable": 5480.0, "n_detectable_low": 4510.0, "n_detectable_high": 6490.0,
        "lenspop_prediction": 2400.0,
    }  # fmt: skip
    yields = {
        "sky": sky, "n_detectable_scored": 150, "n_other_scored": 300,
        "detectable_found": {"C": [y]}, "yields": {"C": [{**y, "expected": 150000.0}]},
    }  # fmt: skip
    sel = pd.DataFrame(
        {
            "value": [20.1, 21.9], "threshold_label": ["0.5", "0.5"], "n": [40, 60],
            "completeness": [0.9, 0.3], "ci_low": [0.8, 0.2], "ci_high": [0.95, 0.4],
        }
    )  # fmt: skip
    block = script.yields_block(yields, {"C_mag_source_g": sel})
    assert "| C | 0.5 | 2,300 [1,900, 3,100] | 0.40 | 150,000 [1,900, 3,100] |" in block
    assert "5,500 [4,500, 6,500]" in block
    assert "C against mag_source_g (100 lenses" in block
    assert "0.90 [0.80, 0.95] at 20.1 -> 0.30 [0.20, 0.40] at 21.9" in block


def test_recorded_table_judges_every_claim_it_can():
    table = pd.read_csv(RECORD / "table2.csv")
    assert list(table.columns) == list(paper_table.TABLE2_COLUMNS)
    judged = table[table["judgement"] != "n/a"]
    assert set(judged["judgement"]) <= set(claims.STATES)
    experiments = set(table["experiment"])
    expected = {c.key for c in claims.CLAIMS if c.experiment in experiments}
    assert len(judged) == len(expected)


def test_script_rewrites_a_copy_with_new_experiments_and_a_third_finder(tmp_path):
    """The lead's workflow after the final demo: new experiments, a finder C, then --check."""
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    shutil.copy(ROOT / "docs" / "study.md", root / "docs" / "study.md")
    out = tmp_path / "out"
    out.mkdir()
    table = pd.read_csv(RECORD / "table2.csv")
    extra = table[table["model"] == "A"].head(2).copy()
    extra["model"] = "C"
    extra["judgement"] = "n/a"
    extra["reason"] = "network C is not one of the paper's networks"
    new_exp = table.head(1).copy()
    new_exp["experiment"] = "psf_source"
    new_exp["title"] = "PSF ratio, source only"
    pd.concat([table, extra, new_exp]).to_csv(out / "table2.csv", index=False)
    shutil.copy(RECORD / "study.json", out / "study.json")
    script = _script()
    assert script.main([str(out), "--root", str(root), "--check"]) == 1
    assert script.main([str(out), "--root", str(root)]) == 0
    assert script.main([str(out), "--root", str(root), "--check"]) == 0
    page = (root / "docs" / "study.md").read_text()
    assert "No claim of the paper applies to: C" in page
    assert "PSF ratio, source only" in page
    assert (root / "docs" / "study" / "table2.csv").is_file()
    # the rest of the page is untouched
    before = (ROOT / "docs" / "study.md").read_text()
    i = before.index(paper_table.DOCS_START)
    assert page[:i] == before[:i]
    assert page.endswith(before[before.index(paper_table.DOCS_END) :])


def test_script_refuses_missing_markers_and_old_tables(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "docs" / "study.md").write_text("no markers\n")
    out = tmp_path / "out"
    out.mkdir()
    shutil.copy(RECORD / "table2.csv", out / "table2.csv")
    script = _script()
    with pytest.raises(SystemExit, match="exactly one"):
        script.main([str(out), "--root", str(root)])
    pd.DataFrame({"experiment": ["color"], "agree": ["yes"]}).to_csv(
        out / "table2.csv", index=False
    )
    with pytest.raises(SystemExit, match="lacks columns"):
        script.main([str(out), "--root", str(root)])
    assert (root / "docs" / "study.md").read_text() == "no markers\n"
