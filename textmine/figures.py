"""Figures of topics and code trends over time: PNG (matplotlib) and interactive HTML (plotly).

Each figure is written twice, as `<name>.png` and `<name>.html`; the HTML files
share one `plotly.min.js` in the same folder, so they open offline.
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.dates as mdates
import matplotlib.pyplot as plt
import pandas as pd

from textmine.atomic import write_bytes_atomic, write_text_atomic
from textmine.codebook import Codebook, load_codebook
from textmine.periods import over_time

MAX_TOPIC_SERIES = 15  # the largest topics are drawn; the others are named in the subtitle
DEFAULT_STANCE_COLOUR = "#1f77b4"  # for a stance code whose codebook colour is unusable
LINESTYLES = ["-", "--", "-.", ":"]
MARKERS = ["o", "s", "^", "D", "v", "P", "X", "*"]

FIGURE_NAMES = ("topics_over_time", "stance_over_time", "partnerships_over_time")


def palette(n: int) -> list[str]:
    """Distinct colours, `n` of them: tab10, then tab20's lighter shades, then evenly spaced hues."""
    tab10, tab20 = plt.get_cmap("tab10"), plt.get_cmap("tab20")
    colours = [tab10(i) for i in range(tab10.N)] + [tab20(i) for i in range(1, tab20.N, 2)]
    if n > len(colours):
        extra = plt.get_cmap("hsv")
        colours += [extra(i / (n - len(colours) + 1)) for i in range(n - len(colours))]
    return [matplotlib.colors.to_hex(c) for c in colours[:n]]


def label(code: str) -> str:
    """A code as a legend label: "academy_trust" -> "Academy trust"."""
    return code.replace("_", " ").capitalize()


def write_figures(trends: dict | None, topic_outputs, fig_dir: str | os.PathLike, by: str = "year",
                  *, codebook: Codebook | None = None) -> list[Path]:
    """Write every figure the inputs allow into `fig_dir`; return the files written.

    `trends` is `compute_trends(...)`'s dict (or None); `topic_outputs` a
    `TopicOutputs` (or None). The stance and partnership lines are the
    codebook's codes (default: the packaged codebook), stance lines in the
    codebook's colours. Figures without data (e.g. an undated corpus) are skipped.
    """
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if topic_outputs is not None and not topic_outputs.topics_over_time.empty:
        written += _topics_over_time(topic_outputs.topics_over_time, fig_dir, by)
    if trends:
        codebook = codebook if codebook is not None else load_codebook()
        stance = trends.get("stance_trends")
        if stance is not None and not over_time(stance).empty:
            colours = {code: codebook.codes[code].colour for code in codebook.stance_codes}
            written += _stance_over_time(over_time(stance), fig_dir, by, colours)
        partnership = trends.get("partnership_trends")
        if partnership is not None and not over_time(partnership).empty:
            written += _partnerships_over_time(over_time(partnership), fig_dir, by,
                                               codebook.partnership_codes)
    if any(p.suffix == ".html" for p in written):
        written.append(_write_plotly_js(fig_dir))
    return written


# shared helpers -------------------------------------------------------------------


def _x_label(by: str) -> str:
    return "Publication quarter" if by == "quarter" else "Publication year"


def _format_dates(ax, dates: pd.Series, by: str) -> None:
    years = sorted({d.year for d in dates})
    span = (years[-1] - years[0]) if years else 0
    if by == "quarter" and span <= 4:
        ax.xaxis.set_major_locator(mdates.MonthLocator(bymonth=[1, 4, 7, 10]))
        ax.xaxis.set_major_formatter(
            matplotlib.ticker.FuncFormatter(
                lambda x, _: f"{mdates.num2date(x).year}-Q{(mdates.num2date(x).month - 1) // 3 + 1}"
            )
        )
    else:
        ax.xaxis.set_major_locator(mdates.YearLocator(base=max(1, span // 12 + (span > 12))))
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%Y"))
    if len(dates):
        low, high = dates.min(), dates.max()
        pad = pd.Timedelta(days=120 if by == "year" else 45)
        ax.set_xlim(low - pad, high + pad + (pd.Timedelta(days=90) if by == "quarter" else pd.Timedelta(0)))
    ax.grid(True, alpha=0.3)
    for tick in ax.get_xticklabels():
        tick.set_rotation(45 if by == "quarter" else 0)


def _with_gaps(table: pd.DataFrame, by: str) -> pd.DataFrame:
    """Add empty rows for periods without documents, so lines break there instead of bridging."""
    dates = pd.to_datetime(table["period_start"])
    if dates.empty:
        return table.assign(date=dates)
    step = pd.DateOffset(years=1) if by == "year" else pd.DateOffset(months=3)
    full = pd.date_range(dates.min(), dates.max(), freq=step)
    if not set(dates) <= set(full):  # custom bins (nr_bins): no regular periods to fill
        return table.assign(date=dates).sort_values("date").reset_index(drop=True)
    framed = table.assign(date=dates).set_index("date")
    framed = framed[~framed.index.duplicated()].reindex(full)
    framed.index.name = "date"
    missing = framed["period"].isna()
    framed.loc[missing, "period"] = [
        str(d.year) if by == "year" else f"{d.year}-Q{(d.month - 1) // 3 + 1}" for d in framed.index[missing]
    ]
    return framed.reset_index()


def _save_png(fig, path: Path) -> Path:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)
    write_bytes_atomic(path, buffer.getvalue())
    return path


def _save_html(figure, path: Path) -> Path:
    html = figure.to_html(include_plotlyjs="directory", full_html=True)
    write_text_atomic(path, html)
    return path


def _write_plotly_js(fig_dir: Path) -> Path:
    from plotly.offline import get_plotlyjs

    path = fig_dir / "plotly.min.js"
    if not path.exists():
        write_text_atomic(path, get_plotlyjs())
    return path


def _legend_right(ax, title: str | None = None, n: int = 1) -> None:
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, title=title,
              fontsize=9 if n > 8 else 10, title_fontsize=10)


def _label_and_save(fig, ax, plotly_fig, dates: pd.Series, *, by: str, title: str, subtitle: str,
                    y_label: str, legend_title: str, n_series: int, fig_dir: Path,
                    stem: str, plotly_title: str | None = None) -> list[Path]:
    """Title, axis labels, dates and legend on both figures; write `stem`.png and .html."""
    ax.set_title(f"{title}\n({subtitle})", fontsize=12)
    ax.set_xlabel(_x_label(by))
    ax.set_ylabel(y_label)
    ax.set_ylim(bottom=0)
    _format_dates(ax, dates, by)
    _legend_right(ax, legend_title, n_series)
    plotly_fig.update_layout(title=plotly_title or title, xaxis_title=_x_label(by),
                             yaxis_title=y_label, legend_title_text=legend_title,
                             template="plotly_white")
    return [_save_png(fig, fig_dir / f"{stem}.png"), _save_html(plotly_fig, fig_dir / f"{stem}.html")]


# figures --------------------------------------------------------------------------


def _topics_over_time(table: pd.DataFrame, fig_dir: Path, by: str) -> list[Path]:
    import plotly.graph_objects as go

    table = table[table["topic"] != -1].copy()
    if table.empty:
        return []
    table["date"] = pd.to_datetime(table["period_start"])
    sizes = table.groupby("topic")["n_chunks"].sum().sort_values(ascending=False, kind="stable")
    shown = sizes.index[:MAX_TOPIC_SERIES].tolist()
    periods = _with_gaps(table.drop_duplicates("period")[["period", "period_start", "period_chunks"]], by)
    names = table.drop_duplicates("topic").set_index("topic")["name"]
    colours = palette(len(shown))
    title = "Topics over time: share of each period's paragraphs"
    subtitle = (f"the {len(shown)} largest of {len(sizes)} topics" if len(sizes) > len(shown)
                else f"all {len(sizes)} topics")
    fig, ax = plt.subplots(figsize=(12, 6.5))
    plotly_fig = go.Figure()
    for i, topic in enumerate(shown):
        rows = table[table["topic"] == topic].set_index("period")
        # a topic absent from a period with documents is 0%; a period without documents is a gap
        share = periods["period"].map(rows["share_of_period"])
        series = periods.assign(share=share.where(periods["period_chunks"].isna(), share.fillna(0.0)))
        text = f"{topic}: {names[topic]}"
        ax.plot(series["date"], 100 * series["share"], color=colours[i],
                linestyle=LINESTYLES[(i // 10) % len(LINESTYLES)], marker=MARKERS[i % len(MARKERS)],
                markersize=4, linewidth=1.6, label=_shorten(text, 60))
        plotly_fig.add_trace(go.Scatter(
            x=series["date"], y=100 * series["share"], mode="lines+markers", name=_shorten(text, 60),
            line={"color": colours[i]}, customdata=series["period"],
            hovertemplate=f"{text}<br>%{{customdata}}: %{{y:.1f}}%<extra></extra>",
        ))
    return _label_and_save(fig, ax, plotly_fig, periods["date"], by=by, title=title,
                           subtitle=subtitle, y_label="Share of the period's paragraphs (%)",
                           legend_title="Topic", n_series=len(shown), fig_dir=fig_dir,
                           stem="topics_over_time", plotly_title=f"{title} ({subtitle})")


def _stance_over_time(table: pd.DataFrame, fig_dir: Path, by: str,
                      colours: dict[str, str]) -> list[Path]:
    """Share of sentences per stance code (keys of `colours`, drawn in those colours)."""
    import plotly.graph_objects as go

    codes = [code for code in colours if f"share_{code}" in table.columns]
    if not codes:
        return []
    table = _with_gaps(table, by)
    fig, ax = plt.subplots(figsize=(11, 5.5))
    plotly_fig = go.Figure()
    corrected = _corrected(table, [f"share_corrected_{code}" for code in codes])
    interval = "95% design-based interval" if corrected else "95% Wilson interval"
    for position, code in enumerate(codes):
        colour = _hex6(colours[code]) or DEFAULT_STANCE_COLOUR
        names = ((f"share_corrected_{code}", f"{code}_ci_low_corrected", f"{code}_ci_high_corrected")
                 if corrected else (f"share_{code}", f"{code}_ci_low", f"{code}_ci_high"))
        share = 100 * table[names[0]]
        low, high = 100 * table[names[1]], 100 * table[names[2]]
        ax.fill_between(table["date"], low, high, color=colour, alpha=0.18, linewidth=0,
                        label=f"{label(code)}: {interval}")
        ax.plot(table["date"], share, color=colour, marker="o", linewidth=2, label=label(code))
        # a period without neighbours has no band to shade: show its interval as a whisker
        alone = share.notna() & share.shift(1).isna() & share.shift(-1).isna()
        if alone.any():
            nudge = pd.Timedelta(days=20 if by == "year" else 5) * (2 * position - 1)  # side by side
            ax.errorbar(table["date"][alone] + nudge, share[alone],
                        yerr=[(share - low)[alone], (high - share)[alone]],
                        fmt="none", ecolor=colour, alpha=0.5, capsize=4, linewidth=1.5)
        plotly_fig.add_trace(go.Scatter(
            x=table["date"], y=low, mode="lines", line={"width": 0}, hoverinfo="skip",
            showlegend=False, legendgroup=f"{code}-ci",
        ))
        plotly_fig.add_trace(go.Scatter(
            x=table["date"], y=high, mode="lines", line={"width": 0}, fill="tonexty",
            fillcolor=_rgba(colour, 0.18), hoverinfo="skip", legendgroup=f"{code}-ci",
            name=f"{label(code)}: {interval}",
        ))
        plotly_fig.add_trace(go.Scatter(
            x=table["date"], y=share, mode="lines+markers", name=label(code), line={"color": colour},
            customdata=list(zip(table["period"], table["n_sentences"], low, high, strict=True)),
            hovertemplate="%{customdata[0]}: %{y:.1f}% of %{customdata[1]} sentences"
                          "<br>95% CI %{customdata[2]:.1f}–%{customdata[3]:.1f}%<extra></extra>",
        ))
    title = f"{_joined([label(c) for c in codes]).capitalize()} language over time"
    subtitle = (f"share of sentences, corrected with {corrected} hand-coded sentences; bands: "
                "95% design-based intervals" if corrected
                else "share of sentences coded; bands: 95% Wilson intervals")
    return _label_and_save(fig, ax, plotly_fig, table["date"], by=by, title=title,
                           subtitle=subtitle,
                           y_label="Share of sentences (%)", legend_title="Code", n_series=1,
                           fig_dir=fig_dir, stem="stance_over_time")


def _partnerships_over_time(table: pd.DataFrame, fig_dir: Path, by: str,
                            partnership_codes: list[str]) -> list[Path]:
    """Sentences per 1,000 that mention each partnership type in `partnership_codes`."""
    import plotly.graph_objects as go

    table = _with_gaps(table, by)
    codes = [c for c in partnership_codes if f"{c}_per_1000" in table.columns]
    colours = palette(len(codes))
    fig, ax = plt.subplots(figsize=(11, 5.5))
    plotly_fig = go.Figure()
    corrected = _corrected(table, [f"{code}_per_1000_corrected" for code in codes])
    for i, code in enumerate(codes):
        rate = table[f"{code}_per_1000_corrected" if corrected else f"{code}_per_1000"]
        ax.plot(table["date"], rate, color=colours[i], marker=MARKERS[i % len(MARKERS)],
                linestyle=LINESTYLES[i % len(LINESTYLES)], linewidth=1.8, markersize=5, label=label(code))
        plotly_fig.add_trace(go.Scatter(
            x=table["date"], y=rate, mode="lines+markers", name=label(code), line={"color": colours[i]},
            customdata=list(zip(table["period"], table[f"n_{code}"], table["n_sentences"], strict=True)),
            hovertemplate=f"{label(code)} %{{customdata[0]}}: %{{y:.2f}} per 1,000 "
                          "(%{customdata[1]} of %{customdata[2]} sentences)<extra></extra>",
        ))
    title = "Partnership types over time"
    return _label_and_save(fig, ax, plotly_fig, table["date"], by=by, title=title,
                           subtitle="sentences mentioning each type per 1,000 sentences"
                           + (f", corrected with {corrected} hand-coded sentences" if corrected else ""),
                           y_label="Sentences per 1,000 sentences", legend_title="Partnership type",
                           n_series=len(codes), fig_dir=fig_dir, stem="partnerships_over_time")


def _corrected(table: pd.DataFrame, columns: list[str]) -> int:
    """Validation sentences behind the corrected estimates (textmine.validation), 0 when none are drawn."""
    if ("n_validation" not in table.columns or not all(c in table.columns for c in columns)
            or not any(table[c].notna().any() for c in columns)):
        return 0
    return int(table["n_validation"].fillna(0).sum())


def _shorten(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip(", ") + "…"


def _joined(words: list[str]) -> str:
    """'a', 'a and b', 'a, b and c' (lower case)."""
    words = [w.lower() for w in words]
    return " and ".join(words) if len(words) < 3 else f"{', '.join(words[:-1])} and {words[-1]}"


def _hex6(colour: str) -> str | None:
    """'#rrggbb' for a '#rgb' or '#rrggbb' colour, else None."""
    digits = colour.lstrip("#") if isinstance(colour, str) and colour.startswith("#") else ""
    if len(digits) == 3:
        digits = "".join(2 * d for d in digits)
    if len(digits) != 6 or any(d not in "0123456789abcdefABCDEF" for d in digits):
        return None
    return f"#{digits.lower()}"


def _rgba(hex_colour: str, alpha: float) -> str:
    r, g, b = (int(hex_colour[i : i + 2], 16) for i in (1, 3, 5))
    return f"rgba({r},{g},{b},{alpha})"
