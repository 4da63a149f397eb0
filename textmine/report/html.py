"""Render a ReportData as one self-contained HTML page (no I/O, no network).

Charts are inline SVG drawn here (tooltips are SVG `<title>` elements), styles
are inline, there is no script: the page opens offline and can be mailed as
one file. Every text value from the corpus goes through `_e` (HTML escaping,
quotes included); links to documents are relative paths the data layer built.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from textmine.report.data import (
    FEW_DOCUMENTS,
    FEW_SENTENCES,
    MAX_DOCUMENT_ROWS,
    MIN_TOPIC_CODED,
    MIN_TOPIC_SENTENCES,
    N_TOPICS_SHOWN,
    CodeInfo,
    ReportData,
    ValiditySource,
    complete_periods,
)

PASSAGE_CHARS = 360
FEW_PASSAGES = 20  # a topic period with fewer passages than this is marked
_HEX = re.compile(r"^#(?:[0-9a-fA-F]{3}|[0-9a-fA-F]{6})$")

_CSS = """
:root { --ink:#1d2430; --muted:#5b6575; --line:#d9dee7; --soft:#f4f6f9; --accent:#2b5797; }
* { box-sizing: border-box; }
body { margin:0; font:15px/1.5 -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial,
       "Noto Sans", "Liberation Sans", sans-serif; color:var(--ink); background:#fff; }
header.top { background:#1f2f4a; color:#fff; padding:22px 32px 14px; }
header.top h1 { margin:0 0 4px; font-size:24px; font-weight:600; }
header.top .sub { color:#c9d4e6; font-size:13px; }
nav { position:sticky; top:0; z-index:2; background:#fff; border-bottom:1px solid var(--line);
      padding:8px 32px; font-size:14px; }
nav a { margin-right:18px; color:var(--accent); text-decoration:none; }
main { max-width:1120px; margin:0 auto; padding:8px 32px 60px; }
section { margin-top:34px; }
h2 { font-size:21px; border-bottom:2px solid var(--ink); padding-bottom:4px; margin:0 0 12px; }
h3 { font-size:17px; margin:22px 0 8px; }
h4 { font-size:15px; margin:14px 0 6px; }
p.lead, .muted { color:var(--muted); }
.tiles { display:flex; flex-wrap:wrap; gap:10px; margin:10px 0 16px; }
.tile { border:1px solid var(--line); border-radius:6px; padding:8px 14px; min-width:120px;
        background:var(--soft); }
.tile b { display:block; font-size:22px; font-weight:600; }
.tile span { font-size:12px; color:var(--muted); }
table { border-collapse:collapse; margin:6px 0 14px; font-size:13.5px; }
th, td { border-bottom:1px solid var(--line); padding:4px 10px 4px 0; text-align:left;
         vertical-align:top; }
th { font-weight:600; border-bottom:2px solid var(--line); }
td.num, th.num { text-align:right; font-variant-numeric:tabular-nums; padding-left:10px; }
tr.little td { color:var(--muted); }
.flag { font-size:11px; background:#fff3cd; color:#7a5b00; border-radius:3px; padding:0 4px;
        white-space:nowrap; }
.corr { font-size:11px; background:#d9f2e3; color:#14532d; border-radius:3px; padding:0 4px; }
.warn { background:#fff3cd; border-left:4px solid #e0a800; padding:8px 12px; margin:10px 0; }
.info { background:var(--soft); border-left:4px solid var(--accent); padding:8px 12px;
        margin:10px 0; }
.swatch { display:inline-block; width:12px; height:12px; border-radius:2px; margin-right:6px;
          vertical-align:-1px; }
ol.sents { padding-left:22px; margin:6px 0 10px; }
ol.sents li { margin:0 0 8px; }
.src { font-size:12.5px; color:var(--muted); }
.src a { color:var(--accent); }
mark { padding:0 1px; border-radius:2px; color:inherit; }
.grid { display:grid; grid-template-columns:repeat(auto-fill, minmax(250px, 1fr)); gap:12px; }
.panel { border:1px solid var(--line); border-radius:6px; padding:8px 10px; }
.panel h4 { margin:0 0 2px; font-size:13.5px; }
.panel .words { font-size:12px; color:var(--muted); margin-bottom:4px; }
.panel svg { width:100%; height:auto; display:block; }
figure { margin:8px 0 16px; }
figure svg { width:100%; max-width:900px; height:auto; display:block; }
figcaption { font-size:12.5px; color:var(--muted); }
details { margin:8px 0; }
summary { cursor:pointer; color:var(--accent); }
blockquote { margin:6px 0 10px; padding:6px 12px; border-left:3px solid var(--line);
             color:#333; font-size:13.5px; }
.bar { display:inline-block; height:10px; background:var(--accent); border-radius:2px;
       vertical-align:middle; }
code { font-size:12.5px; background:var(--soft); padding:0 3px; border-radius:3px; }
footer { max-width:1120px; margin:0 auto; padding:12px 32px 40px; color:var(--muted);
         font-size:12px; }
@media print { nav { display:none; } section { break-inside:avoid-page; } }
"""

SECTIONS = (
    ("corpus", "Corpus"),
    ("validity", "Validity"),
    ("trends", "Codes over time"),
    ("codes", "Codes"),
    ("topics", "Topics"),
    ("reproducibility", "Reproducibility"),
)


def render_report(data: ReportData) -> str:
    """The report page for `data`: a complete, self-contained HTML document."""
    body = "\n".join(
        [
            _corpus(data),
            _validity(data),
            _trends(data),
            _codes(data),
            _topics(data),
            _reproducibility(data),
        ]
    )
    nav = "".join(f'<a href="#{key}">{_e(label)}</a>' for key, label in SECTIONS)
    c = data.counts
    summary = (
        f"{c.get('documents', 0):,} documents · {c.get('pages', 0):,} pages · "
        f"{c.get('sentences', 0):,} sentences · generated {data.generated_at}"
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="textmine {_e(data.reproducibility.get("textmine version (this report)", ""))}">
<title>{_e(data.title)}</title>
<style>{_CSS}</style>
</head>
<body>
<header class="top"><h1>{_e(data.title)}</h1><div class="sub">{_e(summary)}</div>
<div class="sub">{_e(data.out_dir)}</div></header>
<nav>{nav}</nav>
<main>
{_notes(data.notes)}
{body}
</main>
<footer>Made by textmine from the store in {_e(data.out_dir)}. Rebuild with
<code>textmine report --out {_e(data.out_dir)}</code>. This page fetches nothing: charts are
inline SVG, links point to the document files beside the outputs.</footer>
</body>
</html>
"""


# -- helpers ----------------------------------------------------------------------------


def _e(value: object) -> str:
    """HTML-escaped text of any value (quotes too); None and NaN become ''."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def _missing(value: object) -> bool:
    if value is None:
        return True
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _int(value: Any) -> str:
    return "" if _missing(value) else f"{int(value):,}"


def _pct(value: Any, digits: int = 1) -> str:
    return "" if _missing(value) else f"{100 * float(value):.{digits}f}%"


def _num(value: Any, digits: int = 3) -> str:
    return "" if _missing(value) else f"{float(value):.{digits}f}"


def _colour(value: str) -> str:
    """A 6-digit hex colour (codebook colours are validated; anything else becomes grey)."""
    if not isinstance(value, str) or not _HEX.match(value):
        return "#777777"
    if len(value) == 4:
        return "#" + "".join(ch * 2 for ch in value[1:])
    return value.lower()


def _code_map(data: ReportData) -> dict[str, CodeInfo]:
    return {c.key: c for c in data.codes}


def _code_label(info: CodeInfo) -> str:
    return f'<span class="swatch" style="background:{_colour(info.colour)}"></span>{_e(info.name)}'


def _table(
    headers: Sequence[str],
    rows: Sequence[Sequence[str]],
    numeric: Sequence[int] = (),
    row_classes: Sequence[str] | None = None,
) -> str:
    """A table of already-escaped cells; `numeric` are the right-aligned column indexes."""
    head = "".join(
        f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>"
        for i, h in enumerate(headers)
    )
    body = []
    for r, row in enumerate(rows):
        cls = f' class="{row_classes[r]}"' if row_classes and row_classes[r] else ""
        cells = "".join(
            f'<td class="num">{v}</td>' if i in numeric else f"<td>{v}</td>"
            for i, v in enumerate(row)
        )
        body.append(f"<tr{cls}>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _tiles(items: Sequence[tuple[str, str]]) -> str:
    return (
        '<div class="tiles">'
        + "".join(
            f'<div class="tile"><b>{value}</b><span>{label}</span></div>' for value, label in items
        )
        + "</div>"
    )


def _notes(notes: Sequence[str]) -> str:
    if not notes:
        return ""
    items = "".join(f"<li>{_e(n)}</li>" for n in notes)
    return f'<div class="info"><b>Notes from the run</b><ul>{items}</ul></div>'


def _link(href: str, text: str) -> str:
    if not href:
        return _e(text)
    return f'<a href="{_e(href)}">{_e(text)}</a>'


def _interval(low: object, high: object, fmt=_pct) -> str:
    if _missing(low) or _missing(high):
        return ""
    return f"{fmt(low)}–{fmt(high)}"


# -- SVG charts -------------------------------------------------------------------------


@dataclass
class Series:
    """One line of a chart: values with an optional interval band."""

    name: str
    colour: str
    values: list[float]
    low: list[float] | None = None
    high: list[float] | None = None
    dashed: bool = False
    tips: list[str] | None = None


def _axis(top: float) -> tuple[float, float]:
    """(axis maximum, tick step) for data up to `top`: at most five round ticks."""
    if not top or top <= 0 or math.isnan(top):
        return 1.0, 0.25
    raw = top / 4
    exponent = 10 ** math.floor(math.log10(raw))
    step = next(m * exponent for m in (1, 2, 2.5, 5, 10) if m * exponent * 4 >= top)
    return step * max(1, math.ceil(top / step - 1e-9)), step


def _finite(values: Sequence[float]) -> list[float]:
    return [v for v in values if v is not None and not math.isnan(v)]


def _runs_of(points: list[tuple]) -> list[list[tuple]]:
    """Split (index, ...) tuples into runs of consecutive indexes (lines break at gaps)."""
    runs: list[list[tuple]] = []
    for point in points:
        if runs and point[0] == runs[-1][-1][0] + 1:
            runs[-1].append(point)
        else:
            runs.append([point])
    return runs


@dataclass(frozen=True)
class _Frame:
    """The plot area of a chart and its scales."""

    left: float
    top: float
    width: float
    height: float
    n: int
    y_max: float

    def x(self, i: int) -> float:
        return self.left + (self.width * (i + 0.5) / self.n if self.n else 0)

    def y(self, value: float) -> float:
        return self.top + self.height * (1 - value / self.y_max)

    @property
    def band(self) -> float:
        return self.width / self.n if self.n else self.width


def line_chart(
    periods: Sequence[str],
    series: Sequence[Series],
    *,
    y_label: str,
    y_format: Callable[[float], str],
    little: Sequence[bool] = (),
    width: int = 860,
    height: int = 300,
    legend: bool = True,
    title: str = "",
    counts: Sequence[tuple[str, Sequence[object]]] = (),
) -> str:
    """An SVG line chart over categorical periods, with interval bands and marked periods.

    Missing values break the line (a period without documents); a period flagged
    in `little` gets a hollow point and a strip along the axis. `counts` adds rows
    of numbers under the period labels, e.g. ("sentences", [...]).
    """
    top = 22 if title else 12
    bottom = (46 if legend else 26) + 14 * len(counts)
    top_value = max(_finite([v for s in series for v in (s.high or []) + s.values]) or [0.0])
    y_max, y_step = _axis(top_value)
    frame = _Frame(54, top, width - 54 - 14, height - top - bottom, len(periods), y_max)
    parts = [
        f'<svg viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{_e(title or y_label)}" font-family="sans-serif">'
    ]
    if title:
        parts.append(
            f'<text x="{frame.left}" y="14" font-size="13" font-weight="600" '
            f'fill="#1d2430">{_e(title)}</text>'
        )
    parts += _axes(frame, periods, y_step, y_label, y_format, little)
    for row, (label, values) in enumerate(counts):
        ty = frame.top + frame.height + 29 + 14 * row
        parts.append(
            f'<text x="{frame.left - 6}" y="{ty}" font-size="10" text-anchor="end" '
            f'fill="#5b6575">{_e(label)}</text>'
        )
        for i, value in enumerate(values):
            if not _missing(value) and value != 0:
                parts.append(
                    f'<text x="{frame.x(i):.1f}" y="{ty}" font-size="10" '
                    f'text-anchor="middle" fill="#5b6575">{_e(_short(value))}</text>'
                )
    for one in series:
        parts += _series_svg(frame, one, periods, y_format, little)
    if legend:
        parts += _legend(series, width, height, any(little))
    parts.append("</svg>")
    return "".join(parts)


def _short(value: Any) -> str:
    """A count in at most five characters: 950, 9,512, 12k, 1.2M."""
    number = float(value)
    if number < 10_000:
        return f"{number:,.0f}"
    if number < 1_000_000:
        return f"{number / 1000:.0f}k"
    return f"{number / 1_000_000:.1f}M"


def _axes(
    frame: _Frame,
    periods: Sequence[str],
    y_step: float,
    y_label: str,
    y_format: Callable[[float], str],
    little: Sequence[bool],
) -> list[str]:
    parts = []
    for i, flag in enumerate(little):
        if flag:  # a strip along the axis under periods with little data
            parts.append(
                f'<rect x="{frame.x(i) - frame.band / 2 + 1:.1f}" '
                f'y="{frame.top + frame.height - 5}" width="{frame.band - 2:.1f}" '
                f'height="5" fill="#e0a800"><title>{_e(periods[i])}: little data'
                "</title></rect>"
            )
    for k in range(round(frame.y_max / y_step) + 1):
        value = y_step * k
        parts.append(
            f'<line x1="{frame.left}" x2="{frame.left + frame.width}" '
            f'y1="{frame.y(value):.1f}" y2="{frame.y(value):.1f}" stroke="#e3e7ee" '
            'stroke-width="1"/>'
        )
        parts.append(
            f'<text x="{frame.left - 6}" y="{frame.y(value) + 4:.1f}" font-size="11" '
            f'text-anchor="end" fill="#5b6575">{_e(y_format(value))}</text>'
        )
    n = frame.n
    step = max(1, math.ceil(n / (frame.width / 42)))
    for i, period in enumerate(periods):
        if i % step == 0 or (i == n - 1 and (n - 1) % step >= step / 2):
            parts.append(
                f'<text x="{frame.x(i):.1f}" y="{frame.top + frame.height + 15}" '
                f'font-size="11" text-anchor="middle" fill="#5b6575">{_e(period)}</text>'
            )
    middle = frame.top + frame.height / 2
    parts.append(
        f'<text x="12" y="{middle:.1f}" font-size="11" fill="#5b6575" '
        f'text-anchor="middle" transform="rotate(-90 12 {middle:.1f})">'
        f"{_e(y_label)}</text>"
    )
    return parts


def _series_svg(
    frame: _Frame,
    series: Series,
    periods: Sequence[str],
    y_format: Callable[[float], str],
    little: Sequence[bool],
) -> list[str]:
    x, y = frame.x, frame.y
    colour = _colour(series.colour)
    parts = []
    if series.low is not None and series.high is not None:
        points = [
            (i, lo, hi)
            for i, (lo, hi) in enumerate(zip(series.low, series.high, strict=True))
            if not (_missing(lo) or _missing(hi))
        ]
        for run in _runs_of(points):
            if len(run) == 1:  # an isolated period: an error bar instead of a band
                i, lo, hi = run[0]
                parts.append(
                    f'<line x1="{x(i):.1f}" x2="{x(i):.1f}" y1="{y(lo):.1f}" '
                    f'y2="{y(hi):.1f}" stroke="{colour}" stroke-opacity="0.45" '
                    'stroke-width="4"/>'
                )
                continue
            upper = " ".join(f"{x(i):.1f},{y(hi):.1f}" for i, _, hi in run)
            lower = " ".join(f"{x(i):.1f},{y(lo):.1f}" for i, lo, _ in reversed(run))
            parts.append(
                f'<polygon points="{upper} {lower}" fill="{colour}" '
                'fill-opacity="0.15" stroke="none"/>'
            )
    path = [(i, v) for i, v in enumerate(series.values) if not _missing(v)]
    dash = ' stroke-dasharray="5 4"' if series.dashed else ""
    for run in _runs_of(path):
        if len(run) > 1:
            coords = " ".join(f"{x(i):.1f},{y(v):.1f}" for i, v in run)
            parts.append(
                f'<polyline points="{coords}" fill="none" stroke="{colour}" '
                f'stroke-width="2"{dash}/>'
            )
    for i, v in path:
        hollow = series.dashed or (little[i] if i < len(little) else False)
        tip = series.tips[i] if series.tips else f"{periods[i]}: {y_format(v)}"
        parts.append(
            f'<circle cx="{x(i):.1f}" cy="{y(v):.1f}" '
            f'r="{3 if series.dashed else 3.5}" fill="{"#fff" if hollow else colour}" '
            f'stroke="{colour}" stroke-width="1.5"><title>{_e(tip)}</title></circle>'
        )
    return parts


def _legend(series: Sequence[Series], width: int, height: int, little: bool) -> list[str]:
    parts = []
    lx, ly = 54, height - 12
    for one in series:
        colour = _colour(one.colour)
        dash = ' stroke-dasharray="5 4"' if one.dashed else ""
        parts.append(
            f'<line x1="{lx}" x2="{lx + 22}" y1="{ly - 4}" y2="{ly - 4}" '
            f'stroke="{colour}" stroke-width="2"{dash}/>'
        )
        parts.append(
            f'<text x="{lx + 27}" y="{ly}" font-size="12" fill="#1d2430">{_e(one.name)}</text>'
        )
        lx += 40 + 7 * len(one.name)
    if little and lx < width - 150:
        parts.append(
            f'<rect x="{lx}" y="{height - 18}" width="14" height="5" fill="#e0a800"/>'
            f'<circle cx="{lx + 26}" cy="{height - 16}" r="3.5" fill="#fff" '
            f'stroke="#5b6575" stroke-width="1.5"/><text x="{lx + 35}" y="{ly}" '
            'font-size="12" fill="#1d2430">little data (hollow point)</text>'
        )
    return parts


# -- sections -----------------------------------------------------------------------------


def _corpus(data: ReportData) -> str:
    c = data.counts
    tiles = _tiles(
        [
            (_int(c.get("documents")), "documents"),
            (_int(c.get("pages")), "pages"),
            (_int(c.get("sentences")), "sentences"),
            (_int(c.get("coded_sentences")), "coded sentences"),
            (_int(c.get("failures")), "files failing"),
            (_int(c.get("duplicates")), "duplicate files"),
        ]
    )
    parts = ['<section id="corpus"><h2>Corpus</h2>', tiles]
    if data.changes:
        rows = [[_e(k), _e(f"{v:,}" if isinstance(v, int) else v)] for k, v in data.changes.items()]
        parts.append("<h3>What changed since the last run</h3>")
        parts.append(_table(["", "this run"], rows, numeric=[1]))
    else:
        parts.append(
            '<p class="muted">No run record (run.json) was found, so the changes '
            "since the last run are not known.</p>"
        )
    parts.append("<h3>Documents by year, type and publisher</h3>")
    table = data.corpus_table
    if table.empty:
        parts.append('<p class="muted">No documents in the store.</p>')
    else:
        rows = [
            [
                _e(r.year),
                _e(r.doc_type),
                _e(r.publisher),
                _int(r.documents),
                _int(r.pages),
                _int(r.sentences),
            ]
            for r in table.itertuples()
        ]
        rows.append(
            [
                "<b>all</b>",
                "",
                "",
                f"<b>{_int(table['documents'].sum())}</b>",
                f"<b>{_int(table['pages'].sum())}</b>",
                f"<b>{_int(table['sentences'].sum())}</b>",
            ]
        )
        parts.append(
            _table(
                ["year", "doc_type", "publisher", "documents", "pages", "sentences"],
                rows,
                numeric=[3, 4, 5],
            )
        )
    parts.append("<h3>Files that could not be read</h3>")
    if data.failures.empty:
        parts.append('<p class="muted">None: every file was read.</p>')
    else:
        rows = [
            [_e(r.path), f"<code>{_e(r.reason)}</code>", _e(r.meaning), _e(r.message)]
            for r in data.failures.itertuples()
        ]
        parts.append(_table(["file", "reason", "meaning", "message"], rows))
    if not data.coding_failures.empty:
        parts.append("<h3>Documents the coder failed on</h3>")
        parts.append(
            '<p class="muted">Read, but not coded this run: their sentences are left out of '
            "the coded sentences, code counts and trends until a run codes them (every run "
            "tries again).</p>"
        )
        rows = [[_e(r.path), _e(r.message)] for r in data.coding_failures.itertuples()]
        parts.append(_table(["file", "message"], rows))
    parts.append("<h3>Duplicates</h3>")
    if data.duplicates.empty:
        parts.append('<p class="muted">None: no file repeats another\'s content.</p>')
    else:
        rows = [[_e(r.path), _e(r.duplicate_of)] for r in data.duplicates.itertuples()]
        parts.append(
            '<p class="muted">Identical files are read once; these are left out of every count.</p>'
        )
        parts.append(_table(["file", "same content as"], rows))
    docs = data.documents[data.documents["duplicate_of"] == ""]
    if not docs.empty and len(docs) <= MAX_DOCUMENT_ROWS:
        rows = [
            [
                _link(r.href, r.title or r.path),
                _e(r.published),
                _e(r.doc_type),
                _e(r.publisher),
                _int(r.pages),
                _int(r.n_sentences),
            ]
            for r in docs.sort_values(["year", "published", "path"]).itertuples()
        ]
        parts.append(
            f"<details><summary>All {len(docs):,} documents</summary>"
            + _table(
                ["document", "published", "doc_type", "publisher", "pages", "sentences"],
                rows,
                numeric=[4, 5],
            )
            + "</details>"
        )
    parts.append("</section>")
    return "\n".join(parts)


def _metric_cell(row: pd.Series, metric: str) -> str:
    if metric not in row.index or _missing(row[metric]):
        return ""
    text = _num(row[metric])
    low, high = row.get(f"{metric}_low"), row.get(f"{metric}_high")
    if not (_missing(low) or _missing(high)):
        text += f' <span class="muted">[{_num(low, 2)}, {_num(high, 2)}]</span>'
    return text


def _validity_source(source: ValiditySource, codes: dict[str, CodeInfo]) -> str:
    parts = [f"<h3>{_e(source.title)}</h3>", f'<p class="src">from {_e(source.source)}</p>']
    if source.details:
        items = "; ".join(f"{_e(k)}: {_e(v)}" for k, v in source.details.items())
        parts.append(f'<p class="muted">{items}</p>')
    if source.note:
        parts.append(f'<p class="warn">{_e(source.note)}</p>')
    table = source.table
    if not table.empty:
        counts = ("n", "gold_pos", "pred_pos")
        metrics = [
            m
            for m in (
                *counts,
                "human_share",
                "bias",
                "precision",
                "recall",
                "f1",
                "kappa",
                "alpha",
                "accuracy",
            )
            if m in table.columns
        ]
        rows = []
        for _, row in table.iterrows():
            info = codes.get(row["code"])
            label = _code_label(info) if info else _e(row["code"])
            rows.append(
                [label] + [_int(row[m]) if m in counts else _metric_cell(row, m) for m in metrics]
            )
        names = {
            "n": "sentences",
            "gold_pos": "human: yes",
            "pred_pos": "coder: yes",
            "human_share": "human share",
            "bias": "bias (coder − human)",
            "f1": "F1",
            "kappa": "Cohen's κ",
            "alpha": "Krippendorff's α",
        }
        headers = ["code"] + [names.get(m, m) for m in metrics]
        parts.append(_table(headers, rows, numeric=list(range(1, len(headers)))))
        parts.append(
            '<p class="muted">Brackets: 95% intervals. A blank figure cannot be '
            "computed (e.g. no sentence of the set has the code).</p>"
        )
    return "\n".join(parts)


def _validity(data: ReportData) -> str:
    parts = [
        '<section id="validity"><h2>Validity: how far the codes can be trusted</h2>',
        '<p class="lead">Agreement of the machine coding with human coding. Read this '
        "before the trends: a share is only as good as the coding behind it.</p>",
    ]
    if not data.validity:
        parts.append(
            '<div class="warn"><b>No agreement figures are available for this corpus\'s coder.'
            "</b> No learned model's <code>metrics.json</code> and no <code>textmine evaluate"
            "</code> table (<code>*_agreement.csv</code>) were found beside these outputs, so "
            "this report cannot say how well the codes match human coding. Code a sample by "
            "hand and run <code>textmine evaluate SAMPLE.csv --out "
            f"{_e(data.out_dir)}/evaluation</code>, then rebuild this report.</div>"
        )
    codes = _code_map(data)
    for source in data.validity:
        parts.append(_validity_source(source, codes))
    parts.append("</section>")
    return "\n".join(parts)


def _stance_series(rows: pd.DataFrame, info: CodeInfo, corrected: bool) -> list[Series]:
    key = info.key
    n_sent = rows["n_sentences"].tolist()
    n_docs = rows["n_documents"].tolist()

    def tips(values, lows, highs, what) -> list[str]:
        return [
            f"{p}: {info.name} {what} {_pct(v)} (95% {_interval(lo, hi)}), "
            f"{_int(ns)} sentences, {_int(nd)} documents"
            for p, v, lo, hi, ns, nd in zip(
                rows["period"], values, lows, highs, n_sent, n_docs, strict=True
            )
        ]

    raw = rows[f"share_{key}"].astype(float).tolist()
    low = rows[f"{key}_ci_low"].astype(float).tolist() if f"{key}_ci_low" in rows else None
    high = rows[f"{key}_ci_high"].astype(float).tolist() if f"{key}_ci_high" in rows else None
    if corrected and f"share_corrected_{key}" in rows:
        values = rows[f"share_corrected_{key}"].astype(float).tolist()
        c_low = rows.get(f"{key}_ci_low_corrected")
        c_high = rows.get(f"{key}_ci_high_corrected")
        c_low = c_low.astype(float).tolist() if c_low is not None else None
        c_high = c_high.astype(float).tolist() if c_high is not None else None
        return [
            Series(
                f"{info.name} (corrected)",
                info.colour,
                values,
                c_low,
                c_high,
                tips=tips(
                    values,
                    c_low or [None] * len(values),
                    c_high or [None] * len(values),
                    "corrected",
                ),
            ),
            Series(
                f"{info.name} (as coded)",
                info.colour,
                raw,
                dashed=True,
                tips=tips(raw, low or [None] * len(raw), high or [None] * len(raw), "as coded"),
            ),
        ]
    return [
        Series(
            info.name,
            info.colour,
            raw,
            low,
            high,
            tips=tips(raw, low or [None] * len(raw), high or [None] * len(raw), "share"),
        )
    ]


def _trends(data: ReportData) -> str:
    codes = _code_map(data)
    period_word = "quarter" if data.by == "quarter" else "year"
    parts = [
        '<section id="trends"><h2>Codes over time</h2>',
        f'<p class="lead">Per publication {period_word}: the share of sentences coded '
        "with each stance, with 95% Wilson intervals (shaded bands), and partnership types "
        f"per 1,000 sentences. Periods with fewer than {FEW_DOCUMENTS} documents or "
        f'{FEW_SENTENCES} sentences are marked <span class="flag">little data</span>: '
        "a point there mostly reflects a few documents.</p>",
    ]
    stance = data.stance_over_time
    if data.corrected:
        n_val = ""
        if stance is not None and "n_validation" in stance.columns:
            n_val = f" (validation sample: {_int(stance['n_validation'].max())} sentences)"
        parts.append(
            f'<p class="info"><span class="corr">corrected</span> Shares are corrected '
            f"for the coder's measured errors using a validation sample{_e(n_val)}; "
            "the dashed line is the share as coded.</p>"
        )
    if stance is None:
        parts.append(
            '<p class="muted">No dated trend table in the store (no coded sentences '
            "with a publication date, or the trends stage has not run).</p>"
        )
    else:
        stance_codes = [
            codes[k] for k in codes if codes[k].kind == "stance" and f"share_{k}" in stance.columns
        ]
        missing = [
            codes[k].name
            for k in codes
            if codes[k].kind == "stance" and f"share_{k}" not in stance.columns
        ]
        series = [s for info in stance_codes for s in _stance_series(stance, info, data.corrected)]
        little = stance["little_data"].tolist()
        parts.append("<h3>Competition and collaboration language</h3>")
        parts.append(
            "<figure>"
            + line_chart(
                stance["period"].tolist(),
                series,
                y_label="share of sentences",
                y_format=lambda v: f"{100 * v:.0f}%" if v >= 0.1 or v == 0 else f"{100 * v:.1f}%",
                little=little,
                counts=[
                    ("sentences", stance["n_sentences"].tolist()),
                    ("documents", stance["n_documents"].tolist()),
                ],
            )
            + f"<figcaption>Share of sentences per {period_word}, with the number of "
            "sentences and documents under each period; hover a point for its "
            "interval.</figcaption></figure>"
        )
        if missing:
            parts.append(f'<p class="muted">Not in the trend table: {_e(", ".join(missing))}.</p>')
        parts.append(_stance_table(stance, stance_codes, data.corrected, period_word))
    if data.undated:
        left_out = []
        if "documents" in data.undated:
            left_out.append(
                f"{_int(data.undated['documents'])} undated documents "
                f"({_int(data.undated['sentences'])} sentences)"
            )
        if "year_only_documents" in data.undated:
            left_out.append(
                f"{_int(data.undated['year_only_documents'])} documents dated only to "
                f"the year, so in no quarter ({_int(data.undated['year_only_sentences'])} "
                "sentences, period undated_in_quarter)"
            )
        parts.append(f'<p class="muted">Left out of the periods: {"; ".join(left_out)}.</p>')
    parts.append(_partnerships(data, codes))
    parts.append(_groups(data, codes))
    parts.append("</section>")
    return "\n".join(parts)


def _stance_table(
    stance: pd.DataFrame, infos: list[CodeInfo], corrected: bool, period_word: str
) -> str:
    headers = [period_word, "documents", "sentences"]
    for info in infos:
        headers += [f"{_e(info.name)}", "95% interval"]
    rows, classes = [], []
    for _, row in stance[~stance["no_data"]].iterrows():
        flag = ' <span class="flag">little data</span>' if row["little_data"] else ""
        cells = [_e(row["period"]) + flag, _int(row["n_documents"]), _int(row["n_sentences"])]
        for info in infos:
            key = info.key
            if corrected and f"share_corrected_{key}" in row.index:
                cells += [
                    _pct(row[f"share_corrected_{key}"]) + ' <span class="corr">corr.</span>',
                    _interval(
                        row.get(f"{key}_ci_low_corrected"), row.get(f"{key}_ci_high_corrected")
                    ),
                ]
            else:
                cells += [
                    _pct(row[f"share_{key}"]),
                    _interval(row.get(f"{key}_ci_low"), row.get(f"{key}_ci_high")),
                ]
        rows.append(cells)
        classes.append("little" if row["little_data"] else "")
    numeric = list(range(1, len(headers)))
    return (
        "<details><summary>Shares and intervals per period (table)</summary>"
        + _table(headers, rows, numeric=numeric, row_classes=classes)
        + "</details>"
    )


def _num1(value: Any) -> str:
    return _num(value, 1)


def _column(table: pd.DataFrame, name: str) -> list[float] | None:
    return table[name].astype(float).tolist() if name in table.columns else None


def _partnerships(data: ReportData, codes: dict[str, CodeInfo]) -> str:
    table = data.partnership_over_time
    infos = [codes[k] for k in codes if codes[k].kind == "partnership"]
    parts = ["<h3>Partnership types per 1,000 sentences</h3>"]
    if table is None:
        parts.append('<p class="muted">No dated partnership trend table in the store.</p>')
        return "\n".join(parts)
    shown = [i for i in infos if f"{i.key}_per_1000" in table.columns]
    missing = [i.name for i in infos if f"{i.key}_per_1000" not in table.columns]
    periods = table["period"].tolist()
    little = table["little_data"].tolist()
    panels = []
    for info in shown:
        values = table[f"{info.key}_per_1000"].astype(float).tolist()
        counts = (
            table[f"n_{info.key}"].tolist() if f"n_{info.key}" in table else [None] * len(values)
        )
        tips = [
            f"{p}: {v:.1f} per 1,000 ({_int(k)} of {_int(n)} sentences)"
            for p, v, k, n in zip(periods, values, counts, table["n_sentences"], strict=True)
        ]
        lines = [Series(info.name, info.colour, values, tips=tips)]
        corrected = f"{info.key}_per_1000_corrected"
        if corrected in table.columns:
            fixed = table[corrected].astype(float).tolist()
            low = _column(table, f"{info.key}_ci_low_corrected") or [math.nan] * len(fixed)
            high = _column(table, f"{info.key}_ci_high_corrected") or [math.nan] * len(fixed)
            fixed_tips = [
                f"{p}: {v:.1f} per 1,000, corrected (95% {_interval(lo, hi, _num1)})"
                for p, v, lo, hi in zip(periods, fixed, low, high, strict=True)
            ]
            lines = [
                Series(f"{info.name} (corrected)", info.colour, fixed, low, high, tips=fixed_tips),
                Series(info.name, info.colour, values, dashed=True, tips=tips),
            ]
        chart = line_chart(
            periods,
            lines,
            y_label="per 1,000",
            y_format=lambda v: f"{v:.0f}" if v >= 10 or v == 0 else f"{v:.1f}",
            little=little,
            width=360,
            height=190,
            legend=False,
        )
        total = int(pd.to_numeric(pd.Series(counts), errors="coerce").fillna(0).sum())
        panels.append(
            f'<div class="panel"><h4>{_code_label(info)}</h4>'
            f'<div class="words">{total:,} sentences in dated documents</div>'
            f"{chart}</div>"
        )
    parts.append('<div class="grid">' + "".join(panels) + "</div>")
    corrected_note = (
        " Where a validation sample allows, the solid line and band are the "
        "corrected rate and the dashed line the rate as coded."
        if any(f"{i.key}_per_1000_corrected" in table.columns for i in shown)
        else ""
    )
    parts.append(
        '<p class="muted">Each panel has its own scale; hollow points mark periods '
        "with little data; gaps are periods without documents." + corrected_note + "</p>"
    )
    if missing:
        parts.append(f'<p class="muted">Not in the trend table: {_e(", ".join(missing))}.</p>')
    return "\n".join(parts)


def _groups(data: ReportData, codes: dict[str, CodeInfo]) -> str:
    stance, partnership = data.stance_by_group, data.partnership_by_group
    if stance is None and partnership is None:
        return ""
    parts = ["<h3>By document type and publisher (all periods)</h3>"]
    for dimension in ("doc_type", "publisher"):
        for table, kind in ((stance, "stance"), (partnership, "partnership")):
            rows_t = table[table["dimension"] == dimension] if table is not None else None
            if rows_t is None or rows_t.empty:
                continue
            infos = [
                codes[k]
                for k in codes
                if codes[k].kind == kind
                and (f"share_{k}" if kind == "stance" else f"{k}_per_1000") in rows_t.columns
            ]
            if not infos:
                continue
            headers = [dimension, "documents", "sentences"]
            if kind == "stance":
                headers += [f"{_e(i.name)} [95%]" for i in infos]
            else:
                headers += [_e(i.name) for i in infos]
            rows, classes = [], []
            for _, row in rows_t.sort_values("n_sentences", ascending=False).iterrows():
                flag = ' <span class="flag">little data</span>' if row["little_data"] else ""
                cells = [
                    _e(row["group"]) + flag,
                    _int(row["n_documents"]),
                    _int(row["n_sentences"]),
                ]
                for info in infos:
                    if kind == "stance":
                        interval = _interval(
                            row.get(f"{info.key}_ci_low"), row.get(f"{info.key}_ci_high")
                        )
                        cells.append(
                            f'<span style="white-space:nowrap">'
                            f"{_pct(row[f'share_{info.key}'])} "
                            f'<span class="muted">[{interval}]</span></span>'
                        )
                    else:
                        cells.append(_num(row[f"{info.key}_per_1000"], 1))
                rows.append(cells)
                classes.append("little" if row["little_data"] else "")
            what = "stance shares" if kind == "stance" else "partnership types per 1,000 sentences"
            parts.append(f"<h4>By {_e(dimension)}: {what}</h4>")
            parts.append(
                '<div style="overflow-x:auto">'
                + _table(headers, rows, numeric=list(range(1, len(headers))), row_classes=classes)
                + "</div>"
            )
    return "\n".join(parts)


def highlight(text: str, spans: Sequence[tuple[int, int]], colour: str) -> str:
    """Escaped `text` with the character `spans` wrapped in <mark> of the code's colour."""
    colour = _colour(colour)
    out, position = [], 0
    for start, end in spans:
        if start < position or end > len(text) or start >= end:
            continue
        out.append(_e(text[position:start]))
        out.append(
            f'<mark style="background:{colour}2e;border-bottom:2px solid {colour}">'
            f"{_e(text[start:end])}</mark>"
        )
        position = end
    out.append(_e(text[position:]))
    return "".join(out)


def _sentence_list(rows: pd.DataFrame, info: CodeInfo, show_p: bool) -> str:
    items = []
    for _, row in rows.iterrows():
        where = row["title"] or row["path"]
        page = f", p. {int(row['page'])}" if int(row["page"] or 0) > 0 else ""
        year = f" ({_e(row['year'])})" if row["year"] and row["year"] != "undated" else ""
        extra = ""
        if show_p:
            verdict = "coded" if int(row["coded"]) else "not coded"
            extra = f" · p = {_num(row['p'], 2)}, {verdict}"
        items.append(
            f"<li>{highlight(row['text'], row['spans'], info.colour)}<br>"
            f'<span class="src">{_link(row["href"], where)}{_e(page)}{year}'
            f"{_e(extra)}</span></li>"
        )
    return f'<ol class="sents">{"".join(items)}</ol>'


def _codes(data: ReportData) -> str:
    parts = [
        '<section id="codes"><h2>Codes</h2>',
        '<p class="lead">Sentences coded with each code, with a few examples drawn at '
        "random (one per document first); the words that triggered the code are "
        "highlighted, and each example links to its document and page.</p>",
    ]
    summary = data.code_summary.set_index("code") if not data.code_summary.empty else None
    rows = []
    for info in data.codes:
        cells = ["not coded", "", ""]
        if summary is not None and info.key in summary.index:
            row = summary.loc[info.key]
            if not _missing(row["n_sentences"]):
                cells = [_int(row["n_sentences"]), _int(row["n_documents"]), _pct(row["share"], 2)]
        rows.append(
            [f'<a href="#code-{_e(info.key)}">{_code_label(info)}</a>', _e(info.kind), *cells]
        )
    parts.append(
        _table(
            ["code", "kind", "sentences", "documents", "share of sentences"],
            rows,
            numeric=[2, 3, 4],
        )
    )
    if not data.has_probabilities:
        parts.append(
            '<p class="muted">The coder of this corpus gives no probabilities (the '
            "rule coder decides yes or no), so the sentences where it was least sure "
            "cannot be listed.</p>"
        )
    for info in data.codes:
        parts.append(
            f'<h3 id="code-{_e(info.key)}">{_code_label(info)} '
            f'<span class="muted" style="font-weight:400;font-size:13px">'
            f"({_e(info.kind)}, <code>{_e(info.key)}</code>)</span></h3>"
        )
        if info.description:
            parts.append(f'<p class="muted">{_e(info.description)}</p>')
        examples = data.examples.get(info.key)
        if examples is None:
            parts.append('<p class="muted">Not coded in this store.</p>')
            continue
        if examples.empty:
            parts.append('<p class="muted">No sentence has this code.</p>')
        else:
            parts.append(_sentence_list(examples, info, show_p=data.has_probabilities))
        least = data.least_sure.get(info.key)
        if least is not None and not least.empty:
            parts.append("<h4>Where the coder was least sure</h4>")
            parts.append(_sentence_list(least, info, show_p=True))
    parts.append("</section>")
    return "\n".join(parts)


def _passage(text: str) -> str:
    text = " ".join(str(text or "").split())
    if len(text) <= PASSAGE_CHARS:
        return _e(text)
    cut = text[:PASSAGE_CHARS].rsplit(" ", 1)[0]
    return _e(cut) + "…"


def _topics(data: ReportData) -> str:
    parts = ['<section id="topics"><h2>Topics</h2>']
    topics = data.topics
    if topics is None or topics.empty:
        parts.append(
            '<p class="muted">No topic model in the store (the topics stage has not '
            "run, or the corpus is too small).</p></section>"
        )
        return "\n".join(parts)
    parts.append(
        f'<p class="lead">{len(topics):,} topics of paragraph-sized passages. The '
        f"{min(N_TOPICS_SHOWN, len(topics))} largest, with their share of each period's "
        "passages; the label is the topic's top words.</p>"
    )
    over = data.topics_over_time
    shown = topics.head(N_TOPICS_SHOWN)
    if over is not None and not over.empty:
        periods_frame = over.drop_duplicates("period").set_index("period")
        periods = complete_periods(periods_frame.index.tolist())
        little = []
        if "period_chunks" in periods_frame.columns:
            chunks = pd.to_numeric(periods_frame["period_chunks"], errors="coerce")
            little = [0 < chunks.get(p, 0) < FEW_PASSAGES for p in periods]
        panels = []
        for topic in shown.itertuples():
            rows = over[over["topic"] == topic.topic].set_index("period")["share_of_period"]
            values = [
                float(rows.get(p, 0.0)) if p in periods_frame.index else math.nan for p in periods
            ]
            tips = [
                f"{p}: {100 * v:.1f}% of the period's passages"
                for p, v in zip(periods, values, strict=True)
            ]
            chart = line_chart(
                periods,
                [Series(topic.name, "#2b5797", values, tips=tips)],
                y_label="share",
                y_format=lambda v: f"{100 * v:.0f}%",
                little=little,
                width=360,
                height=170,
                legend=False,
            )
            panels.append(
                f'<div class="panel"><h4>{_e(_title_case(topic.name))}</h4>'
                f'<div class="words">topic {topic.topic} · {_int(topic.size)} passages'
                f"</div>{chart}</div>"
            )
        parts.append('<div class="grid">' + "".join(panels) + "</div>")
        if little and any(little):
            parts.append(
                '<p class="muted">Each panel has its own scale; hollow points mark '
                f"periods with fewer than {FEW_PASSAGES} passages; gaps are periods "
                "without documents.</p>"
            )
    parts.append(_topic_stance(data))
    parts.append("<h3>Representative passages</h3>")
    for topic in shown.itertuples():
        parts.append(
            f'<h4>{_e(_title_case(topic.name))} <span class="muted" '
            f'style="font-weight:400">(topic {topic.topic}, {_int(topic.size)} passages, '
            f"{_pct(topic.share)})</span></h4>"
        )
        if topic.words:
            parts.append(f'<p class="src">top words: {_e(topic.words)}</p>')
        if topic.passage:
            parts.append(f"<blockquote>{_passage(topic.passage)}</blockquote>")
    parts.append("</section>")
    return "\n".join(parts)


def _title_case(name: str) -> str:
    name = str(name or "").strip()
    return name[:1].upper() + name[1:] if name else "(unnamed)"


def _topic_stance(data: ReportData) -> str:
    if not data.topic_stance:
        return ""
    codes = _code_map(data)
    parts = [
        "<h3>Topics most associated with stance language</h3>",
        '<p class="muted">Topics whose sentences use the language more often than the '
        "corpus as a whole (lift = the topic's share ÷ the share over all sentences; "
        f"topics with at least {MIN_TOPIC_SENTENCES} sentences, {MIN_TOPIC_CODED} of them "
        "coded).</p>",
    ]
    for key, table in data.topic_stance.items():
        info = codes.get(key)
        if info is None:
            continue
        parts.append(f"<h4>{_code_label(info)}</h4>")
        if table.empty:
            parts.append(
                '<p class="muted">No topic uses this language notably more often '
                "than the corpus as a whole.</p>"
            )
            continue
        rows = [
            [
                _e(_title_case(r.name)),
                _int(r.n_sentences),
                _int(r.n_coded),
                f'{_pct(r.share)} <span class="muted">[{_interval(r.ci_low, r.ci_high)}]</span>',
                f"{r.lift:.1f}×",
            ]
            for r in table.itertuples()
        ]
        parts.append(
            _table(
                ["topic", "sentences", f"coded {_e(info.name.lower())}", "share [95%]", "lift"],
                rows,
                numeric=[1, 2, 3, 4],
            )
        )
    return "\n".join(parts)


def _reproducibility(data: ReportData) -> str:
    parts = ['<section id="reproducibility"><h2>Reproducibility</h2>']
    rows = [[_e(k), f"<code>{_e(v)}</code>"] for k, v in data.reproducibility.items()]
    parts.append(_table(["", ""], rows))
    if data.settings:
        rows = [[_e(k), f"<code>{_e(_setting(v))}</code>"] for k, v in data.settings.items()]
        parts.append("<h3>Settings of the run</h3>" + _table(["setting", "value"], rows))
    if data.timings:
        longest = max(data.timings.values()) or 1.0
        rows = []
        for stage, seconds in data.timings.items():
            width = 0 if stage == "total" else int(220 * seconds / longest)
            bar = f'<span class="bar" style="width:{width}px"></span>' if width else ""
            rows.append([_e(stage), f"{seconds:,.1f} s", bar])
        parts.append(
            "<h3>Time per stage</h3>" + _table(["stage", "seconds", ""], rows, numeric=[1])
        )
    if not data.runs.empty:
        columns = [
            c
            for c in (
                "run_id",
                "started_at",
                "finished_at",
                "status",
                "textmine_version",
                "codebook_version",
            )
            if c in data.runs.columns
        ]
        rows = [[_e(v) for v in r] for r in data.runs[columns].itertuples(index=False)]
        parts.append(
            "<h3>Recent runs on this folder</h3>"
            + _table([c.replace("_", " ") for c in columns], rows)
        )
    parts.append("</section>")
    return "\n".join(parts)


def _setting(value: object) -> str:
    if isinstance(value, (list, tuple)):
        return ", ".join(map(str, value)) or "(none)"
    return "(not set)" if value is None or value == "" else str(value)
