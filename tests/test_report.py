"""The run report (report.html): data gathering, rendering, `textmine report`, headless Chromium."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from urllib.parse import unquote

import pandas as pd
import pytest
from typer.testing import CliRunner

from tests.conftest import CORPUS, REPO, TEST_DATA, codebook_file_with_code
from textmine.cli import app
from textmine.codebook import load_codebook
from textmine.report import REPORT_FILENAME, write_report
from textmine.report.data import (
    REPORT_DOCUMENT_COLUMNS,
    SENTENCE_VIEW_COLUMNS,
    CodeInfo,
    ReportData,
    complete_periods,
    evidence_spans,
    read_agreement_csv,
    read_metrics_json,
    read_validation_csv,
)
from textmine.report.html import render_report
from textmine.trends import wilson_interval

SECTION_IDS = ("corpus", "validity", "trends", "codes", "topics", "reproducibility")
ADDED_CODE = "improvement_partner"
RESOURCE_PATTERNS = (  # anything that would make a browser fetch
    r"<script",
    r"<link",
    r"<iframe",
    r"<object",
    r"<embed",
    r"<img",
    r"\bsrc\s*=",
    r"\bsrcset\s*=",
    r"url\(",
    r"@import",
)


# -- hand-built report data (sentences from tests/data/ofsted_gold.csv) -------------------


def _gold_sentence(code: str, index: int = 0) -> str:
    gold = pd.read_csv(TEST_DATA / "ofsted_gold.csv")
    return gold.loc[gold[code] == 1, "sentence"].iloc[index]


def _sentence_rows(rows: list[dict]) -> pd.DataFrame:
    columns = SENTENCE_VIEW_COLUMNS
    return pd.DataFrame(
        [
            {
                "sentence_id": f"s{i}",
                "doc_id": "d1",
                "title": "",
                "path": "a.pdf",
                "page": 3,
                "year": "2016",
                "href": "",
                "spans": [],
                "coded": 1,
                "p": math.nan,
                **row,
            }
            for i, row in enumerate(rows)
        ],
        columns=columns,
    )


def _report_data(codes: list[CodeInfo] | None = None, **changes) -> ReportData:
    codebook = load_codebook()
    if codes is None:
        codes = [
            CodeInfo(k, c.name, c.kind, c.colour, c.description) for k, c in codebook.codes.items()
        ]
    data = ReportData(
        title="report",
        generated_at="2026-01-01 00:00:00",
        out_dir="/data/out",
        codes=codes,
        by="year",
        counts={"documents": 1, "pages": 3, "sentences": 2},
        changes={},
        documents=pd.DataFrame(columns=[*REPORT_DOCUMENT_COLUMNS, "year", "href"]),
        corpus_table=pd.DataFrame(
            columns=["year", "doc_type", "publisher", "documents", "pages", "sentences"]
        ),
        failures=pd.DataFrame(columns=["path", "reason", "meaning", "message"]),
        duplicates=pd.DataFrame(columns=["path", "duplicate_of"]),
        stance_over_time=None,
        partnership_over_time=None,
        stance_by_group=None,
        partnership_by_group=None,
        undated={},
        corrected=False,
        code_summary=pd.DataFrame(columns=["code", "n_sentences", "n_documents", "share"]),
        examples={},
        least_sure={},
        has_probabilities=False,
        topics=None,
        topics_over_time=None,
        topic_stance={},
        validity=[],
        reproducibility={},
        settings={},
        timings={},
        runs=pd.DataFrame(),
        notes=[],
    )
    return dataclasses.replace(data, **changes)


def test_render_escapes_every_text_value():
    hostile = 'Scores <50% & "gaps" </li><script>alert(1)</script> remain'
    start = hostile.index("gaps")
    data = _report_data(
        title='Report <u>"x"</u>',
        notes=["note with <tag> & ampersand"],
        examples={
            "collaboration": _sentence_rows(
                [
                    {
                        "text": hostile,
                        "spans": [(start, start + 4)],
                        "title": "Title <i>&</i>",
                        "href": '../corpus/a "b".pdf#page=3',
                    }
                ]
            )
        },
        failures=pd.DataFrame(
            [{"path": "bad<1>.pdf", "reason": "malformed", "meaning": "m", "message": "x & <y>"}]
        ),
    )
    page = render_report(data)
    for raw in ("<script", "<u>", "<tag>", "<i>", "<y>", "<1>"):
        assert raw not in page
    assert "Scores &lt;50% &amp; &quot;" in page
    assert "&lt;/li&gt;&lt;script&gt;alert(1)&lt;/script&gt; remain" in page
    assert re.search(r'<mark style="[^"]+">gaps</mark>', page)
    assert 'href="../corpus/a &quot;b&quot;.pdf#page=3"' in page
    assert "Report &lt;u&gt;&quot;x&quot;&lt;/u&gt;" in page
    assert "Title &lt;i&gt;&amp;&lt;/i&gt;" in page and "bad&lt;1&gt;.pdf" in page
    assert "x &amp; &lt;y&gt;" in page


def test_render_says_what_is_missing_when_optional_inputs_are_absent():
    page = render_report(_report_data())
    for section in SECTION_IDS:
        assert f'<section id="{section}">' in page
    assert "No agreement figures are available" in page
    assert "gives no probabilities" in page
    assert "No dated trend table" in page
    assert "No topic model in the store" in page
    assert "Where the coder was least sure" not in page


def test_added_code_gets_its_own_section_with_highlighted_evidence():
    text = _gold_sentence("network", 0)
    start = text.index("improvement partner")
    codes = [
        CodeInfo("collaboration", "Collaboration", "stance", "#2ca02c", ""),
        CodeInfo(
            ADDED_CODE,
            "Improvement partner",
            "partnership",
            "#abc",
            "Councils that act as improvement partners.",
        ),
    ]
    data = _report_data(
        codes=codes,
        code_summary=pd.DataFrame(
            [{"code": ADDED_CODE, "n_sentences": 1, "n_documents": 1, "share": 0.5}]
        ),
        examples={ADDED_CODE: _sentence_rows([{"text": text, "spans": [(start, start + 19)]}])},
    )
    page = render_report(data)
    assert f'id="code-{ADDED_CODE}"' in page and f'href="#code-{ADDED_CODE}"' in page
    assert "Councils that act as improvement partners." in page
    assert "#aabbcc" in page  # 3-digit codebook colour expanded for the highlight's alpha
    assert re.search(r"<mark [^>]+>improvement partner</mark>", page)
    assert "Not coded in this store" in page  # collaboration has no examples here


def test_least_sure_sentences_and_corrected_trends_are_shown_when_present():
    text = _gold_sentence("collaboration", 1)
    stance = pd.DataFrame(
        {
            "period": ["2015", "2016", "2017"],
            "n_documents": [4, 1, 5],
            "n_sentences": [900, 40, 1200],
            "share_collaboration": [0.07, 0.1, 0.08],
            "collaboration_ci_low": [0.055, 0.04, 0.066],
            "collaboration_ci_high": [0.088, 0.23, 0.096],
            "share_corrected_collaboration": [0.06, 0.09, 0.07],
            "collaboration_ci_low_corrected": [0.04, 0.02, 0.05],
            "collaboration_ci_high_corrected": [0.08, 0.25, 0.09],
            "n_validation": [300, 300, 300],
            "no_data": [False] * 3,
            "little_data": [False, True, False],
        }
    )
    partnership = stance[["period", "n_documents", "n_sentences", "no_data", "little_data"]].assign(
        n_network=[9, 1, 14],
        network_per_1000=[10.0, 25.0, 11.7],
        network_per_1000_corrected=[8.0, 20.0, 9.0],
        network_ci_low_corrected=[5.0, 2.0, 6.0],
        network_ci_high_corrected=[11.0, 40.0, 12.0],
    )
    data = _report_data(
        has_probabilities=True,
        corrected=True,
        stance_over_time=stance,
        partnership_over_time=partnership,
        examples={"collaboration": _sentence_rows([{"text": text, "p": 0.93}])},
        least_sure={"collaboration": _sentence_rows([{"text": text, "p": 0.51, "coded": 1}])},
    )
    page = render_report(data)
    assert "Where the coder was least sure" in page
    assert "p = 0.51, coded" in page
    assert "Collaboration (corrected)" in page and "Collaboration (as coded)" in page
    assert "validation sample: 300 sentences" in page
    assert 'stroke-dasharray="5 4"' in page  # the share as coded, dashed
    assert '2016 <span class="flag">little data</span>' in page
    assert "the solid line and band are the corrected rate" in page
    assert "2016: 20.0 per 1,000, corrected (95% 2.0–40.0)" in page
    assert "gives no probabilities" not in page


def test_evidence_spans_follow_the_offsets_and_fall_back_to_the_text():
    text = "Schools work in partnership with the police and other partner agencies."
    agencies = text.index("partner agencies")
    police = text.index("police")
    evidence = json.dumps(
        {
            "collaboration": [
                {"text": "partner agencies", "start": agencies, "end": agencies + 16},
                {"text": "work with police", "start": 8, "end": 24},  # neither offsets nor text
            ],
            "cross_sector": [{"text": "police", "start": 0, "end": 6}],  # stale offsets
        }
    )
    assert evidence_spans(text, evidence, "collaboration") == [(agencies, agencies + 16)]
    assert evidence_spans(text, evidence, "cross_sector") == [(police, police + 6)]
    overlapping = json.dumps(
        {
            "network": [
                {"text": "partner", "start": agencies, "end": agencies + 7},
                {"text": "partner agencies", "start": agencies, "end": agencies + 16},
            ]
        }
    )
    assert evidence_spans(text, overlapping, "network") == [(agencies, agencies + 16)]
    assert evidence_spans(text, "not json", "network") == []
    assert evidence_spans(text, None, "network") == []
    assert evidence_spans(text, evidence, "faith") == []


def test_agreement_table_gets_intervals_from_its_counts(tmp_path):
    table = tmp_path / "sample_agreement.csv"
    table.write_text(
        "code,kind,n,gold_pos,pred_pos,tp,fp,fn,precision,recall,f1,kappa,alpha\n"
        "collaboration,stance,200,50,50,40,10,10,0.8,0.8,0.8,0.7333,0.7340\n"
        "faith,partnership,200,0,0,0,0,0,,,,,\n"
        "macro_f1_stance,summary,,,,,,,,,0.62,,\n",
        encoding="utf-8",
    )
    source = read_agreement_csv(table, load_codebook())
    row = source.table.set_index("code").loc["collaboration"]
    low, high = wilson_interval(40, 50)
    assert row["precision_low"] == pytest.approx(low) and row["recall_high"] == pytest.approx(high)
    # po = 0.9, pe = 0.625: kappa 0.7333 ± 1.96 * sqrt(0.9 * 0.1 / 200) / 0.375
    assert row["kappa_low"] == pytest.approx(0.6225, abs=1e-4)
    assert row["kappa_high"] == pytest.approx(0.8442, abs=1e-4)
    assert source.details == {"macro f1 stance": "0.620"}
    assert "sample" in source.title
    page = render_report(_report_data(validity=[source]))
    assert '0.733 <span class="muted">[0.62, 0.84]</span>' in page


@pytest.mark.parametrize("shape", ["mapping", "list"])
def test_metrics_json_is_read_in_either_shape(tmp_path, shape):
    figures = {
        "kappa": {"mean": 0.71, "ci": [0.62, 0.79]},
        "f1_ci_low": 0.7,
        "f1_ci_high": 0.8,
        "f1": 0.75,
        "support": 118,
    }
    per_code = (
        {"collaboration": figures} if shape == "mapping" else [{"code": "collaboration", **figures}]
    )
    path = tmp_path / "metrics.json"
    path.write_text(
        json.dumps({"model_version": "3f2a", "folds": 5, "cv": {"per_code": per_code}}),
        encoding="utf-8",
    )
    source = read_metrics_json(path, load_codebook())
    row = source.table.set_index("code").loc["collaboration"]
    assert (row["kappa"], row["kappa_low"], row["kappa_high"]) == (0.71, 0.62, 0.79)
    assert (row["f1"], row["f1_low"], row["f1_high"]) == (0.75, 0.7, 0.8)
    assert row["n"] == 118
    assert source.details == {"model_version": "3f2a", "folds": "5"}


def test_validation_sample_report_is_read_with_its_intervals(tmp_path):
    from textmine.validation.tables import REPORT_COLUMNS

    rows = [
        [
            "collaboration",
            "all",
            240,
            30,
            33,
            0.081,
            0.06,
            0.10,
            0.09,
            0.009,
            -0.004,
            0.022,
            0.82,
            0.70,
            0.94,
            0.9,
            0.8,
            1.0,
            0.84,
            "",
        ],
        [
            "collaboration",
            "2016",
            60,
            8,
            9,
            0.08,
            0.03,
            0.13,
            0.09,
            0.01,
            -0.02,
            0.04,
            0.8,
            0.5,
            1.0,
            0.9,
            0.7,
            1.0,
            0.83,
            "approximate",
        ],
    ]
    path = tmp_path / "sample_by_period.csv"
    pd.DataFrame(rows, columns=REPORT_COLUMNS).to_csv(path, index=False)
    source = read_validation_csv(path, load_codebook())
    assert source.table["code"].tolist() == ["collaboration"]
    row = source.table.iloc[0]
    assert (row["n"], row["kappa"]) == (240, 0.84)
    assert (row["bias"], row["bias_low"], row["bias_high"]) == (0.009, -0.004, 0.022)
    assert (row["human_share_low"], row["human_share_high"]) == (0.06, 0.10)
    assert (row["precision_low"], row["recall_high"]) == (0.70, 1.0)
    page = render_report(_report_data(validity=[source]))
    assert "bias (coder − human)" in page and "[-0.00, 0.02]" in page


def test_unreadable_metrics_json_is_reported_not_raised(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text("{not json", encoding="utf-8")
    source = read_metrics_json(path, load_codebook())
    assert source.table.empty and "cannot be read" in source.note


def test_complete_periods_keeps_gaps():
    assert complete_periods(["2013", "2010", "2011"]) == ["2010", "2011", "2012", "2013"]
    assert complete_periods(["2019-Q4", "2020-Q2"]) == ["2019-Q4", "2020-Q1", "2020-Q2"]
    assert complete_periods(["2020-01-01", "2019-07-01"]) == ["2019-07-01", "2020-01-01"]


def test_report_command_without_a_processed_corpus_exits_1(tmp_path):
    result = CliRunner().invoke(app, ["report", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "no processed corpus" in result.output


# -- the bundled corpus, processed once -----------------------------------------------------


def _textmine(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", "from textmine.cli import main; main()", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


@pytest.fixture(scope="module")
def processed(tmp_path_factory) -> Path:
    """The bundled corpus processed by `textmine run` (30-60 s)."""
    out = tmp_path_factory.mktemp("report") / "out"
    result = _textmine("run", str(CORPUS), "--out", str(out))
    assert result.returncode == 0, result.stderr[-2000:]
    return out


def _write(out: Path) -> tuple[Path, str]:
    from textmine.store import open_store

    with open_store(out) as store:
        path = write_report(store, out, load_codebook())
    return path, path.read_text(encoding="utf-8")


@pytest.mark.slow
def test_report_of_the_bundled_corpus_has_every_section(processed):
    path, page = _write(processed)
    assert path == processed / REPORT_FILENAME
    assert path.stat().st_size < 5_000_000
    for section in SECTION_IDS:
        assert f'<section id="{section}">' in page
    for code in load_codebook().code_columns:
        assert f'id="code-{code}"' in page
    assert page.count("<svg") >= 3 and "<mark " in page
    # the packaged model's grouped cross-validation figures come before the trends
    assert "No agreement figures are available" not in page
    assert page.index('<section id="validity">') < page.index('<section id="trends">')
    for pattern in RESOURCE_PATTERNS:
        assert not re.search(pattern, page, re.IGNORECASE), pattern
    links = re.findall(r'href="([^"#]+)#page=(\d+)"', page)
    assert links, "example sentences link to their PDF page"
    for href, _page in links:
        assert (processed / unquote(href)).is_file(), href
    documents = json.loads((processed / "run.json").read_text())["counts"]["documents_total"]
    assert f"{documents:,} documents" in page


@pytest.mark.slow
def test_report_command_rebuilds_it_alone_with_evaluation_figures(processed):
    evaluation = _textmine(
        "evaluate", str(TEST_DATA / "ofsted_gold.csv"), "--out", str(processed / "evaluation")
    )
    assert evaluation.returncode == 0, evaluation.stderr[-2000:]
    report = processed / REPORT_FILENAME
    report.unlink(missing_ok=True)
    result = CliRunner().invoke(app, ["report", "--out", str(processed)])
    assert result.exit_code == 0, result.output
    page = report.read_text(encoding="utf-8")
    assert "ofsted_gold_agreement.csv" in page
    assert "No agreement figures are available" not in page
    assert re.search(r"Cohen's κ</th>", page)
    assert re.search(r'\d\.\d{3} <span class="muted">\[-?\d\.\d\d, \d\.\d\d\]</span>', page)
    for section in SECTION_IDS:
        assert f'<section id="{section}">' in page


@pytest.mark.slow
def test_report_shows_a_code_the_researcher_added(processed, tmp_path):
    entry = {
        "name": "Improvement partner",
        "kind": "partnership",
        "colour": "#123456",
        "description": "A council acting as improvement partner to another.",
        "patterns": ["improvement partner"],
    }
    codebook = codebook_file_with_code(tmp_path / "codebook.yml", ADDED_CODE, entry)
    out = tmp_path / "copy"
    shutil.copytree(processed, out, ignore=shutil.ignore_patterns(REPORT_FILENAME, ".*lock*"))
    result = CliRunner().invoke(app, ["report", "--out", str(out), "--codebook", str(codebook)])
    assert result.exit_code == 0, result.output
    page = (out / REPORT_FILENAME).read_text(encoding="utf-8")
    assert f'id="code-{ADDED_CODE}"' in page
    assert "A council acting as improvement partner to another." in page
    assert f"code(s) {ADDED_CODE} of codebook" in page  # named as not yet coded


# -- headless Chromium ---------------------------------------------------------------------


def _chromium() -> str | None:
    return next((p for p in map(shutil.which, ("chromium", "chromium-browser")) if p), None)


def _page_requests(netlog: Path) -> list[str]:
    """http(s) URLs the page asked for (the browser's own service calls have no origin)."""
    data = json.loads(netlog.read_text(encoding="utf-8"))
    start = data["constants"]["logEventTypes"]["URL_REQUEST_START_JOB"]
    return [
        event["params"]["url"]
        for event in data["events"]
        if event["type"] == start
        and "url" in event.get("params", {})
        and event["params"].get("initiator") != "not an origin"
        and event["params"]["url"].startswith(("http:", "https:"))
    ]


@pytest.mark.slow
def test_report_renders_in_headless_chromium_without_fetching(processed, tmp_path):
    chromium = _chromium()
    if chromium is None:
        pytest.skip("chromium is not installed (Debian: apt-get install chromium)")
    path, _ = _write(processed)
    flags = [
        chromium,
        "--headless",
        "--disable-gpu",
        "--no-sandbox",
        "--hide-scrollbars",
        "--proxy-server=127.0.0.1:9",
        "--disable-background-networking",
        "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}",
    ]
    netlog = tmp_path / "netlog.json"
    dom = subprocess.run(
        [*flags, f"--log-net-log={netlog}", "--dump-dom", path.as_uri()],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    ).stdout
    for section in SECTION_IDS:
        assert f'<section id="{section}">' in dom
    assert "Codes over time" in dom and "<svg" in dom
    assert _page_requests(netlog) == []
    screenshot = tmp_path / "report.png"
    subprocess.run(
        [*flags, f"--screenshot={screenshot}", "--window-size=1280,4000", path.as_uri()],
        capture_output=True,
        timeout=120,
        check=True,
    )
    from PIL import Image

    with Image.open(screenshot) as image:
        assert image.size == (1280, 4000)
        colours = image.convert("RGB").getcolors(maxcolors=1_000_000)
        assert colours is not None and len(colours) > 50  # rendered, not a blank page
    if os.environ.get("TEXTMINE_ARTEFACTS"):
        target = Path(os.environ["TEXTMINE_ARTEFACTS"])
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy2(screenshot, target / "report-screenshot.png")
