"""Report of a study (:mod:`probe.study`): figures, tables, a Table-2-like summary, report.html.

The summary gives, per experiment, model and group (lenses, non-lenses, all), the measured effect
on the mean correct-class score and a **verdict family computed from those statistics** (the rule
is in :func:`verdict` and written into the report), next to the family of the paper's finding.
Table 2 judges the paper's quantitative claims (Jacobs et al., sections 4.1-4.6 and 4.9, held as
data in :mod:`probe.studies.paper`) against our measurements with their intervals.

Output of :func:`write_report` under ``out``::

    report.html                    self-contained (figures embedded as base64 PNG), offline
    summary.csv / .parquet / .md   every experiment x model x group (the long summary)
    table2.csv / .parquet / .md    one row per claim of the paper (experiment x model x claim;
                                   :func:`probe.studies.paper_table.table2`), judged with our
                                   interval
    figures/<experiment>.png       the models overlaid, one panel per group (mean +/- 1 std)
    results/<model>_<experiment>.parquet / .csv   probe results (tables with provenance)
    scores/<model>_<experiment>.parquet           per-image scores
    study.json                     configuration, seeds, sizes, timings
    selection/<model>_<param>.parquet / .csv      selection functions from the study's scores
    yields.json                    expected yields over a survey (when ``yields`` is given)
"""

from __future__ import annotations

import base64
import html
import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from probe.adapters.simulators import SIMULATOR_NAME
from probe.provenance import atomic_write, dumps, to_jsonable
from probe.studies import claims, paper_table
from probe.studies.claims import PRIMARY_GROUP
from probe.studies.summary import VerdictRule, summarise

if TYPE_CHECKING:
    from probe.studies.experiments import StudyResult
    from probe.studies.population import PopulationSelection
    from probe.yields import SurveyYields

__all__ = ["PRIMARY_GROUP", "write_report"]


def _fmt_row(r: pd.Series) -> dict[str, str]:
    return {
        "property (section)": f"{r['title']} ({r['section']})",
        "model": str(r["model"]),
        "group": str(r["group"]),
        "range": f"{r['x_first']:g} - {r['x_last']:g} {r['unit']}",
        "mean score first -> last": f"{r['mean_first']:.3f} -> {r['mean_last']:.3f}",
        "span (min at)": f"{r['span']:.3f} ({r['x_at_min']:g})",
        "trend across range [95%]": f"{r['trend']:+.3f} [{r['trend_low']:+.3f}, "
        f"{r['trend_high']:+.3f}]",
        "verdict": str(r["verdict"]),
        "paper": str(r["paper_finding"]) or "-",
        "family agree": str(r["family_agree"]),
    }


def _markdown(frame: pd.DataFrame) -> str:
    if frame.empty:
        return ""
    cols = list(frame.columns)
    lines = ["| " + " | ".join(cols) + " |", "| " + " | ".join("---" for _ in cols) + " |"]
    for _, row in frame.iterrows():
        lines.append("| " + " | ".join(str(row[c]).replace("|", "/") for c in cols) + " |")
    return "\n".join(lines) + "\n"


def _html_table(frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in frame.columns)
    body = []
    for _, row in frame.iterrows():
        cells = []
        for c in frame.columns:
            val = str(row[c])
            cls = ""
            if c in ("family agree", "judgement"):
                cls = {"yes": "yes", "no": "no", "agree": "yes", "disagree": "no"}.get(val, "")
            cells.append(f'<td class="{cls}">{html.escape(val)}</td>')
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


_CSS = """
body{font-family:system-ui,sans-serif;max-width:1250px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;font-size:0.82em;margin:0.6em 0}
th,td{border:1px solid #ccc;padding:3px 6px;text-align:left;vertical-align:top}
th{background:#f2f2f2} td.yes{background:#e3f4e3} td.no{background:#f9dede;font-weight:bold}
img{max-width:100%} .note{color:#555;font-size:0.9em} code{background:#f4f4f4;padding:0 3px}
"""


def write_report(
    study: StudyResult,
    out: str | os.PathLike[str],
    *,
    rule: VerdictRule | None = None,
    yields: SurveyYields | None = None,
    selection: bool = True,
    band: str = "ci",
    population: PopulationSelection | None = None,
) -> Path:
    """Write figures, tables, the summary and ``report.html`` under ``out``; returns its path.

    With ``selection`` (default) the report also holds each model's selection functions drawn
    from the study's own scores (:func:`probe.studies.study_selection.study_selection`, tables under
    ``selection/``); ``yields`` (:func:`probe.yields.survey_yields`) adds expected numbers of
    lenses found over a survey (``yields.json``). ``population``
    (:func:`probe.studies.population.population_selection`) replaces both with selection
    functions and yields over a survey's own lens population (its models need not be the
    study's: the demo uses finder C there).
    """
    from probe.sweeps.plotting import plot_results

    if population is not None:
        yields = population.yields

    rule = rule or VerdictRule()
    root = Path(out)
    for sub in ("figures", "results", "scores"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for (model, name), r in study.results.items():
        r.save(root / "results" / f"{model}_{name}.parquet")
        r.save(root / "results" / f"{model}_{name}.csv")
        r.scores.to_parquet(root / "scores" / f"{model}_{name}.parquet", index=False)
    figures: dict[str, Path] = {}
    for e in study.experiments():
        rs = [study.results[(m, e.name)] for m in study.models if (m, e.name) in study.results]
        figures[e.name] = plot_results(
            rs,
            root / "figures" / f"{e.name}.png",
            labels=[r.label for r in rs],
            title=f"{e.title} (paper section {e.section})",
            band=band,
            dpi=110,
        )
    summary = summarise(study, rule)
    summary.to_csv(root / "summary.csv", index=False)
    summary.to_parquet(root / "summary.parquet", index=False)
    pretty = (
        pd.DataFrame([_fmt_row(r) for _, r in summary.iterrows()])
        if len(summary)
        else pd.DataFrame()
    )
    (root / "summary.md").write_text(_markdown(pretty))
    table2 = paper_table.table2(study, summary)
    table2.to_csv(root / "table2.csv", index=False)
    table2.to_parquet(root / "table2.parquet", index=False)
    pretty2 = paper_table.pretty_table2(table2)
    (root / "table2.md").write_text(paper_table.markdown_table(pretty2))
    (root / "study.json").write_text(
        json.dumps(
            to_jsonable({"models": study.models, **study.config, "timings": study.timings}),
            indent=2,
        )
        + "\n"
    )
    extra = (
        _selection_html(study, root, yields, population) if selection or yields is not None else ""
    )
    extra += _galleries_html(study, root)
    path = root / "report.html"
    text = _html(study, summary, pretty, table2, figures, rule, extra)

    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    atomic_write(path, write)
    return path


# What the selection functions of the study's own scores are (report.html's note).
_STUDY_SELECTION_NOTE = (
    "<p class='note'>Completeness: the fraction of lenses with p(lens) >= threshold, per "
    "bin of the lens property, with 95% Wilson intervals, from the lenses of the study's "
    "binned experiments; 'fpr=0.01' is the threshold at which 1% of the model's own "
    "unperturbed non-lenses pass. The 50% point is where a fitted error-function curve "
    "crosses half of its plateau.</p>"
)


def _selection_html(
    study: StudyResult,
    root: Path,
    yields: SurveyYields | None,
    population: PopulationSelection | None = None,
) -> str:
    """Selection functions (from the study's scores or a population) and yields, as HTML."""
    from probe.completeness.plots import report_section
    from probe.studies.study_selection import study_selection

    (root / "selection").mkdir(parents=True, exist_ok=True)
    parts = ["<h1 id='selection'>Selection functions and expected yields</h1>"]
    if population is None:
        functions = study_selection(study)
        parts.append(_STUDY_SELECTION_NOTE)
    else:
        functions = population.functions
        sky = population.yields.sky
        parts.append(
            f"<p class='note'>Model(s) {html.escape(', '.join(population.models))} on the "
            f"LensPop-detectable lenses of {SIMULATOR_NAME}'s population at "
            f"{html.escape(str(sky.survey))} depth and seeing ({population.yields.n_detectable} "
            "lenses, the same as the yields below). Completeness: the fraction of lenses with "
            "p(lens) >= threshold, per bin of the lens property, with 95% Wilson intervals; "
            "'fpr=0.01' is the threshold at which 1% of the survey's field non-lenses pass. The "
            "50% point is where a fitted error-function curve crosses half of its plateau. "
            f"{html.escape(population.note)}</p>"
        )
    for param, per_model in functions.items():
        for m, sf in per_model.items():
            sf.save(root / "selection" / f"{m}_{param}.parquet")
            sf.table.to_csv(root / "selection" / f"{m}_{param}.csv", index=False)
        parts.append(
            report_section(
                per_model,
                root,
                yields=None,
                heading=f"Completeness against {param}",
            )
        )
    if yields is not None:
        from probe.yields import QUESTIONS

        sky = yields.sky
        (root / "yields.json").write_text(dumps(yields.as_dict()) + "\n")
        parts.append(
            f"<h2>Expected yields over {html.escape(str(sky.survey))} "
            f"({sky.area_deg2:g} deg<sup>2</sup>)</h2><p>{SIMULATOR_NAME}'s population: "
            f"{sky.strong_per_deg2:.1f} strong lenses per deg<sup>2</sup>, of which "
            f"{sky.detectable_per_deg2:.3f} [{sky.detectable_low:.3f}, {sky.detectable_high:.3f}]"
            f" per deg<sup>2</sup> are LensPop-detectable: {sky.n_detectable:.0f} "
            f"[{sky.n_detectable_low:.0f}, {sky.n_detectable_high:.0f}] over the footprint, "
            f"against LensPop's own DES prediction of about {sky.lenspop_prediction:.0f} "
            "(Collett 2015, optimal coadd; docs/selection.md compares the two). "
            f"Each model scored the same {yields.n_detectable} detectable and "
            f"{yields.n_other} non-detectable lenses rendered at the survey's depth and seeing; "
            "each yield is the expected number, with a 95% interval from both the "
            "completeness and the density uncertainty.</p><ul>"
            + "".join(f"<li>{html.escape(q)}</li>" for q in QUESTIONS.values())
            + "</ul>"
        )
        parts.append(
            report_section(
                {},
                root,
                yields=yields.detectable_found,
                heading="Detectable lenses found at threshold p",
            )
        )
        parts.append(
            report_section(
                {}, root, yields=yields.yields, heading="All strong lenses flagged at threshold p"
            )
        )
    return "\n".join(parts)


def _galleries_html(study: StudyResult, root: Path) -> str:
    """Images per bin and, per experiment and model, the gallery of images behind the curve."""
    from probe.studies.galleries import gallery_image

    parts = ["<h1 id='galleries'>Images behind the curves</h1>"]
    counts = study.config.get("min_bin_count") or {}
    if counts:
        floor = 100
        rows = [
            {"experiment": k, "fewest images per bin (per value and class)": str(v),
             "enough (>= 100)": "yes" if v >= floor else "no"}
            for k, v in counts.items()
        ]  # fmt: skip
        parts.append(
            "<p class='note'>Fewest images of any bin (binned experiments) or of any value and "
            "class (sweeps, re-simulations). With scores spread by ~0.4, a mean of 30 images "
            "scatters by ~0.07 and one of 100 by ~0.04: with too few, 'abrupt' or 'smooth' "
            "calls follow bin noise.</p>" + _html_table(pd.DataFrame(rows))
        )
    if not study.galleries:
        return "\n".join(parts)
    (root / "galleries").mkdir(parents=True, exist_ok=True)
    parts.append(
        "<p class='note'>Sweeps and re-simulations: the images whose p(lens) moved most between "
        "the reference (no perturbation; PSF ratio 1) and the value where the scores moved most "
        "on average, at both values (top row: reference). Binned experiments: the "
        "lowest-scoring lenses of the bin with the lowest mean score. Colour: i, r, g as red, "
        "green, blue (Lupton asinh stretch). Files: galleries/*.jpg.</p>"
    )
    for e in study.experiments():
        for m in study.models:
            g = study.galleries.get((m, e.name))
            if g is None:
                continue
            img = gallery_image(g, root / "galleries" / f"{m}_{e.name}.jpg", unit=e.unit)
            parts.append(
                f"<h3>{html.escape(e.title)}, model {html.escape(m)}</h3>"
                f"<p class='note'>{html.escape(g.how)}.</p>"
                f"<img alt='gallery {html.escape(m)} {e.name}' "
                f"src='data:image/jpeg;base64,{_b64(img)}'>"
            )
    return "\n".join(parts)


def _html(
    study: StudyResult,
    summary: pd.DataFrame,
    pretty: pd.DataFrame,
    table2: pd.DataFrame,
    figures: dict[str, Path],
    rule: VerdictRule,
    extra: str = "",
) -> str:
    cfg = study.config
    pretty2 = paper_table.pretty_table2(table2)
    disagree = table2[table2["judgement"] == "disagree"]
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        "<title>Sensitivity study: " + html.escape(", ".join(study.models)) + "</title>",
        f"<style>{_CSS}</style></head><body>",
        "<h1>Sensitivity study (Jacobs et al., sections 4.1-4.6)</h1>",
        f"<p>Models: <b>{html.escape(', '.join(study.models))}</b>. Simulator "
        f"<code>{html.escape(str(cfg.get('simulator_repr', '')))}</code>; sizes "
        f"<code>{html.escape(json.dumps(cfg.get('sizes', {})))}</code>; seed {cfg.get('seed')}; "
        f"non-lens kinds <code>{html.escape(json.dumps(cfg.get('nonlens_kinds', {})))}</code>; "
        f"lens sets <code>{html.escape(json.dumps(cfg.get('sets', {})))}</code>. "
        f"Total time {study.timings.get('total', float('nan')):.0f} s.</p>",
        "<p class='note'>Score: the correct-class score s = p(lens) for lenses and "
        "1 - p(lens) for non-lenses; curves show its mean +/- 1 standard deviation per value, "
        "hollow markers flag values with fewer than 30 images.</p>",
        "<h2>The paper's claims, judged (its Table 2, by numbers)</h2>",
        f"<p class='note'>{html.escape(claims.JUDGE_RULE)}</p>",
        _html_table(pretty2) if len(pretty2) else "<p>No results.</p>",
        f"<p class='note'>Verdict families (last column): {rule.describe()}</p>",
        "<h2>Where our networks disagree with the paper</h2>",
    ]
    if len(disagree):
        items = "".join(
            f"<li><b>{html.escape(str(r['title']))}</b> ({html.escape(str(r['claim_section']))}),"
            f" network {html.escape(str(r['model']))}, {html.escape(str(r['group']))}: the paper: "
            f"{html.escape(str(r['statement']))} ({html.escape(str(r['paper_value']))}); ours "
            f"{html.escape(str(r['ours']))}, {html.escape(str(r['reason']))}.</li>"
            for _, r in disagree.iterrows()
        )
        parts.append(f"<ul>{items}</ul>")
    else:
        parts.append("<p>No claim of the paper is contradicted by our measurements.</p>")
    for e in study.experiments():
        parts.append(f"<h2 id='{e.name}'>{html.escape(e.title)} (section {e.section})</h2>")
        if e.name in figures:
            parts.append(
                f"<img alt='{e.name}' src='data:image/png;base64,{_b64(figures[e.name])}'>"
            )
        sub = pretty[summary["experiment"] == e.name] if len(pretty) else pretty
        if len(sub):
            parts.append(_html_table(sub.drop(columns=["property (section)"])))
    if extra:
        parts.append(extra)
    parts.append("<h2>Full summary (every group)</h2>")
    parts.append(_html_table(pretty) if len(pretty) else "<p>No results.</p>")
    timing = pd.DataFrame([{"step": k, "seconds": f"{v:.1f}"} for k, v in study.timings.items()])
    parts.append("<h2>Timings</h2>" + _html_table(timing))
    parts.append(
        "<p class='note'>Files: summary.csv/.parquet (long), table2.csv/.parquet, "
        "figures/*.png, results/*.parquet|csv (probe results with provenance), "
        "scores/*.parquet, study.json.</p></body></html>"
    )
    return "\n".join(parts)
