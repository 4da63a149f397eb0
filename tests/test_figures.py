"""Figures: PNG and HTML written, labelled, dated, legible with many series."""

import re

import matplotlib
import matplotlib.image as mpimg
import pandas as pd
import pytest

from tests.topic_data import ofsted_corpus, seed_corpus
from textmine import figures
from textmine.periods import over_time
from textmine.topics import TopicSettings, run_topics
from textmine.trends import compute_trends


@pytest.fixture(scope="module")
def corpus():
    sentences, documents = ofsted_corpus(limit=4)
    seeds, seed_docs = seed_corpus()
    return (
        pd.concat([sentences, seeds], ignore_index=True),
        pd.concat([documents, seed_docs], ignore_index=True),
    )


@pytest.fixture(scope="module")
def topic_outputs(corpus, tmp_path_factory):
    sentences, documents = corpus
    # twelve topics: more series than the ten-colour cycle
    return run_topics(
        sentences,
        documents,
        TopicSettings(n_topics=12, fallback_below=10_000),
        tmp_path_factory.mktemp("model"),
    )


@pytest.fixture
def captured(monkeypatch):
    """The matplotlib figures as they are saved (before they are closed)."""
    saved = {}
    original = figures._save_png

    def capture(fig, path):
        saved[path.name] = fig
        return original(fig, path)

    monkeypatch.setattr(figures, "_save_png", capture)
    return saved


def test_every_figure_is_written_as_png_and_html(corpus, topic_outputs, tmp_path, captured):
    sentences, documents = corpus
    trends = compute_trends(sentences, documents)
    written = figures.write_figures(trends, topic_outputs, tmp_path / "figures")
    names = {p.name for p in written}
    for name in figures.FIGURE_NAMES:
        assert {f"{name}.png", f"{name}.html"} <= names
    assert "plotly.min.js" in names
    for path in written:
        assert path.stat().st_size > 0
    for name in figures.FIGURE_NAMES:
        image = mpimg.imread(tmp_path / "figures" / f"{name}.png")
        assert image.shape[0] > 400 and image.shape[1] > 800
        html = (tmp_path / "figures" / f"{name}.html").read_text(encoding="utf-8")
        assert 'src="plotly.min.js"' in html  # offline: the local bundle beside it
        assert "cdn.plot.ly" not in html
        assert "Publication year" in html
    assert "Share of sentences (%)" in (tmp_path / "figures" / "stance_over_time.html").read_text()
    assert (tmp_path / "figures" / "plotly.min.js").stat().st_size > 1_000_000


def test_axes_are_labelled_and_dated(corpus, topic_outputs, tmp_path, captured):
    sentences, documents = corpus
    trends = compute_trends(sentences, documents)
    figures.write_figures(trends, topic_outputs, tmp_path)
    years = sorted({p[:4] for p in documents["published"]})
    for name, fig in captured.items():
        main, bottom = fig.axes[0], fig.axes[-1]  # the n-per-period panel carries the time axis
        assert bottom.get_xlabel() == "Publication year", name
        assert bottom.get_ylabel() in ("Sentences", "Paragraphs"), name
        assert main.get_ylabel() or fig.get_supylabel(), name
        assert main.get_title() or fig.get_suptitle(), name
        ticks = [t.get_text() for t in bottom.get_xticklabels() if t.get_text()]
        assert all(re.fullmatch(r"\d{4}", t) for t in ticks), (name, ticks)
        low, high = (figures.mdates.num2date(x).year for x in bottom.get_xlim())
        assert low <= int(years[0]) and high >= int(years[-1]), name
        if name != "topics_over_time.png":  # small multiples are named by their panel titles
            legend = main.get_legend()
            assert legend is not None and legend.get_bbox_to_anchor().x0 > main.bbox.x1 - 1, (
                name
            )  # outside


def test_topics_are_small_multiples_on_one_scale(corpus, topic_outputs, tmp_path, captured):
    figures.write_figures({}, topic_outputs, tmp_path)
    fig = captured["topics_over_time.png"]
    panels = fig.axes[:-1]
    assert len(panels) == 12  # one panel per topic (twelve), then the paragraphs-per-period panel
    titles = [ax.get_title(loc="left") for ax in panels]
    assert all(re.match(r"\d+: \S", title) for title in titles), titles
    assert len({ax.get_ylim() for ax in panels}) == 1  # shared scale: panels compare
    colours = {ax.get_lines()[0].get_color() for ax in panels}
    assert len(colours) == 12 and len(set(figures.palette(30))) == 30
    html = (tmp_path / "topics_over_time.html").read_text(encoding="utf-8")
    assert (
        all(title.split(":")[0] + ":" in html for title in titles)
        and "Paragraphs per period" in html
    )


def test_n_per_period_is_shown_and_small_periods_do_not_set_the_axis(corpus, tmp_path, captured):
    sentences, documents = corpus
    trends = compute_trends(sentences, documents)
    figures.write_figures(trends, None, tmp_path)
    fig = captured["stance_over_time.png"]
    ax, ax_n = fig.axes[0], fig.axes[-1]
    rows = over_time(trends["stance_trends"])
    n = dict(zip(rows["period"], rows["n_sentences"], strict=True))
    # the bars are the sentences of each period, labelled with their number
    heights = sorted(int(bar.get_height()) for bar in ax_n.patches)
    assert heights == sorted(n.values())
    assert {f"{v:,}" for v in n.values()} <= {t.get_text() for t in ax_n.texts}
    small = {p for p, v in n.items() if v < figures.MIN_PERIOD_SENTENCES}
    assert small == {"2007", "2014", "2017", "2018"}  # the seed texts: one short document a year
    pale = [
        bar
        for bar in ax_n.patches
        if bar.get_facecolor()[:3] == matplotlib.colors.to_rgb(figures.N_FADED_COLOUR)
    ]
    assert len(pale) == len(small)
    # the y axis is set by the well-supported periods: 2018's one short text (74%) is marked, not scaled to
    share_2018 = 100 * rows.set_index("period").loc["2018", "share_collaboration"]
    assert ax.get_ylim()[1] < 20 < share_2018
    assert any(t.get_text().startswith(f"{share_2018:.1f}% (n={n['2018']})") for t in ax.texts)
    assert any("fewer than 100 sentences" in t.get_text() for t in fig.texts)
    # with a lower minimum every period counts
    captured.clear()
    figures.write_figures(trends, None, tmp_path / "all", min_sentences=1)
    assert captured["stance_over_time.png"].axes[0].get_ylim()[1] > share_2018


def test_stance_figure_has_interval_bands(corpus, tmp_path, captured):
    sentences, documents = corpus
    figures.write_figures(compute_trends(sentences, documents), None, tmp_path)
    ax = captured["stance_over_time.png"].axes[0]
    from matplotlib.collections import LineCollection

    bands = [c for c in ax.collections if not isinstance(c, LineCollection)]
    assert len(bands) == 2  # one shaded band per stance code
    whiskers = [c for c in ax.collections if isinstance(c, LineCollection)]
    # 2013 stands alone among the well-supported years (interval as a whisker), and the
    # short periods show theirs with their pale points: per code, 1 + 1 (y errors only)
    assert len(whiskers) == 4
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["Competition", "Collaboration"]


def test_quarters_and_undated_corpora(corpus, tmp_path, captured):
    sentences, documents = corpus
    trends = compute_trends(sentences, documents, by="quarter")
    written = figures.write_figures(trends, None, tmp_path / "q", by="quarter")
    fig = captured["stance_over_time.png"]
    assert fig.axes[-1].get_xlabel() == "Publication quarter"
    assert len(written) == 5
    # the documents dated only to a year are in no quarter: the note under the figure says so
    year_only = documents[documents["published"].str.len() == 4]
    in_year_only = int(sentences["doc_id"].isin(year_only["doc_id"]).sum())
    expected = (
        f"Not shown: {in_year_only:,} sentences of {len(year_only)} documents dated only to the year "
        "are in no quarter (period undated_in_quarter)."
    )
    assert any(expected in t.get_text() for t in fig.texts)
    assert expected in (tmp_path / "q" / "partnerships_over_time.html").read_text(encoding="utf-8")
    undated = documents.assign(published="")
    assert figures.write_figures(compute_trends(sentences, undated), None, tmp_path / "u") == []


def test_topics_figure_notes_paragraphs_without_a_quarter(corpus, tmp_path, captured):
    sentences, documents = corpus
    outputs = run_topics(
        sentences, documents, TopicSettings(by="quarter", fallback_below=10_000), tmp_path / "model"
    )
    figures.write_figures(None, outputs, tmp_path / "f", by="quarter")
    year_only = documents[documents["published"].str.len() == 4]["doc_id"]
    n_year_only = int(outputs.doc_topics["doc_id"].isin(year_only).sum())
    assert n_year_only > 0
    texts = " ".join(t.get_text() for t in captured["topics_over_time.png"].texts)
    assert f"{n_year_only:,} paragraphs dated only to the year are in no quarter" in texts
