"""README's and docs/study.md's study statements are generated from the recorded table only."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import pandas as pd
import pytest

from probe import paper

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
    return paper.docs_block(table, run)


@pytest.mark.parametrize("doc", ["README.md", "docs/study.md"])
def test_docs_block_is_what_the_recorded_table_generates(doc):
    """No hand-written study statement can drift: regenerate with scripts/update_study_docs.py."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    assert paper.replace_docs_block(text, _recorded_block(), name=doc) == text


def test_recorded_table_judges_every_claim_it_can():
    table = pd.read_csv(RECORD / "table2.csv")
    assert list(table.columns) == list(paper.TABLE2_COLUMNS)
    judged = table[table["judgement"] != "n/a"]
    assert set(judged["judgement"]) <= set(paper.STATES)
    experiments = set(table["experiment"])
    expected = {c.key for c in paper.CLAIMS if c.experiment in experiments}
    assert len(judged) == len(expected)


def test_script_rewrites_a_copy_with_new_experiments_and_a_third_finder(tmp_path):
    """The lead's workflow after the final demo: new experiments, a finder C, then --check."""
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    for doc in ("README.md", "docs/study.md"):
        shutil.copy(ROOT / doc, root / doc)
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
    readme = (root / "README.md").read_text()
    assert "No claim of the paper applies to: C" in readme
    assert "PSF ratio, source only" in readme
    assert (root / "docs" / "study" / "table2.csv").is_file()
    # the rest of README is untouched
    before = (ROOT / "README.md").read_text()
    i = before.index(paper.DOCS_START)
    assert readme[:i] == before[:i]
    assert readme.endswith(before[before.index(paper.DOCS_END) :])


def test_script_refuses_missing_markers_and_old_tables(tmp_path):
    root = tmp_path / "repo"
    (root / "docs").mkdir(parents=True)
    (root / "README.md").write_text("no markers\n")
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
    assert (root / "README.md").read_text() == "no markers\n"
