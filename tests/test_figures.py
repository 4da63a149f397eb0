"""Figures: PNG and HTML written, labelled, dated, legible with many series."""

import re

import matplotlib.image as mpimg
import pandas as pd
import pytest

from tests.topic_data import ofsted_corpus, seed_corpus
from textmine import figures
from textmine.topics import TopicSettings, run_topics
from textmine.trends import compute_trends


@pytest.fixture(scope="module")
def corpus():
    sentences, documents = ofsted_corpus(limit=4)
    seeds, seed_docs = seed_corpus()
    return (pd.concat([sentences, seeds], ignore_index=True),
            pd.concat([documents, seed_docs], ignore_index=True))


@pytest.fixture(scope="module")
def topic_outputs(corpus, tmp_path_factory):
    sentences, documents = corpus
    # twelve topics: more series than the ten-colour cycle
    return run_topics(sentences, documents, TopicSettings(n_topics=12, fallback_below=10_000),
                      tmp_path_factory.mktemp("model"))


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
        ax = fig.axes[0]
        assert ax.get_xlabel() == "Publication year", name
        assert ax.get_ylabel(), name
        assert ax.get_title(), name
        ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert all(re.fullmatch(r"\d{4}", t) for t in ticks), (name, ticks)
        low, high = (figures.mdates.num2date(x).year for x in ax.get_xlim())
        assert low <= int(years[0]) and high >= int(years[-1]), name
        legend = ax.get_legend()
        assert legend is not None and legend.get_bbox_to_anchor().x0 > ax.bbox.x1 - 1, name  # outside


def test_many_series_get_distinct_styles(corpus, topic_outputs, tmp_path, captured):
    figures.write_figures({}, topic_outputs, tmp_path)
    lines = captured["topics_over_time.png"].axes[0].get_lines()
    assert len(lines) == 12
    styles = {(line.get_color(), line.get_linestyle(), line.get_marker()) for line in lines}
    assert len(styles) == 12
    assert len({line.get_color() for line in lines}) == 12
    assert len(set(figures.palette(30))) == 30


def test_stance_figure_has_interval_bands(corpus, tmp_path, captured):
    sentences, documents = corpus
    figures.write_figures(compute_trends(sentences, documents), None, tmp_path)
    ax = captured["stance_over_time.png"].axes[0]
    from matplotlib.collections import LineCollection

    bands = [c for c in ax.collections if not isinstance(c, LineCollection)]
    assert len(bands) == 2  # one shaded band per stance code
    whiskers = [c for c in ax.collections if isinstance(c, LineCollection)]
    assert len(whiskers) == 2  # 2007 (one seed text) has no neighbouring year: interval as whisker
    labels = [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")]
    assert labels == ["Competition", "Collaboration"]


def test_quarters_and_undated_corpora(corpus, tmp_path, captured):
    sentences, documents = corpus
    written = figures.write_figures(compute_trends(sentences, documents, by="quarter"), None,
                                    tmp_path / "q", by="quarter")
    assert captured["stance_over_time.png"].axes[0].get_xlabel() == "Publication quarter"
    assert len(written) == 5
    undated = documents.assign(published="")
    assert figures.write_figures(compute_trends(sentences, undated), None, tmp_path / "u") == []
