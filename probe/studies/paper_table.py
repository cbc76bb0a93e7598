"""The paper's Table 2 as judged by :mod:`probe.studies.paper`, and the statements made from it.

:func:`table2` judges every claim against a study and tabulates the outcome; :func:`pretty_table2`,
:func:`markdown_table` and :func:`study_statements` present it; :func:`docs_block` and
:func:`replace_docs_block` keep docs/study.md's generated block in step with the recorded table.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from probe.studies.claims import CLAIMS, PRIMARY_GROUP, STATES, Claim
from probe.studies.paper import judge

__all__ = [
    "DOCS_END",
    "DOCS_START",
    "TABLE2_COLUMNS",
    "docs_block",
    "markdown_table",
    "pretty_table2",
    "replace_docs_block",
    "run_line",
    "study_statements",
    "table2",
]


# -- table 2 and the statements generated from it ------------------------------------------------

#: Columns of ``table2.csv`` (one row per claim; an (experiment, network) without claims gets
#: one row with judgement "n/a").
TABLE2_COLUMNS: tuple[str, ...] = (
    "experiment", "title", "section", "model", "group", "claim_section", "statement", "quote",
    "kind", "paper_value", "tolerance", "why", "tol_low", "tol_high", "measured", "ours", "value",
    "low", "high", "n", "judgement", "reason", "verdict", "family", "paper_family",
    "family_agree",
)  # fmt: skip


def table2(
    study: Any, summary: pd.DataFrame, claims: Sequence[Claim] | None = None
) -> pd.DataFrame:
    """Table 2: every claim of the paper judged on ``study`` (a :class:`probe.study.StudyResult`).

    ``summary`` is :func:`probe.studies.summary.summarise`'s long table; its verdict family for the
    claim's (experiment, model, group) is kept in the columns ``verdict``, ``family``,
    ``paper_family`` and ``family_agree``, separate from the judgement.
    """
    from probe.studies.experiments import EXPERIMENTS

    pool = CLAIMS if claims is None else tuple(claims)
    titles = {e.name: (e.title, e.section) for e in EXPERIMENTS}
    networks = {c.network for c in pool}
    rows: list[dict[str, Any]] = []

    def family(exp: str, model: str, group: str) -> dict[str, Any]:
        if len(summary) == 0:
            return {}
        hit = summary[
            (summary["experiment"] == exp)
            & (summary["model"] == model)
            & (summary["group"] == group)
        ]
        if hit.empty:
            return {}
        r = hit.iloc[0]
        return {k: r[k] for k in ("verdict", "family", "paper_family", "family_agree")}

    for e in study.experiments():
        title, section = titles.get(e.name, (e.name, ""))
        results = {
            m: study.results[(m, e.name)] for m in study.models if (m, e.name) in study.results
        }
        for model in results:
            base = {"experiment": e.name, "title": title, "section": section, "model": model}
            mine = [c for c in pool if c.experiment == e.name and c.network == model]
            if not mine:
                group = PRIMARY_GROUP.get(e.name, "lens")
                if group not in results[model].groups:
                    group = "lens"
                why = (
                    f"network {model} is not one of the paper's networks"
                    if model not in networks
                    else "the paper states no number or direction for this network here"
                )
                rows.append(
                    {**base, "group": group, "statement": "-", "judgement": "n/a",
                     "reason": why, "ours": "-", **family(e.name, model, group)}
                )  # fmt: skip
                continue
            for c in mine:
                j = judge(c, results)
                rows.append(
                    {
                        **base,
                        "group": c.group,
                        "claim_section": c.section,
                        "statement": c.statement,
                        "quote": c.quote,
                        "kind": c.kind,
                        "paper_value": c.paper_value,
                        "tolerance": c.tolerance(),
                        "why": c.why,
                        "tol_low": c.low,
                        "tol_high": c.high,
                        "measured": j.measured,
                        "ours": j.ours(),
                        "value": j.value,
                        "low": j.low,
                        "high": j.high,
                        "n": j.n,
                        "judgement": j.state,
                        "reason": j.reason,
                        **family(e.name, model, c.group),
                    }
                )
    return pd.DataFrame(rows, columns=list(TABLE2_COLUMNS))


def _s(v: Any) -> str:
    """A table cell as text ("" for missing)."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return ""
    return str(v)


def pretty_table2(table: pd.DataFrame) -> pd.DataFrame:
    """The reader's columns of :func:`table2` (markdown and HTML)."""
    rows = []
    for _, r in table.iterrows():
        paper = _s(r["statement"])
        if _s(r["claim_section"]):
            paper += f" ({_s(r['claim_section'])})"
        number = _s(r["paper_value"])
        if _s(r["tolerance"]):
            number += f"; allowed {_s(r['tolerance'])}"
        fam = _s(r["verdict"])
        if _s(r["paper_family"]):
            fam += f" (paper: {_s(r['paper_family'])})"
        rows.append(
            {
                "property (section)": f"{_s(r['title'])} ({_s(r['section'])})",
                "network": _s(r["model"]),
                "group": _s(r["group"]),
                "paper (where)": paper,
                "paper's number": number or "-",
                "ours [95%]": _s(r["ours"]) or "-",
                "judgement": _s(r["judgement"]),
                "reason": _s(r["reason"]),
                "verdict family": fam or "-",
            }
        )
    return pd.DataFrame(rows)


def markdown_table(frame: pd.DataFrame) -> str:
    """A GitHub-flavoured markdown table ("" for an empty frame)."""
    if frame.empty:
        return ""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for _, row in frame.iterrows():
        cells = (str(row[c]).replace("|", "/").replace("\n", " ") for c in cols)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


_GROUP_WORDS = {"lens": "lenses", "nonlens": "non-lenses", "all": "50/50 set"}
_HEADINGS = {
    "agree": "Agree with the paper",
    "disagree": "Disagree with the paper",
    "inconclusive": "Inconclusive (our interval straddles the paper's tolerance)",
    "not testable": "Not testable with this set",
}


def study_statements(table: pd.DataFrame) -> str:
    """The study's statements in markdown, generated from a measured :func:`table2` table.

    The table (``table2.csv`` as written by :func:`probe.studies.report.write_report`) followed by
    one
    bullet per judged claim, grouped by judgement. Nothing else goes in: docs/study.md's study
    statements are this text (``scripts/update_study_docs.py``), so none is written by hand.
    """
    table = table.astype(object).where(table.notna(), "")
    parts = [markdown_table(pretty_table2(table))]
    judged = table[table["judgement"].isin(STATES)]
    counts = judged["judgement"].value_counts()
    nets = ", ".join(sorted({_s(m) for m in judged["model"]}))
    parts.append(
        f"{len(judged)} claims of the paper judged on network(s) {nets or '-'}: "
        + ", ".join(f"{int(counts.get(s, 0))} {s}" for s in STATES)
        + "."
    )
    for state in STATES:
        sub = judged[judged["judgement"] == state]
        if sub.empty:
            continue
        parts.append(f"\n**{_HEADINGS[state]}:**\n")
        for _, r in sub.iterrows():
            who = f"{_s(r['title'])} ({_s(r['claim_section'])}), {_s(r['model'])}, " + (
                _GROUP_WORDS.get(_s(r["group"]), _s(r["group"]))
            )
            if state == "not testable":
                parts.append(f"* {who}: {_s(r['statement'])}: {_s(r['reason'])}.")
            else:
                parts.append(
                    f"* {who}: {_s(r['statement'])}: paper {_s(r['paper_value'])} (allowed "
                    f"{_s(r['tolerance'])}); ours {_s(r['ours'])} ({_s(r['measured'])})."
                )
    judged_models = {_s(m) for m in judged["model"]}
    others = sorted({_s(m) for m in table["model"]} - judged_models - {""})
    if others:
        parts.append(f"\nNo claim of the paper applies to: {', '.join(others)} (see table).")
    return "\n".join(parts).rstrip() + "\n"


#: Markers of the generated block in docs/study.md.
DOCS_START = (
    "<!-- study-statements:start (generated by scripts/update_study_docs.py from "
    "docs/study/table2.csv; do not edit by hand) -->"
)
DOCS_END = "<!-- study-statements:end -->"


def run_line(run: Mapping[str, Any]) -> str:
    """One sentence naming the run a table comes from (``study.json`` of the report)."""
    sizes = run.get("sizes") or {}
    size = ", ".join(f"{k} {v}" for k, v in sizes.items() if k != "smoke")
    kind = " (smoke sizes)" if sizes.get("smoke") else ""
    models = ", ".join(str(m) for m in run.get("models", [])) or "-"
    return (
        f"Measured by `probe study` on {models}, seed {run.get('seed', '-')}{kind}: {size}. "
        "Judgement rule: docs/study.md, 'The paper comparison'."
    )


def docs_block(table: pd.DataFrame, run: Mapping[str, Any] | None = None) -> str:
    """The generated block (markers included) for docs/study.md."""
    head = f"{run_line(run)}\n\n" if run else ""
    return f"{DOCS_START}\n{head}{study_statements(table)}{DOCS_END}"


def replace_docs_block(text: str, block: str, *, name: str = "text") -> str:
    """``text`` with its generated block replaced by ``block`` (exactly one pair of markers)."""
    i, j = text.find(DOCS_START), text.find(DOCS_END)
    if text.count(DOCS_START) != 1 or text.count(DOCS_END) != 1 or j < i:
        raise ValueError(
            f"{name} must hold exactly one '{DOCS_START}' ... '{DOCS_END}' pair, in that order"
        )
    return text[:i] + block + text[j + len(DOCS_END) :]
