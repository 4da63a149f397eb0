"""Topics: chunks, settings, small-corpus fallback, reproducibility, saved models, offline."""

import json
import os
import re
import socket
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from tests.topic_data import REPO, ofsted_corpus, seed_corpus
from textmine.topics import (
    DOC_TOPIC_COLUMNS,
    TOPIC_COLUMNS,
    TfidfSvdEmbedder,
    TopicSettings,
    build_chunks,
    run_topics,
    seed_topics_from_codebook,
    topic_name,
    write_topic_tables,
)


def _topics_with_files(sentences, documents, out_dir, settings):
    """Fit (or reuse) the model in out_dir/topic_model, write the tables and the figure."""
    from textmine.figures import write_figures

    outputs = run_topics(sentences, documents, settings, out_dir / "topic_model")
    written = write_topic_tables(outputs, out_dir)
    written += write_figures(None, outputs, out_dir / "figures", by=settings.by)
    return outputs, written


def _first_chunks(sentences, documents, n):
    """The sentences of the first n chunks (in document order) of a corpus."""
    chunks = build_chunks(sentences, documents)
    keep = set()
    for row in chunks.head(n).itertuples():
        keep.update(
            (row.doc_id, p)
            for p in range(row.paragraph_index, row.paragraph_index + row.n_paragraphs)
        )
    mask = [
        (d, p) in keep
        for d, p in zip(sentences["doc_id"], sentences["paragraph_index"], strict=True)
    ]
    return sentences[mask]


@pytest.fixture(scope="module")
def seeds():
    return seed_corpus()


@pytest.fixture(scope="module")
def ofsted_400():
    sentences, documents = ofsted_corpus()
    return _first_chunks(sentences, documents, 400), documents


# settings and chunks -----------------------------------------------------------------


def test_settings_validate_themselves():
    assert TopicSettings(n_topics="7").n_topics == 7
    for bad in (
        {"by": "month"},
        {"n_topics": "many"},
        {"n_topics": 1},
        {"min_topic_size": 1},
        {"nr_bins": 0},
        {"outlier_threshold": 2.0},
    ):
        with pytest.raises(ValueError):
            TopicSettings(**bad)
    with pytest.raises(ValueError, match="embeddings"):
        TopicSettings(embedding="all-MiniLM-L6-v2")  # sentence-transformers is not installed here


def test_chunks_are_paragraphs_with_short_ones_merged(seeds):
    sentences, documents = seeds
    chunks = build_chunks(sentences, documents, min_words=25)
    assert list(chunks.columns[:6]) == [
        "chunk_id",
        "doc_id",
        "path",
        "paragraph_index",
        "n_paragraphs",
        "page",
    ]
    assert chunks["chunk_id"].is_unique
    # every sentence's words land in exactly one chunk, in order
    for doc_id, group in sentences.groupby("doc_id"):
        expected = " ".join(" ".join(group.sort_values("sentence_index")["text"]).split())
        got = " ".join(" ".join(chunks.loc[chunks["doc_id"] == doc_id, "text"]).split())
        assert got == expected
    words = chunks["text"].str.split().str.len()
    last_of_doc = ~chunks["doc_id"].duplicated(keep="last")
    assert (words[~last_of_doc] >= 25).all()  # only a document's last chunk may be short
    assert (chunks["n_paragraphs"] > 1).any()  # headings were merged
    published = documents.set_index("doc_id")["published"]
    assert (chunks["published"] == chunks["doc_id"].map(published)).all()
    assert chunks["n_sentences"].sum() == len(sentences)


def test_topic_names_prefer_phrases_and_skip_repeats():
    words = [
        ("care", 0.5),
        ("care leavers", 0.4),
        ("leavers", 0.3),
        ("housing", 0.2),
        ("advisers", 0.1),
        ("personal", 0.05),
    ]
    assert topic_name(3, words) == "care leavers, housing, advisers, personal"
    assert topic_name(-1, words).startswith("Outliers")


def test_codebook_codes_become_seed_lists():
    from textmine.codebook import load_codebook

    codebook = load_codebook()
    seeds = seed_topics_from_codebook(codebook)
    assert len(seeds) == len(codebook.codes)
    flat = {w for seed in seeds for w in seed}
    assert {"competition", "league table", "collaboration"} <= flat
    assert all(len(s) <= 20 and s == list(dict.fromkeys(s)) for s in seeds)


# fitting -----------------------------------------------------------------------------


def test_twenty_chunks_fall_back_to_pca_kmeans(seeds, tmp_path):
    sentences, documents = seeds
    small = _first_chunks(sentences, documents, 20)
    outputs = run_topics(small, documents, TopicSettings(), tmp_path / "model")
    assert len(outputs.doc_topics) == 20
    assert any("PCA + KMeans" in note for note in outputs.notes)
    assert (outputs.doc_topics["topic"] >= 0).all()
    assert 2 <= len(outputs.topics) <= 10
    assert list(outputs.topics.columns) == TOPIC_COLUMNS
    assert list(outputs.doc_topics.columns) == DOC_TOPIC_COLUMNS
    assert outputs.topics["size"].sum() == 20
    assert (outputs.topics["name"].str.len() > 0).all()
    assert (outputs.topics["representative_texts"].str.len() > 0).all()
    for row in outputs.topics.itertuples():  # representatives are chunks of the topic
        ids = row.representative_chunk_ids.split("; ")
        members = outputs.doc_topics.loc[outputs.doc_topics["topic"] == row.topic, "chunk_id"]
        assert set(ids) <= set(members)
    tot = outputs.topics_over_time
    assert set(tot["period"]) <= set(outputs.doc_topics["period"])
    assert tot.groupby("period")["share_of_period"].sum().tolist() == pytest.approx(
        [1.0] * tot["period"].nunique(), abs=1e-5
    )
    assert (
        tot.groupby("period")["n_chunks"].sum() == tot.groupby("period")["period_chunks"].first()
    ).all()


def test_a_number_of_topics_and_tiny_corpora(seeds, tmp_path):
    sentences, documents = seeds
    outputs = run_topics(sentences, documents, TopicSettings(n_topics=4), tmp_path / "a")
    assert len(outputs.topics) == 4
    for n in (1, 3):
        tiny = run_topics(
            _first_chunks(sentences, documents, n),
            documents,
            TopicSettings(),
            tmp_path / f"tiny{n}",
        )
        assert len(tiny.doc_topics) == n and (tiny.doc_topics["topic"] >= 0).all()
    empty = run_topics(sentences.iloc[:0], documents, TopicSettings(), tmp_path / "empty")
    assert empty.topics.empty and "no text" in empty.notes[0]


def test_periods_by_quarter_and_by_bins(seeds, tmp_path):
    sentences, documents = seeds
    quarterly = run_topics(sentences, documents, TopicSettings(by="quarter"), tmp_path / "q")
    year_only = documents.loc[documents["published"].str.len() == 4, "doc_id"]
    assert any("no date with a month" in note for note in quarterly.notes)
    tot = quarterly.topics_over_time
    dated = ~quarterly.doc_topics["doc_id"].isin(year_only)
    assert tot["n_chunks"].sum() == dated.sum()
    assert set(tot["period"]) == {"2013-Q4", "2014-Q1"}
    binned = run_topics(sentences, documents, TopicSettings(nr_bins=2), tmp_path / "q")
    assert binned.topics_over_time["period"].nunique() == 2
    assert binned.topics_over_time["n_chunks"].sum() == len(binned.doc_topics)
    assert binned.topics_over_time["period_start"].min() == "2007-01-01"


def test_seeded_topics_are_guided_by_the_codebook(ofsted_400, tmp_path):
    sentences, documents = ofsted_400
    plain = run_topics(sentences, documents, TopicSettings(), tmp_path / "plain")
    seeded = run_topics(
        sentences, documents, TopicSettings(seed_topics_from_codebook=True), tmp_path / "seeded"
    )
    assert any("seeded with 10 codebook" in note for note in seeded.notes)
    assert seeded.doc_topics["topic"].notna().all()
    # the seed words move the fit: another partition of the same chunks
    assert plain.doc_topics["topic"].tolist() != seeded.doc_topics["topic"].tolist()


def test_same_corpus_and_settings_give_the_same_topics(ofsted_400, tmp_path):
    sentences, documents = ofsted_400
    first = run_topics(sentences, documents, TopicSettings(), tmp_path / "one")
    second = run_topics(sentences, documents, TopicSettings(), tmp_path / "two", refit=True)
    assert any("umap+hdbscan" in note for note in first.notes)
    assert len(first.topics) >= 3
    assert first.doc_topics["topic"].tolist() == second.doc_topics["topic"].tolist()
    pd.testing.assert_frame_equal(first.topics, second.topics)
    pd.testing.assert_frame_equal(first.topics_over_time, second.topics_over_time)
    assert (first.doc_topics["topic"] == -1).mean() <= 0.15


@pytest.mark.parametrize("n_topics", ["auto", 4])
def test_topic_words_made_once_after_outlier_reduction_equal_those_made_twice(
    ofsted_400, tmp_path, monkeypatch, n_topics
):
    """The fit skips its own topic words when update_topics remakes them: same tables, same model files."""
    import textmine.topics.fit as fit

    sentences, documents = ofsted_400
    settings = TopicSettings(n_topics=n_topics, seed_topics_from_codebook=True)
    skipped = []
    only_vectors = fit._topic_vectors_only_with_outliers

    def counted(model):
        extract = only_vectors(model)

        def wrapper(documents, *args, **kwargs):
            skipped.append(not model.nr_topics and (documents["Topic"] == -1).any())
            return extract(documents, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(fit, "_topic_vectors_only_with_outliers", counted)
    once, _ = _topics_with_files(sentences, documents, tmp_path / "once", settings)
    monkeypatch.setattr(
        fit, "_topic_vectors_only_with_outliers", lambda model: model._extract_topics
    )
    twice, _ = _topics_with_files(sentences, documents, tmp_path / "twice", settings)
    assert set(skipped) == {n_topics == "auto"}  # topic reduction reads the words
    assert any(
        "outliers" in note and "% before" in note and "0.0% before" not in note
        for note in once.notes
    )
    for name in ("topics", "doc_topics", "topics_over_time"):
        pd.testing.assert_frame_equal(getattr(once, name), getattr(twice, name))
    files = sorted(
        p.relative_to(tmp_path / "once") for p in (tmp_path / "once").rglob("*") if p.is_file()
    )
    assert files == sorted(
        p.relative_to(tmp_path / "twice") for p in (tmp_path / "twice").rglob("*") if p.is_file()
    )
    for path in files:
        first, second = (
            (tmp_path / "once" / path).read_bytes(),
            (tmp_path / "twice" / path).read_bytes(),
        )
        if path.name == "fitted.json":
            first, second = (
                {k: v for k, v in json.loads(text).items() if k != "fitted_at"}
                for text in (first, second)
            )
        elif path.suffix == ".html":  # plotly's random element ids
            first, second = (
                re.sub(rb"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}", b"", b)
                for b in (first, second)
            )
        assert first == second, path


def test_saved_model_assigns_new_chunks_without_refitting(ofsted_400, tmp_path):
    sentences, documents = ofsted_400
    all_sentences, _ = ofsted_corpus()
    model_dir = tmp_path / "model"
    fitted = run_topics(sentences, documents, TopicSettings(), model_dir)
    files = {p.name for p in (model_dir / "bertopic").iterdir()}
    assert {"topic_embeddings.safetensors", "ctfidf.safetensors", "config.json"} <= files
    assert not list(model_dir.rglob("*.pkl")) and not list(model_dir.rglob("*.pickle"))
    # new documents arrive: old chunks keep their topic, new ones are assigned by the saved model
    later_docs = sorted(set(all_sentences["doc_id"]) - set(sentences["doc_id"]))[:2]
    grown = pd.concat([sentences, all_sentences[all_sentences["doc_id"].isin(later_docs)]])
    assigned = run_topics(grown, documents, TopicSettings(), model_dir)
    assert not assigned.refitted
    assert any("without refitting" in note for note in assigned.notes)
    old = assigned.doc_topics.set_index("chunk_id").loc[fitted.doc_topics["chunk_id"]]
    assert old["topic"].tolist() == fitted.doc_topics["topic"].tolist()
    new = assigned.doc_topics[~assigned.doc_topics["chunk_id"].isin(fitted.doc_topics["chunk_id"])]
    assert len(new) > 0 and (new["assigned_by"] == "transform").all()
    assert set(new["topic"]) <= set(fitted.topics["topic"])
    # other settings: the saved model is kept and the note says how to refit
    kept = run_topics(grown, documents, TopicSettings(n_topics=5), model_dir)
    assert any("--refit" in note for note in kept.notes)
    refitted = run_topics(grown, documents, TopicSettings(n_topics=5), model_dir, refit=True)
    assert refitted.refitted and len(refitted.topics[refitted.topics["topic"] != -1]) <= 5


def test_embedding_model_round_trips_without_pickle(seeds, tmp_path):
    sentences, documents = seeds
    texts = build_chunks(sentences, documents)["text"].tolist()
    embedder = TfidfSvdEmbedder(50, 42)
    embeddings = embedder.fit_transform(texts)
    embedder.save(tmp_path / "emb")
    loaded = TfidfSvdEmbedder.load(tmp_path / "emb")
    np.testing.assert_allclose(loaded.transform(texts), embeddings, atol=1e-5)
    assert json.loads((tmp_path / "emb" / "embedding.json").read_text())["kind"] == "tfidf-svd"


def test_cached_embeddings_are_reused(seeds, tmp_path):
    sentences, documents = seeds
    run_topics(sentences, documents, TopicSettings(), tmp_path / "m")
    (cache,) = (tmp_path / "m").rglob("embeddings.npy")
    stamp, cached = cache.stat().st_mtime_ns, np.load(cache)
    again = run_topics(sentences, documents, TopicSettings(n_topics=3), tmp_path / "m", refit=True)
    assert any("reused cached embeddings" in note for note in again.notes)
    assert cache.stat().st_mtime_ns == stamp  # not computed and written again
    np.testing.assert_array_equal(np.load(cache), cached)
    # other texts are embedded anew, and replace the cache
    other = sentences[sentences["doc_id"] == sentences["doc_id"].iloc[0]]
    changed = run_topics(other, documents, TopicSettings(), tmp_path / "m", refit=True)
    assert not any("reused cached embeddings" in note for note in changed.notes)
    assert cache.stat().st_mtime_ns != stamp


# offline -------------------------------------------------------------------------------


def _no_network(*args, **kwargs):
    raise AssertionError("network access attempted")


class _NoNetworkSocket(socket.socket):
    def __init__(self, *args, **kwargs):
        raise AssertionError("network access attempted")


def test_default_fit_never_touches_the_network(seeds, tmp_path, monkeypatch):
    monkeypatch.setattr(socket, "socket", _NoNetworkSocket)
    monkeypatch.setattr(socket, "create_connection", _no_network)
    monkeypatch.setattr(socket, "getaddrinfo", _no_network)
    sentences, documents = seeds
    outputs, _ = _topics_with_files(sentences, documents, tmp_path, TopicSettings())
    assert len(outputs.topics) >= 2
    assert (tmp_path / "figures" / "topics_over_time.html").is_file()
    again, _ = _topics_with_files(
        sentences, documents, tmp_path, TopicSettings()
    )  # loads the saved model
    assert not again.refitted


def test_umap_path_offline_in_a_fresh_process(tmp_path):
    """Sockets blocked before anything is imported; UMAP + HDBSCAN path (200 chunks)."""
    script = f"""
import socket, sys
def blocked(*a, **k):
    raise AssertionError("network access attempted")
class NoNetworkSocket(socket.socket):  # a subclass, so ssl can still subclass socket.socket
    def __init__(self, *a, **k):
        blocked()
socket.socket = NoNetworkSocket
socket.create_connection = blocked
socket.getaddrinfo = blocked
sys.path.insert(0, {str(REPO)!r})
from tests.topic_data import ofsted_corpus
from tests.test_topics import _first_chunks
from textmine.topics import TopicSettings, run_topics
s, d = ofsted_corpus(limit=3)
out = run_topics(_first_chunks(s, d, 200), d, TopicSettings(), {str(tmp_path / "m")!r})
assert any("umap+hdbscan" in n for n in out.notes), out.notes
print(",".join(map(str, out.doc_topics["topic"])))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "NO_PROXY": "*"},
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = [int(t) for t in done.stdout.strip().splitlines()[-1].split(",")]
    assert len(set(fresh)) >= 2
    # the same chunks fitted in this process give the same topics: reproducible across processes
    sentences, documents = ofsted_corpus(limit=3)
    here = run_topics(
        _first_chunks(sentences, documents, 200), documents, TopicSettings(), tmp_path / "h"
    )
    assert here.doc_topics["topic"].tolist() == fresh


@pytest.mark.slow
def test_whole_bundled_ofsted_corpus_has_readable_topics_and_few_outliers(tmp_path):
    sentences, documents = ofsted_corpus()
    outputs = run_topics(sentences, documents, TopicSettings(), tmp_path / "m")
    assert len(outputs.doc_topics) > 1000
    assert (outputs.doc_topics["topic"] == -1).mean() <= 0.15
    named = outputs.topics[outputs.topics["topic"] != -1]
    assert len(named) >= 10
    boilerplate = {"ofsted", "inspection", "local authority"}
    for words in named["top_words"]:
        assert not boilerplate & {w.split(" (")[0] for w in words.split("; ")}


# command line ---------------------------------------------------------------------------


def test_topics_and_trends_commands_over_a_processed_corpus(tmp_path):
    import shutil

    from typer.testing import CliRunner

    from textmine.cli import app
    from textmine.run import RunSettings, run_pipeline

    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus" / "seeds", corpus / "seeds")
    manifest = pd.read_csv(REPO / "corpus" / "manifest.csv", dtype=str)
    manifest[manifest["path"].str.startswith("seeds/")].to_csv(corpus / "manifest.csv", index=False)
    out = tmp_path / "out"
    run_pipeline(RunSettings(paths=[corpus], out_dir=out, stages=("ingest", "code")))
    runner = CliRunner()
    result = runner.invoke(app, ["topics", "--out", str(out), "--n-topics", "4"])
    assert result.exit_code == 0, result.output
    topics = pd.read_csv(out / "topics.csv")
    assert len(topics) == 4 and (out / "figures" / "topics_over_time.png").is_file()
    doc_topics = pd.read_csv(out / "doc_topics.csv", dtype={"doc_id": str})
    from textmine.store import open_store

    with open_store(out) as store:
        assert set(doc_topics["doc_id"]) == set(store.documents()["doc_id"])
    result = runner.invoke(app, ["trends", "--out", str(out), "--by", "quarter"])
    assert result.exit_code == 0, result.output
    for name in ("stance_trends.csv", "partnership_trends.csv", "document_shares.csv"):
        assert len(pd.read_csv(out / name)) > 0
    assert (out / "figures" / "stance_over_time.html").is_file()
    again = runner.invoke(app, ["topics", "--out", str(out), "--n-topics", "4"])
    assert "without refitting" in again.output
    missing = runner.invoke(app, ["topics", "--out", str(tmp_path / "nothing")])
    assert missing.exit_code == 1 and "textmine run" in missing.output
    bad = runner.invoke(app, ["trends", "--out", str(out), "--by", "month"])
    assert bad.exit_code != 0


def test_a_fit_does_not_depend_on_earlier_fits_in_the_process(tmp_path):
    """Library loading, BLAS threads and random streams left by one fit do not change the next."""
    sentences, documents = ofsted_corpus(limit=3)
    chunks = _first_chunks(sentences, documents, 200)
    first = run_topics(chunks, documents, TopicSettings(), tmp_path / "a")
    run_topics(sentences, documents, TopicSettings(n_topics=3), tmp_path / "other")
    again = run_topics(chunks, documents, TopicSettings(), tmp_path / "b")
    assert first.doc_topics["topic"].tolist() == again.doc_topics["topic"].tolist()


# large corpora: approximate nearest neighbours --------------------------------------


def test_approximate_neighbours_are_seeded_and_close_to_exact(ofsted_400):
    from textmine.topics.neighbours import approximate_neighbours, exact_neighbours

    sentences, documents = ofsted_400
    texts = build_chunks(sentences, documents)["text"].tolist()
    embeddings = TfidfSvdEmbedder(50, 42).fit_transform(texts)
    exact, _ = exact_neighbours(embeddings, 15)
    first, distances = approximate_neighbours(embeddings, 15, random_state=42, probe=4)
    again, _ = approximate_neighbours(embeddings, 15, random_state=42, probe=4)
    np.testing.assert_array_equal(first, again)
    assert first.shape == exact.shape == (len(texts), 15)
    assert (first[:, 0] == np.arange(len(texts))).all()  # each chunk is its own nearest
    assert (np.diff(distances, axis=1) >= 0).all()
    recall = np.mean([len(set(a) & set(b)) / 15 for a, b in zip(first, exact, strict=True)])
    assert 0.75 <= recall < 0.99  # approximate (4 of 20 cells probed), yet most neighbours found
    every_cell, _ = approximate_neighbours(embeddings, 15, random_state=42, probe=10**6)
    assert np.mean([set(a) == set(b) for a, b in zip(every_cell, exact, strict=True)]) > 0.99


@pytest.mark.slow
def test_large_corpus_path_is_reproducible_across_processes(tmp_path):
    """The approximate-neighbour path (threshold lowered to 1,000 chunks) gives the same topics
    twice in one process and in a fresh process."""
    settings = "TopicSettings(approximate_neighbours_from=1000)"
    script = f"""
import sys
sys.path.insert(0, {str(REPO)!r})
from tests.topic_data import ofsted_corpus
from textmine.topics import TopicSettings, run_topics
s, d = ofsted_corpus()
out = run_topics(s, d, {settings}, {str(tmp_path / "fresh")!r})
print(",".join(map(str, out.doc_topics["topic"])))
"""
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    fresh = [int(t) for t in done.stdout.strip().splitlines()[-1].split(",")]
    sentences, documents = ofsted_corpus()
    first = run_topics(
        sentences, documents, TopicSettings(approximate_neighbours_from=1000), tmp_path / "a"
    )
    assert len(first.doc_topics) > 3000
    assert any("approximate nearest neighbours" in note for note in first.notes)
    assert any("umap+hdbscan" in note for note in first.notes)
    again = run_topics(
        sentences,
        documents,
        TopicSettings(approximate_neighbours_from=1000),
        tmp_path / "b",
        refit=True,
    )
    assert first.doc_topics["topic"].tolist() == again.doc_topics["topic"].tolist() == fresh
    pd.testing.assert_frame_equal(first.topics, again.topics)
    assert len(first.topics) >= 5
    exact = run_topics(sentences, documents, TopicSettings(), tmp_path / "exact")
    assert not any("approximate" in note for note in exact.notes)  # below the default threshold


def test_pynndescent_is_imported_without_compiling_its_signatures():
    """A fresh process: importing the model libraries compiles none of pynndescent's functions
    up front (~12 s on a fresh install), and numba's decorators are numba's own afterwards."""
    script = """
import numba, numba.core.decorators as decorators
from textmine.topics.fit import import_model_libraries
import_model_libraries()
import pynndescent.distances as distances
print(len(distances.euclidean.signatures), numba.njit is decorators.njit, numba.jit is decorators.jit)
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=False, timeout=300
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.split() == ["0", "True", "True"]


def test_the_topic_stage_reads_no_codebook_without_seeded_topics(seeds, tmp_path, monkeypatch):
    import textmine.codebook
    from textmine.run.settings import RunSettings
    from textmine.run.topic_job import run_topic_stage

    def no_codebook(*args, **kwargs):
        raise AssertionError("the codebook was read")

    monkeypatch.setattr(textmine.codebook, "load_codebook", no_codebook)
    sentences, documents = seeds
    settings = RunSettings(paths=[tmp_path], out_dir=tmp_path / "out")
    result = run_topic_stage(settings, sentences, documents, None, with_figure=False)
    assert result.error is None and len(result.outputs.topics) >= 2


# progress ------------------------------------------------------------------------------


def test_the_topic_stage_says_what_it_is_doing(seeds, tmp_path):
    sentences, documents = seeds
    said: list[str] = []
    run_topics(sentences, documents, TopicSettings(), tmp_path / "m", status=said.append)
    assert said[0] == "building paragraph chunks"
    assert any(line.startswith("embedding ") and "chunks" in line for line in said)
    assert "saving the topic model" in said
    said.clear()
    run_topics(sentences, documents, TopicSettings(), tmp_path / "m", status=said.append)
    assert any(line.startswith("assigning ") for line in said)  # the saved model is used


def test_run_progress_carries_details_and_accepts_three_argument_callbacks(tmp_path):
    import shutil

    from textmine.run import RunSettings, run_pipeline

    corpus = tmp_path / "corpus"
    shutil.copytree(REPO / "corpus" / "seeds", corpus / "seeds")
    detailed: list[tuple] = []
    run_pipeline(
        RunSettings(paths=[corpus], out_dir=tmp_path / "a"),
        progress=lambda stage, done, total, detail="": detailed.append((stage, detail)),
    )
    topic_details = [detail for stage, detail in detailed if stage == "topics" and detail]
    assert any("embedding" in detail for detail in topic_details)
    plain: list[tuple] = []
    report = run_pipeline(
        RunSettings(paths=[corpus], out_dir=tmp_path / "b"),
        progress=lambda stage, done, total: plain.append((stage, done, total)),
    )
    assert report.status == "finished" and ("topics", 1, 1) in plain


def test_umap_epochs_follow_the_corpus_size_unless_set():
    from textmine.topics.fit import umap_epochs

    default = TopicSettings()
    assert [umap_epochs(n, default) for n in (500, 10_000, 10_001, 19_999, 20_000, 100_000)] == [
        200,
        200,
        100,
        100,
        50,
        50,
    ]
    assert umap_epochs(100_000, TopicSettings(umap_epochs=300)) == 300
