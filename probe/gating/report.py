"""Reports of a gate run: ``report.html`` (self-contained), ``report.json`` and ``junit.xml``.

Every failure names the expectation's property, each failing bin, the measured value with its
interval and the threshold (the outcome's message); the JSON also holds every bin of every
expectation and the run's provenance (probe version, suite, seed, model and data hashes). All
files are written atomically. The HTML needs no network: styles are inline and each
expectation's figure is an inline SVG drawn here; a failed expectation also shows the
candidate's lowest-scoring images of its first failed bin (an inline JPEG, matplotlib).
"""

from __future__ import annotations

import html
import json
import os
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from probe.provenance import atomic_write, dumps

if TYPE_CHECKING:
    from probe.gating.result import GateResult
    from probe.gating.verdicts import Outcome

__all__ = ["junit_xml", "report_dict", "report_html", "write_reports"]

_COLUMNS = (
    "label",
    "n",
    "estimate",
    "ci_low",
    "ci_high",
    "level",
    "required_above",
    "required_below",
    "p_value",
    "p_adjusted",
    "holds",
)


def report_dict(result: GateResult) -> dict[str, Any]:
    """Everything in ``report.json``: verdict, outcomes with every bin, timings, provenance."""
    return {
        "passed": bool(result.passed),
        "n_expectations": len(result.outcomes),
        "n_failed": len(result.failures),
        "outcomes": [o.to_dict() for o in result.outcomes],
        "timings_s": result.timings,
        "cache": result.cache,
        "provenance": result.provenance,
    }


def junit_xml(result: GateResult) -> str:
    """JUnit XML: one ``testcase`` per expectation, a ``failure`` carrying its message."""
    total = result.timings.get("total", 0.0)
    suites = ET.Element(
        "testsuites",
        name="probe check",
        tests=str(len(result.outcomes)),
        failures=str(len(result.failures)),
        errors="0",
        time=f"{total:.3f}",
    )
    suite = ET.SubElement(
        suites,
        "testsuite",
        name="probe check",
        tests=str(len(result.outcomes)),
        failures=str(len(result.failures)),
        errors="0",
        skipped="0",
        time=f"{total:.3f}",
        timestamp=str(result.provenance.get("created", "")),
    )
    props = ET.SubElement(suite, "properties")
    prov = result.provenance
    baseline = prov.get("baseline") or {}
    for name, value in (
        ("probe", prov.get("probe")),
        ("seed", prov.get("seed")),
        ("candidate_model_hash", prov.get("candidate", {}).get("model_hash")),
        ("baseline_model_hash", baseline.get("model_hash")),
    ):
        ET.SubElement(props, "property", name=name, value=str(value))
    for o in result.outcomes:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"probe.check.{o.expectation.type}",
            name=o.name,
            time="0",
        )
        if not o.holds:
            fail = ET.SubElement(case, "failure", message=o.message, type="ExpectationFailed")
            fail.text = f"{o.message}\n\n{_table_text(o)}"
        out = ET.SubElement(case, "system-out")
        out.text = o.message
    ET.indent(suites)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suites, encoding="unicode")


def _table_text(o: Outcome) -> str:
    return o.table.loc[:, list(_COLUMNS)].to_string(index=False, float_format=lambda v: f"{v:.4g}")


def _svg(o: Outcome) -> str:
    """Estimate and interval per bin, the threshold(s) dashed; red where a bin fails."""
    t = o.table
    w, h, left, right, top, bottom = 560, 200, 56, 12, 12, 48
    m = len(t)
    ys = np.concatenate(
        [
            t[c].to_numpy(float)
            for c in ("estimate", "ci_low", "ci_high", "required_above", "required_below")
        ]
    )
    ys = ys[np.isfinite(ys)]
    if ys.size == 0:
        return ""
    lo, hi = float(ys.min()), float(ys.max())
    pad = 0.08 * (hi - lo) if hi > lo else 0.05
    lo, hi = lo - pad, hi + pad

    def y(v: float) -> float:
        return top + (hi - v) / (hi - lo) * (h - top - bottom)

    def x(i: int) -> float:
        return left + (i + 0.5) * (w - left - right) / m

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
        f'viewBox="0 0 {w} {h}" role="img">',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{h - bottom}" stroke="#444"/>',
    ]
    for v in np.linspace(lo, hi, 5):
        parts.append(
            f'<text x="{left - 4}" y="{y(v) + 4:.1f}" font-size="10" '
            f'text-anchor="end">{v:.3g}</text>'
        )
    for col in ("required_above", "required_below"):
        for v in sorted(set(t[col].dropna())):
            parts.append(
                f'<line x1="{left}" y1="{y(v):.1f}" x2="{w - right}" y2="{y(v):.1f}" '
                'stroke="#b00" stroke-dasharray="5,4"/>'
            )
    for i, (label_raw, est, ci_low, ci_high, holds) in enumerate(
        zip(t["label"], t["estimate"], t["ci_low"], t["ci_high"], t["holds"])
    ):
        colour = "#087f23" if holds else "#c00"
        est, ci_low, ci_high = float(est), float(ci_low), float(ci_high)
        if np.isfinite(ci_low) and np.isfinite(ci_high):
            parts.append(
                f'<line x1="{x(i):.1f}" y1="{y(ci_low):.1f}" x2="{x(i):.1f}" '
                f'y2="{y(ci_high):.1f}" stroke="{colour}" stroke-width="2"/>'
            )
        label = html.escape(str(label_raw))
        if np.isfinite(est):
            parts.append(
                f'<circle cx="{x(i):.1f}" cy="{y(est):.1f}" r="4" '
                f'fill="{colour}"><title>{label}: {est:.4g}</title></circle>'
            )
        parts.append(
            f'<text x="{x(i):.1f}" y="{h - bottom + 14}" font-size="9" '
            f'text-anchor="middle">{label[:28]}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _table_html(o: Outcome) -> str:
    head = "".join(f"<th>{c}</th>" for c in _COLUMNS)
    rows = []
    for _, r in o.table.iterrows():
        cells = []
        for c in _COLUMNS:
            v = r[c]
            if isinstance(v, bool | np.bool_):
                text = "yes" if v else "<b>no</b>"
            elif isinstance(v, float | np.floating):
                text = "" if np.isnan(v) else f"{v:.4g}"
            else:
                text = html.escape(str(v))
            cells.append(f"<td>{text}</td>")
        rows.append(f"<tr class='{'ok' if r['holds'] else 'bad'}'>{''.join(cells)}</tr>")
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def report_html(result: GateResult) -> str:
    """A self-contained HTML report (inline CSS and SVG; readable offline)."""
    prov = result.provenance
    verdict = "PASSED" if result.passed else "FAILED"
    summary_rows = "".join(
        f"<tr class='{'ok' if o.holds else 'bad'}'><td>{'PASS' if o.holds else 'FAIL'}</td>"
        f"<td><a href='#e{i}'>{html.escape(o.name)}</a></td><td>{o.expectation.type}</td>"
        f"<td>{len(o.table)}</td><td>{_far(o)}</td></tr>"
        for i, o in enumerate(result.outcomes)
    )
    sections = []
    for i, o in enumerate(result.outcomes):
        spec = html.escape(json.dumps(o.expectation.to_dict()))
        sections.append(
            f"<h2 id='e{i}' class='{'ok' if o.holds else 'bad'}'>{'PASS' if o.holds else 'FAIL'}: "
            f"{html.escape(o.name)}</h2><p><b>Property:</b> {html.escape(o.expectation.describe())}"
            f"</p><p>{html.escape(o.message)}</p><p class='small'>expectation: <code>{spec}</code>"
            f"; alpha {o.alpha:g}, {o.n_boot} bootstrap replicates per bin; false-alarm rate "
            f"{_far(o)}</p>{_svg(o)}{_table_html(o)}{_gallery_html(result, i)}"
        )
    t, c = result.timings, result.cache
    timing = ", ".join(f"{k} {v:.1f} s" for k, v in t.items())
    cache = ", ".join(f"{k} {v}" for k, v in c.items())
    baseline = prov.get("baseline") or {}
    style = (
        "body{font-family:sans-serif;max-width:1100px;margin:1em auto;color:#222}"
        "table{border-collapse:collapse;font-size:12px;margin:.5em 0}"
        "td,th{border:1px solid #ccc;padding:2px 6px;text-align:right}"
        "tr.bad td{background:#fde8e8}h2.bad{color:#b00}h2.ok{color:#087f23}"
        ".small{font-size:12px;color:#555}code{font-size:11px}"
    )
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>probe check: "
        f"{verdict}</title><style>{style}</style></head><body>"
        f"<h1>probe check: {verdict}</h1><p>{len(result.outcomes) - len(result.failures)} of "
        f"{len(result.outcomes)} expectations hold. "
        f"{html.escape(str(prov.get('suite', {}).get('description', '')))}</p>"
        f"<p class='small'>candidate {html.escape(str(prov.get('candidate', {})))}<br>"
        f"baseline {html.escape(str(baseline))}<br>seed {prov.get('seed')}, probe "
        f"{prov.get('probe')}, created {prov.get('created')}<br>timings: {timing}<br>"
        f"cache: {cache}</p>"
        "<table><tr><th>verdict</th><th>expectation</th><th>type</th><th>bins</th>"
        f"<th>false-alarm rate</th></tr>{summary_rows}</table>{''.join(sections)}"
        "<p class='small'>Each bin tests the null hypothesis 'the property is violated here'; "
        "a bin holds when it is rejected after Holm's correction over the expectation's bins. "
        "Intervals are two-sided at each bin's Holm step level (column level), so a bin's "
        "test rejects exactly when its interval clears the threshold. See docs/gate.md.</p>"
        "</body></html>"
    )


def _gallery_html(result: GateResult, i: int) -> str:
    """The images behind outcome ``i``'s first failed bin, as an inline JPEG (or nothing)."""
    g = getattr(result, "galleries", {}).get(i)
    if g is None or len(g.samples) == 0:
        return ""
    import base64
    import tempfile

    from probe.studies.galleries import gallery_image

    with tempfile.TemporaryDirectory() as tmp:
        img = gallery_image(g, Path(tmp) / "gallery.jpg")
        data = base64.b64encode(img.read_bytes()).decode("ascii")
    return (
        f"<p class='small'>Images: {html.escape(g.how)} (colour: i, r, g as red, green, "
        f"blue).</p><img alt='gallery {i}' style='max-width:100%' "
        f"src='data:image/jpeg;base64,{data}'>"
    )


def _far(o: Outcome) -> str:
    return f"{o.false_alarm_rate:.3f}" if np.isfinite(o.false_alarm_rate) else "n/a"


#: The files :func:`write_reports` writes into its folder.
REPORT_FILES = ("report.html", "report.json", "junit.xml")


def write_reports(result: GateResult, out: str | os.PathLike[str]) -> dict[str, Path]:
    """Write ``report.html``, ``report.json`` and ``junit.xml`` into ``out`` (created)."""
    folder = Path(out)
    texts = {
        "html": ("report.html", report_html(result)),
        "json": ("report.json", json.dumps(json.loads(dumps(report_dict(result))), indent=1)),
        "junit": ("junit.xml", junit_xml(result)),
    }
    written = {}
    for kind, (name, text) in texts.items():
        written[kind] = atomic_write(folder / name, _writer(text))
    return written


def _writer(text: str) -> Callable[[Path], None]:
    def write(tmp: Path) -> None:
        tmp.write_text(text, encoding="utf-8")

    return write
