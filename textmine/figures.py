"""Figures of topics and code trends over time: PNG (matplotlib) and interactive HTML (plotly).

Each figure is written twice, as `<name>.png` and `<name>.html`; the HTML files
share one `plotly.min.js` in the same folder, so they open offline. Every
figure shows how many sentences (or paragraphs) each period has in a panel
under it; periods with fewer than a minimum are drawn faded and do not set the
y axis, so one short document cannot squash every other period. Topics are
drawn as small multiples, one panel per topic on a shared scale.
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
from textmine.periods import over_time, period_label
from textmine.trends import undated_notes

MAX_TOPIC_SERIES = 15  # the largest topics are drawn; the others are named in the subtitle
MIN_PERIOD_SENTENCES = 100  # trend periods with fewer sentences are faded and do not set the y axis
MIN_PERIOD_PARAGRAPHS = 20  # topic periods with fewer paragraphs likewise
SMALL_MULTIPLE_COLUMNS = 3
FADED_ALPHA = 0.35
N_COLOUR, N_FADED_COLOUR = "#8c8c8c", "#d9d9d9"
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


def write_figures(
    trends: dict | None,
    topic_outputs,
    fig_dir: str | os.PathLike,
    by: str = "year",
    *,
    codebook: Codebook | None = None,
    min_sentences: int = MIN_PERIOD_SENTENCES,
    min_paragraphs: int = MIN_PERIOD_PARAGRAPHS,
) -> list[Path]:
    """Write every figure the inputs allow into `fig_dir`; return the files written.

    `trends` is `compute_trends(...)`'s dict (or None); `topic_outputs` a
    `TopicOutputs` (or None). The stance and partnership lines are the
    codebook's codes (default: the packaged codebook), stance lines in the
    codebook's colours. Periods with fewer than `min_sentences` sentences (trend
    figures) or `min_paragraphs` paragraphs (topics) are faded and do not set
    the y axis. A note under each figure says what was left off its time axis.
    Figures without data (e.g. an undated corpus) are skipped.
    """
    fig_dir = Path(fig_dir)
    fig_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    if topic_outputs is not None and not topic_outputs.topics_over_time.empty:
        note = _topics_undated_note(getattr(topic_outputs, "doc_topics", None), by)
        written += _topics_over_time(
            topic_outputs.topics_over_time, fig_dir, by, min_paragraphs, note
        )
    if trends:
        codebook = codebook if codebook is not None else load_codebook()
        stance = trends.get("stance_trends")
        if stance is not None and not over_time(stance).empty:
            colours = {code: codebook.codes[code].colour for code in codebook.stance_codes}
            written += _stance_over_time(
                over_time(stance), fig_dir, by, colours, min_sentences, undated_notes(stance)
            )
        partnership = trends.get("partnership_trends")
        if partnership is not None and not over_time(partnership).empty:
            written += _partnerships_over_time(
                over_time(partnership),
                fig_dir,
                by,
                codebook.partnership_codes,
                min_sentences,
                undated_notes(partnership),
            )
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
        ax.set_xlim(
            low - pad, high + pad + (pd.Timedelta(days=90) if by == "quarter" else pd.Timedelta(0))
        )
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
        str(d.year) if by == "year" else f"{d.year}-Q{(d.month - 1) // 3 + 1}"
        for d in framed.index[missing]
    ]
    return framed.reset_index()


def _save_with_note(fig, plotly_fig, note: str, stem: Path, note_y: float) -> list[Path]:
    """Put the note under the interactive chart; write `<stem>.png` and `<stem>.html`."""
    plotly_fig.add_annotation(
        text=note.replace("\n", "<br>"),
        xref="paper",
        yref="paper",
        x=0,
        y=note_y,
        showarrow=False,
        align="left",
        xanchor="left",
        yanchor="top",
        font={"size": 11, "color": "#404040"},
    )
    return [
        _save_png(fig, stem.with_name(f"{stem.name}.png")),
        _save_html(plotly_fig, stem.with_name(f"{stem.name}.html")),
    ]


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
    ax.legend(
        loc="upper left",
        bbox_to_anchor=(1.01, 1.0),
        frameon=False,
        title=title,
        fontsize=9 if n > 8 else 10,
        title_fontsize=10,
    )


def _with_n_panel(size: tuple[float, float]):
    """A figure with the main axes over a short panel for n per period (x axis shared)."""
    fig, (ax, ax_n) = plt.subplots(
        2, 1, sharex=True, figsize=size, gridspec_kw={"height_ratios": [3.3, 1.0], "hspace": 0.08}
    )
    return fig, ax, ax_n


def _plotly_with_n_panel():
    from plotly.subplots import make_subplots

    return make_subplots(
        rows=2, cols=1, shared_xaxes=True, row_heights=[0.77, 0.23], vertical_spacing=0.05
    )


def _y_top(values: pd.Series, reliable: pd.Series) -> float:
    """Top of the y axis: the largest value of the well-supported periods (all periods if none is)."""
    chosen = values[reliable & values.notna()]
    if chosen.empty:
        chosen = values[values.notna()]
    top = float(chosen.max()) if not chosen.empty else 0.0
    return top * 1.12 if top > 0 else 1.0


def _draw_n(
    ax_n,
    plotly_fig,
    periods: pd.DataFrame,
    n: pd.Series,
    reliable: pd.Series,
    *,
    by: str,
    what: str,
    min_n: int,
    row: int = 2,
    col: int = 1,
) -> None:
    """Bars of n per period, the periods under `min_n` pale, each bar labelled with its n."""
    import plotly.graph_objects as go

    width = pd.Timedelta(days=200 if by == "year" else 60)
    present = n.notna()
    colours = [N_COLOUR if ok else N_FADED_COLOUR for ok in reliable[present]]
    ax_n.bar(
        periods["date"][present],
        n[present],
        width=width,
        color=colours,
        edgecolor="#595959",
        linewidth=0.4,
    )
    for date, value in zip(periods["date"][present], n[present], strict=True):
        ax_n.annotate(
            f"{int(value):,}",
            (date, value),
            xytext=(0, 1),
            textcoords="offset points",
            ha="center",
            va="bottom",
            fontsize=6.5,
            color="#404040",
        )
    ax_n.set_ylim(0, max(1.0, float(n.max()) * 1.35) if present.any() else 1.0)
    ax_n.set_ylabel(what.capitalize(), fontsize=9)
    ax_n.tick_params(axis="y", labelsize=8)
    plotly_fig.add_trace(
        go.Bar(
            x=periods["date"][present],
            y=n[present],
            marker_color=colours,
            name=what.capitalize(),
            showlegend=False,
            customdata=periods["period"][present],
            hovertemplate=f"%{{customdata}}: %{{y:,}} {what} (pale: fewer than {min_n})<extra></extra>",
        ),
        row=row,
        col=col,
    )


def _faded_note(what: str, min_n: int, notes: list[str]) -> str:
    lines = [
        f"Pale bars, hollow points: periods with fewer than {min_n:,} {what}, too few to read a "
        "trend from; they do not set the y axis."
    ]
    lines += [f"Not shown: {note}." for note in notes]
    return "\n".join(lines)


def _finish(
    fig,
    ax,
    ax_n,
    plotly_fig,
    dates: pd.Series,
    *,
    by: str,
    title: str,
    subtitle: str,
    y_label: str,
    y_top: float,
    legend_title: str,
    n_series: int,
    fig_dir: Path,
    stem: str,
    note: str,
    plotly_title: str | None = None,
) -> list[Path]:
    """Titles, labels, dates, legend and the note on both figures; write `stem`.png and .html."""
    ax.set_title(f"{title}\n({subtitle})", fontsize=12)
    ax.set_ylabel(y_label)
    ax.set_ylim(0, y_top)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelbottom=False)
    ax_n.set_xlabel(_x_label(by))
    _format_dates(ax_n, dates, by)
    if n_series:
        _legend_right(ax, legend_title, n_series)
    fig.text(
        0.01, 0.0, note, ha="left", va="top", fontsize=8, color="#404040", transform=fig.transFigure
    )
    plotly_fig.update_layout(
        title=plotly_title or title,
        legend_title_text=legend_title,
        template="plotly_white",
        margin={"b": 110},
    )
    plotly_fig.update_yaxes(title_text=y_label, range=[0, y_top], row=1, col=1)
    plotly_fig.update_xaxes(title_text=_x_label(by), row=2, col=1)
    return _save_with_note(fig, plotly_fig, note, fig_dir / stem, note_y=-0.22)


def _mark_clipped(
    ax, dates: pd.Series, values: pd.Series, n: pd.Series, top: float, colour: str, unit: str = ""
) -> None:
    """A point above the y axis (a faded period) is shown as an arrow at the top with its value."""
    above = values.notna() & (values > top)
    for date, value, count in zip(dates[above], values[above], n[above], strict=True):
        ax.plot(
            [date],
            [top * 0.97],
            marker="^",
            color=colour,
            alpha=FADED_ALPHA + 0.2,
            linestyle="none",
            markersize=7,
        )
        ax.annotate(
            f"{value:.1f}{unit} (n={int(count):,})",
            (date, top * 0.97),
            xytext=(4, -3),
            textcoords="offset points",
            fontsize=7,
            color=colour,
            va="top",
        )


# figures --------------------------------------------------------------------------


def _topics_undated_note(doc_topics: pd.DataFrame | None, by: str) -> list[str]:
    """Paragraphs left off the topics' time axis: without a date, or by quarter dated only to the year."""
    if doc_topics is None or doc_topics.empty or "published" not in doc_topics.columns:
        return []
    published = doc_topics["published"].fillna("").astype(str)
    has_year = published.map(lambda p: period_label(p, "year") is not None)
    has_period = published.map(lambda p: period_label(p, by) is not None)
    notes = []
    year_only = int((has_year & ~has_period).sum())
    if year_only:
        notes.append(
            f"{year_only:,} paragraphs dated only to the year are in no quarter (undated in quarter)"
        )
    if int((~has_year).sum()):
        notes.append(f"{int((~has_year).sum()):,} paragraphs without a usable date")
    return notes


def _topics_over_time(
    table: pd.DataFrame, fig_dir: Path, by: str, min_n: int, undated: list[str]
) -> list[Path]:
    """Small multiples: one panel per topic (the largest MAX_TOPIC_SERIES), on one scale."""
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    table = table[table["topic"] != -1].copy()
    if table.empty:
        return []
    table["date"] = pd.to_datetime(table["period_start"])
    sizes = table.groupby("topic")["n_chunks"].sum().sort_values(ascending=False, kind="stable")
    shown = sizes.index[:MAX_TOPIC_SERIES].tolist()
    periods = _with_gaps(
        table.drop_duplicates("period")[["period", "period_start", "period_chunks"]], by
    )
    n = pd.to_numeric(periods["period_chunks"], errors="coerce")
    reliable = n >= min_n
    names = table.drop_duplicates("topic").set_index("topic")["name"]
    colours = palette(len(shown))
    title = "Topics over time: share of each period's paragraphs"
    subtitle = (
        f"the {len(shown)} largest of {len(sizes)} topics"
        if len(sizes) > len(shown)
        else f"all {len(sizes)} topics"
    )
    columns = min(SMALL_MULTIPLE_COLUMNS, len(shown))
    rows = -(-len(shown) // columns)
    fig = plt.figure(figsize=(4.3 * columns + 0.8, 2.2 * rows + 2.0))
    grid = fig.add_gridspec(
        rows + 1, columns, height_ratios=[1.0] * rows + [0.75], hspace=0.6, wspace=0.12
    )
    plotly_fig = make_subplots(
        rows=rows + 1,
        cols=columns,
        shared_xaxes="all",
        vertical_spacing=0.32 / (rows + 1),
        specs=[[{} for _ in range(columns)] for _ in range(rows)]
        + [[{"colspan": columns}] + [None] * (columns - 1)],
        subplot_titles=[_shorten(f"{t}: {names[t]}", 45) for t in shown]
        + [""] * (rows * columns - len(shown))
        + ["Paragraphs per period"],
        row_heights=[1.0] * rows + [0.75],
    )
    panels: list = []
    series = {}
    for i, topic in enumerate(shown):
        ax = fig.add_subplot(
            grid[i // columns, i % columns],
            sharex=panels[0] if panels else None,
            sharey=panels[0] if panels else None,
        )
        panels.append(ax)
        rows_of_topic = table[table["topic"] == topic].set_index("period")
        # a topic absent from a period with paragraphs is 0%; a period without any is a gap
        share = periods["period"].map(rows_of_topic["share_of_period"])
        share = 100 * share.where(n.isna(), share.fillna(0.0))
        series[topic] = share
        text = f"{topic}: {names[topic]}"
        ax.plot(
            periods["date"],
            share.where(reliable),
            color=colours[i],
            marker=MARKERS[i % len(MARKERS)],
            markersize=3.5,
            linewidth=1.6,
        )
        faded = n.notna() & ~reliable
        ax.plot(
            periods["date"][faded],
            share[faded],
            color=colours[i],
            marker=MARKERS[i % len(MARKERS)],
            markersize=4,
            linestyle="none",
            markerfacecolor="white",
            alpha=FADED_ALPHA + 0.15,
        )
        ax.set_title(_shorten(text, 45), fontsize=9, loc="left")
        ax.grid(True, alpha=0.3)
        ax.tick_params(labelbottom=False, labelsize=8)
        if i % columns:
            ax.tick_params(labelleft=False)
        position = {"row": i // columns + 1, "col": i % columns + 1}
        for mask, opacity, fill in (
            (reliable, 1.0, colours[i]),
            (faded, FADED_ALPHA + 0.15, "white"),
        ):
            plotly_fig.add_trace(
                go.Scatter(
                    x=periods["date"],
                    y=share.where(mask),
                    mode="lines+markers" if opacity == 1.0 else "markers",
                    name=_shorten(text, 60),
                    line={"color": colours[i]},
                    opacity=opacity,
                    marker={"color": fill, "line": {"color": colours[i], "width": 1}},
                    customdata=list(zip(periods["period"], n.fillna(0).astype(int), strict=True)),
                    hovertemplate=f"{text}<br>%{{customdata[0]}}: %{{y:.1f}}% of %{{customdata[1]}} "
                    "paragraphs<extra></extra>",
                    showlegend=False,
                ),
                **position,
            )
    top = max(_y_top(share, reliable) for share in series.values())
    panels[0].set_ylim(0, top)
    for topic, share in series.items():
        ax = panels[shown.index(topic)]
        _mark_clipped(ax, periods["date"], share, n, top, colours[shown.index(topic)], "%")
    ax_n = fig.add_subplot(grid[rows, :], sharex=panels[0])
    _draw_n(
        ax_n,
        plotly_fig,
        periods,
        n,
        reliable,
        by=by,
        what="paragraphs",
        min_n=min_n,
        row=rows + 1,
        col=1,
    )
    ax_n.set_xlabel(_x_label(by))
    _format_dates(ax_n, periods["date"], by)
    fig.suptitle(f"{title}\n({subtitle})", fontsize=12)
    fig.supylabel("Share of the period's paragraphs (%)", fontsize=10)
    note = _faded_note("paragraphs", min_n, undated)
    fig.text(0.01, 0.0, note, ha="left", va="top", fontsize=8, color="#404040")
    plotly_fig.update_layout(
        title=f"{title} ({subtitle})",
        template="plotly_white",
        height=260 * rows + 300,
        margin={"b": 110},
    )
    plotly_fig.update_yaxes(range=[0, top])
    plotly_fig.update_yaxes(range=None, autorange=True, row=rows + 1, col=1)
    plotly_fig.update_yaxes(title_text="Share of the period's paragraphs (%)", row=1, col=1)
    plotly_fig.update_xaxes(title_text=_x_label(by), row=rows + 1, col=1)
    return _save_with_note(fig, plotly_fig, note, fig_dir / "topics_over_time", note_y=-0.12)


def _stance_over_time(
    table: pd.DataFrame,
    fig_dir: Path,
    by: str,
    colours: dict[str, str],
    min_n: int,
    undated: list[str],
) -> list[Path]:
    """Share of sentences per stance code (keys of `colours`, drawn in those colours)."""
    import plotly.graph_objects as go

    codes = [code for code in colours if f"share_{code}" in table.columns]
    if not codes:
        return []
    table = _with_gaps(table, by)
    n = pd.to_numeric(table["n_sentences"], errors="coerce")
    reliable = n >= min_n
    faded = n.notna() & ~reliable
    fig, ax, ax_n = _with_n_panel((11, 6.8))
    plotly_fig = _plotly_with_n_panel()
    corrected = _corrected(table, [f"share_corrected_{code}" for code in codes])
    interval = "95% design-based interval" if corrected else "95% Wilson interval"
    highs = []
    drawn = []
    for position, code in enumerate(codes):
        colour = _hex6(colours[code]) or DEFAULT_STANCE_COLOUR
        names = (
            (f"share_corrected_{code}", f"{code}_ci_low_corrected", f"{code}_ci_high_corrected")
            if corrected
            else (f"share_{code}", f"{code}_ci_low", f"{code}_ci_high")
        )
        share = 100 * table[names[0]]
        low, high = 100 * table[names[1]], 100 * table[names[2]]
        highs.append(high.where(high.notna(), share))
        solid = share.where(reliable)
        ax.fill_between(
            table["date"],
            low.where(reliable),
            high.where(reliable),
            color=colour,
            alpha=0.18,
            linewidth=0,
            label=f"{label(code)}: {interval}",
        )
        ax.plot(table["date"], solid, color=colour, marker="o", linewidth=2, label=label(code))
        nudge = pd.Timedelta(days=20 if by == "year" else 5) * (2 * position - 1)  # side by side
        # a well-supported period without neighbours has no band to shade: its interval as a whisker
        alone = solid.notna() & solid.shift(1).isna() & solid.shift(-1).isna()
        if alone.any():
            ax.errorbar(
                table["date"][alone] + nudge,
                share[alone],
                yerr=[(share - low)[alone], (high - share)[alone]],
                fmt="none",
                ecolor=colour,
                alpha=0.5,
                capsize=4,
                linewidth=1.5,
            )
        if faded.any():  # too few sentences: a hollow, pale point with its (wide) interval
            ax.errorbar(
                table["date"][faded] + nudge,
                share[faded],
                yerr=[(share - low)[faded], (high - share)[faded]],
                fmt="o",
                color=colour,
                markerfacecolor="white",
                alpha=FADED_ALPHA,
                capsize=3,
                linewidth=1.2,
            )
        drawn.append((share, colour))
        plotly_fig.add_trace(
            go.Scatter(
                x=table["date"],
                y=low.where(reliable),
                mode="lines",
                line={"width": 0},
                hoverinfo="skip",
                showlegend=False,
                legendgroup=f"{code}-ci",
            ),
            row=1,
            col=1,
        )
        plotly_fig.add_trace(
            go.Scatter(
                x=table["date"],
                y=high.where(reliable),
                mode="lines",
                line={"width": 0},
                fill="tonexty",
                fillcolor=_rgba(colour, 0.18),
                hoverinfo="skip",
                legendgroup=f"{code}-ci",
                name=f"{label(code)}: {interval}",
            ),
            row=1,
            col=1,
        )
        customdata = list(zip(table["period"], n.fillna(0).astype(int), low, high, strict=True))
        hover = (
            "%{customdata[0]}: %{y:.1f}% of %{customdata[1]} sentences"
            "<br>95% CI %{customdata[2]:.1f}–%{customdata[3]:.1f}%"
        )
        plotly_fig.add_trace(
            go.Scatter(
                x=table["date"],
                y=solid,
                mode="lines+markers",
                name=label(code),
                line={"color": colour},
                legendgroup=code,
                customdata=customdata,
                hovertemplate=hover + "<extra></extra>",
            ),
            row=1,
            col=1,
        )
        if faded.any():
            plotly_fig.add_trace(
                go.Scatter(
                    x=table["date"],
                    y=share.where(faded),
                    mode="markers",
                    opacity=FADED_ALPHA + 0.15,
                    name=f"{label(code)} (few sentences)",
                    legendgroup=code,
                    showlegend=False,
                    marker={"color": "white", "line": {"color": colour, "width": 1.5}, "size": 8},
                    error_y={
                        "type": "data",
                        "symmetric": False,
                        "array": (high - share).where(faded),
                        "arrayminus": (share - low).where(faded),
                        "color": colour,
                    },
                    customdata=customdata,
                    hovertemplate=hover + f"<br>fewer than {min_n} sentences<extra></extra>",
                ),
                row=1,
                col=1,
            )
    top = max(_y_top(high, reliable) for high in highs)
    for share, colour in drawn:
        _mark_clipped(ax, table["date"], share, n, top, colour, "%")
    _draw_n(ax_n, plotly_fig, table, n, reliable, by=by, what="sentences", min_n=min_n)
    title = f"{_joined([label(c) for c in codes]).capitalize()} language over time"
    subtitle = (
        f"share of sentences, corrected with {corrected} hand-coded sentences; bands: "
        "95% design-based intervals"
        if corrected
        else "share of sentences coded; bands: 95% Wilson intervals"
    )
    return _finish(
        fig,
        ax,
        ax_n,
        plotly_fig,
        table["date"],
        by=by,
        title=title,
        subtitle=subtitle,
        y_label="Share of sentences (%)",
        y_top=top,
        legend_title="Code",
        n_series=1,
        fig_dir=fig_dir,
        stem="stance_over_time",
        note=_faded_note("sentences", min_n, undated),
    )


def _partnerships_over_time(
    table: pd.DataFrame,
    fig_dir: Path,
    by: str,
    partnership_codes: list[str],
    min_n: int,
    undated: list[str],
) -> list[Path]:
    """Sentences per 1,000 that mention each partnership type in `partnership_codes`."""
    import plotly.graph_objects as go

    table = _with_gaps(table, by)
    n = pd.to_numeric(table["n_sentences"], errors="coerce")
    reliable = n >= min_n
    faded = n.notna() & ~reliable
    codes = [c for c in partnership_codes if f"{c}_per_1000" in table.columns]
    colours = palette(len(codes))
    fig, ax, ax_n = _with_n_panel((11, 6.8))
    plotly_fig = _plotly_with_n_panel()
    corrected = _corrected(table, [f"{code}_per_1000_corrected" for code in codes])
    rates = {}
    for i, code in enumerate(codes):
        rate = table[f"{code}_per_1000_corrected" if corrected else f"{code}_per_1000"]
        rates[code] = rate
        marker = MARKERS[i % len(MARKERS)]
        ax.plot(
            table["date"],
            rate.where(reliable),
            color=colours[i],
            marker=marker,
            linestyle=LINESTYLES[i % len(LINESTYLES)],
            linewidth=1.8,
            markersize=5,
            label=label(code),
        )
        if faded.any():
            ax.plot(
                table["date"][faded],
                rate[faded],
                color=colours[i],
                marker=marker,
                linestyle="none",
                markersize=5,
                markerfacecolor="white",
                alpha=FADED_ALPHA + 0.15,
            )
        customdata = list(
            zip(table["period"], table[f"n_{code}"], n.fillna(0).astype(int), strict=True)
        )
        for mask, opacity, mode in (
            (reliable, 1.0, "lines+markers"),
            (faded, FADED_ALPHA + 0.15, "markers"),
        ):
            if opacity < 1.0 and not faded.any():
                continue
            plotly_fig.add_trace(
                go.Scatter(
                    x=table["date"],
                    y=rate.where(mask),
                    mode=mode,
                    name=label(code),
                    opacity=opacity,
                    line={"color": colours[i]},
                    legendgroup=code,
                    showlegend=opacity == 1.0,
                    customdata=customdata,
                    hovertemplate=f"{label(code)} %{{customdata[0]}}: %{{y:.2f}} per 1,000 "
                    "(%{customdata[1]} of %{customdata[2]} sentences)<extra></extra>",
                ),
                row=1,
                col=1,
            )
    top = max((_y_top(rate, reliable) for rate in rates.values()), default=1.0)
    for i, code in enumerate(codes):
        _mark_clipped(ax, table["date"], rates[code], n, top, colours[i])
    _draw_n(ax_n, plotly_fig, table, n, reliable, by=by, what="sentences", min_n=min_n)
    return _finish(
        fig,
        ax,
        ax_n,
        plotly_fig,
        table["date"],
        by=by,
        title="Partnership types over time",
        subtitle="sentences mentioning each type per 1,000 sentences"
        + (f", corrected with {corrected} hand-coded sentences" if corrected else ""),
        y_label="Sentences per 1,000 sentences",
        y_top=top,
        legend_title="Partnership type",
        n_series=len(codes),
        fig_dir=fig_dir,
        stem="partnerships_over_time",
        note=_faded_note("sentences", min_n, undated),
    )


def _corrected(table: pd.DataFrame, columns: list[str]) -> int:
    """Validation sentences behind the corrected estimates (textmine.validation), 0 when none are drawn."""
    if (
        "n_validation" not in table.columns
        or not all(c in table.columns for c in columns)
        or not any(table[c].notna().any() for c in columns)
    ):
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
