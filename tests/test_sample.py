"""`textmine sample` and the human round trip: a blind REFI-QDA project of the sample, coded in
"QDA software", imported back with its inclusion probabilities; end to end on the bundled corpus,
corrected trends that recover a stand-in human coder's shares.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path
from xml.etree import ElementTree as ET

import numpy as np
import pandas as pd
import pytest
import yaml
from typer.testing import CliRunner

from textmine.cli import app
from textmine.codebook import default_codebook_path, load_codebook, parse_codebook
from textmine.coding import code_sentences
from textmine.qda import project_schema, read_qdpx, schema_errors
from textmine.qda.schema import MACHINE_CODER_NAME, PROJECT_NAMESPACE, code_guid, codebook_version
from textmine.validation import (
    check_validation,
    corrected_column_names,
    draw_random_sample,
    import_sample_coding,
    read_sample,
    read_validation,
    sample_table,
    sentence_frame,
)
from textmine.validation.qdpx import (
    NEUTRAL_USER,
    SAMPLE_CODE,
    sample_qdpx_members,
    write_sample_qdpx,
)

REPO = Path(__file__).resolve().parent.parent
CORPUS = REPO / "corpus"
CODEBOOK = load_codebook()
CODES = CODEBOOK.code_columns
NS = {"q": PROJECT_NAMESPACE}
SENTENCE = re.compile(r"\S[^\n]*?(?:[.!?](?=\s|$)|(?=\n)|$)")
CODER_GUID = "0F1E2D3C-4B5A-4978-8695-A4B3C2D1E0F9"


@pytest.fixture(scope="module")
def seed_corpus() -> tuple[pd.DataFrame, pd.DataFrame, dict[str, str]]:
    """Documents, rule-coded sentences and clean texts of the bundled seed texts."""
    manifest = pd.read_csv(CORPUS / "manifest.csv", dtype=str, keep_default_na=False).set_index(
        "path"
    )
    documents, rows, texts = [], [], {}
    for path in sorted((CORPUS / "seeds").glob("*.txt")):
        data = path.read_bytes()
        doc_id = hashlib.sha256(data).hexdigest()[:16]
        texts[doc_id] = text = data.decode("utf-8")
        meta = manifest.loc[f"seeds/{path.name}"]
        documents.append(
            {
                "doc_id": doc_id,
                "path": f"corpus/seeds/{path.name}",
                "format": "text",
                "pages": 1,
                "title": meta["title"],
                "publisher": meta["publisher"],
                "doc_type": meta["doc_type"],
                "published": meta["published"],
                "licence": meta["licence"],
                "source": meta["source"],
                "duplicate_of": "",
            }
        )
        for index, match in enumerate(SENTENCE.finditer(text)):
            rows.append(
                {
                    "sentence_id": f"{doc_id}-{index:05d}",
                    "doc_id": doc_id,
                    "path": f"corpus/seeds/{path.name}",
                    "page": 1,
                    "sentence_index": index,
                    "start_char": match.start(),
                    "end_char": match.end(),
                    "text": match.group(),
                }
            )
    coded = code_sentences(pd.DataFrame(rows), CODEBOOK)
    return pd.DataFrame(documents), coded, texts


def _sample(coded: pd.DataFrame, documents: pd.DataFrame, n: int, seed: int = 4) -> pd.DataFrame:
    frame = sentence_frame(coded, documents, "year", CODES)
    return sample_table(draw_random_sample(frame, n, seed=seed), CODES)


def _code_in_qda_tool(qdpx: Path, target: Path, decisions: dict[str, list[str]]) -> Path:
    """What a person does in QDA software: code the sample's selections, export a .qdpx."""
    with zipfile.ZipFile(qdpx) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    root = ET.fromstring(members["project.qde"])
    guids = {code.get("name"): code.get("guid") for code in root.iterfind(".//q:Code", NS)}
    users = root.find("q:Users", NS)
    ET.SubElement(users, f"{{{PROJECT_NAMESPACE}}}User", {"guid": CODER_GUID, "name": "Alice"})
    for selection in root.iterfind(".//q:PlainTextSelection", NS):
        sentence_id = selection.get("name").split(": ", 1)[1]
        for number, code in enumerate(decisions.get(sentence_id, [])):
            coding = ET.SubElement(
                selection,
                f"{{{PROJECT_NAMESPACE}}}Coding",
                {
                    "guid": f"{number:08X}-0000-4000-8000-{int(sentence_id[-5:]):012d}",
                    "creatingUser": CODER_GUID,
                },
            )
            ET.SubElement(coding, f"{{{PROJECT_NAMESPACE}}}CodeRef", {"targetGUID": guids[code]})
    members["project.qde"] = ET.tostring(root, encoding="utf-8", xml_declaration=True)
    with zipfile.ZipFile(target, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return target


def _decisions(sample: pd.DataFrame, coded: pd.DataFrame) -> dict[str, list[str]]:
    """A stand-in human: the machine's codes, except every third sampled sentence gets the first code."""
    machine = coded.set_index("sentence_id")
    decisions = {}
    for number, sentence_id in enumerate(sample["id"]):
        codes = [c for c in CODES if machine.loc[sentence_id, c] == 1]
        if number % 3 == 0:
            codes = sorted(set(codes) ^ {CODES[0]}, key=CODES.index)
        decisions[sentence_id] = codes
    return decisions


def test_blind_sample_project_validates_and_carries_no_machine_codes(seed_corpus):
    documents, coded, texts = seed_corpus
    assert coded[CODES].to_numpy().sum() > 20  # the machine did code these sentences
    sample = _sample(coded, documents, 40)
    members = sample_qdpx_members(sample, documents, coded, texts, CODEBOOK)
    xml = members["project.qde"]
    assert schema_errors(xml, project_schema()) == []
    root = ET.fromstring(xml)
    codebook_guids = {code_guid(codebook_version(CODEBOOK), c) for c in CODES}
    referenced = {ref.get("targetGUID") for ref in root.iterfind(".//q:CodeRef", NS)}
    marker = [c.get("guid") for c in root.iterfind(".//q:Code", NS) if c.get("name") == SAMPLE_CODE]
    assert referenced == set(marker) and not referenced & codebook_guids
    assert {c.get("name") for c in root.iterfind(".//q:Code", NS)} >= set(
        CODES
    )  # the codebook is there
    assert [u.get("name") for u in root.iterfind(".//q:User", NS)] == [NEUTRAL_USER]
    assert MACHINE_CODER_NAME not in xml.decode("utf-8") and "evidence" not in xml.decode("utf-8")
    selections = root.findall(".//q:PlainTextSelection", NS)
    assert len(selections) == len(sample)
    spans = coded.set_index("sentence_id")
    for source in root.iterfind(".//q:TextSource", NS):
        text = members[f"sources/{source.get('plainTextPath').removeprefix('internal://')}"].decode(
            "utf-8"
        )
        for selection in source.iterfind("q:PlainTextSelection", NS):
            sentence_id = selection.get("name").split(": ", 1)[1]
            start, end = int(selection.get("startPosition")), int(selection.get("endPosition"))
            assert text[start:end] == spans.loc[sentence_id, "text"]


def test_human_codes_come_back_with_inclusion_probabilities_in_coded_set_format(
    seed_corpus, tmp_path
):
    documents, coded, texts = seed_corpus
    sample = _sample(coded, documents, 40)
    sample_csv = tmp_path / "s.sample.csv"
    sample.to_csv(sample_csv, index=False)
    project = write_sample_qdpx(tmp_path / "s.qdpx", sample, documents, coded, texts, CODEBOOK)
    decisions = _decisions(sample, coded)
    exported = _code_in_qda_tool(project, tmp_path / "coded.qdpx", decisions)
    imported = import_sample_coding(read_qdpx(exported, coded, texts, codes=CODES), sample_csv)
    coded_set = imported.coded_set
    assert coded_set["id"].tolist() == sample["id"].tolist()  # ids survive the round trip, in order
    assert coded_set.columns[: 2 + len(CODES)].tolist() == ["id", "sentence", *CODES]
    assert (
        "source" in coded_set.columns
        and coded_set["sentence"].tolist() == sample["sentence"].tolist()
    )
    for row in coded_set.to_dict("records"):
        assert [c for c in CODES if row[c] == 1] == decisions[row["id"]]
    design = read_sample(sample_csv).set_index("id")
    assert (
        coded_set["inclusion_prob"].astype(float).tolist()
        == design.loc[coded_set["id"], "inclusion_prob"].astype(float).tolist()
    )
    assert not any(SAMPLE_CODE in w for w in imported.warnings)
    assert imported.codings_by_user == {"Alice": sum(len(v) for v in decisions.values())}
    checked = check_validation(coded_set.astype(str), "imported", CODES)
    assert len(checked) == len(sample)


# --------------------------------------------------------------------------- bundled corpus, end to end


@pytest.fixture(scope="module")
def processed_corpus(tmp_path_factory) -> Path:
    """The bundled corpus read and coded with the rules (no topics): the store `textmine sample` reads."""
    from textmine.run import RunSettings, run_pipeline

    out = tmp_path_factory.mktemp("processed")
    run_pipeline(RunSettings(paths=[CORPUS], out_dir=out, stages=("ingest", "code"), coder="rules"))
    return out


def _strict_codebook(folder: Path) -> tuple[Path, str]:
    """A stand-in human who is stricter than the machine: half of one stance code's patterns."""
    raw = yaml.safe_load(default_codebook_path().read_text(encoding="utf-8"))
    code = max(CODEBOOK.stance_codes, key=lambda c: len(raw["codes"][c]["patterns"]))
    raw["codes"][code]["patterns"] = raw["codes"][code]["patterns"][::2]
    path = folder / "strict.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path, code


@pytest.mark.slow
def test_corrected_trends_recover_a_stand_in_coders_shares(processed_corpus, tmp_path):
    from textmine.store import open_store

    runner = CliRunner()
    sample_csv = tmp_path / "sample.csv"
    result = runner.invoke(
        app,
        [
            "sample",
            "--n",
            "900",
            "--seed",
            "11",
            "--corpus-dir",
            str(processed_corpus),
            "--out",
            str(sample_csv),
        ],
    )
    assert result.exit_code == 0, result.output
    strict, code = _strict_codebook(tmp_path)
    human_csv = tmp_path / "human.csv"
    result = runner.invoke(
        app,
        [
            "code",
            str(sample_csv),
            "--out",
            str(human_csv),
            "--codebook",
            str(strict),
            "--coder",
            "rules",
        ],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["trends", "--out", str(processed_corpus), "--validation", str(human_csv)]
    )
    assert result.exit_code == 0, result.output
    assert "corrected with 900 validation sentences" in result.output

    with open_store(processed_corpus) as store:
        sentences, documents = store.coded_sentences(), store.documents()
    stand_in = code_sentences(
        sentences[["sentence_id", "doc_id", "text"]],
        parse_codebook(strict.read_bytes(), source=str(strict)),
    )
    truth = sentence_frame(stand_in, documents, "year", CODES)
    machine = sentence_frame(sentences, documents, "year", CODES)
    tables = {
        kind: pd.read_csv(processed_corpus / f"{kind}_trends.csv", dtype={"period": str})
        for kind in ("stance", "partnership")
    }
    covered, unchanged = [], []
    for kind, codes, scale in (
        ("stance", CODEBOOK.stance_codes, 1),
        ("partnership", CODEBOOK.partnership_codes, 1000),
    ):
        rows = tables[kind][tables[kind]["dimension"] == "all"].set_index("period")
        assert rows["n_validation"].drop("all").sum() == 900
        for other in codes:
            estimate, low, high = corrected_column_names(other, kind)
            share = scale * pd.concat(
                [truth.groupby("period")[other].mean(), pd.Series({"all": truth[other].mean()})]
            )
            inside = (rows[low] - 1e-6 <= share[rows.index]) & (
                share[rows.index] <= rows[high] + 1e-6
            )
            if (truth[other] == machine[other]).all():  # the stand-in agrees: nothing to correct
                unchanged.append(other)
                measured = rows[f"share_{other}" if kind == "stance" else f"{other}_per_1000"]
                assert np.allclose(rows[estimate], measured), other
            else:
                covered += inside.tolist()
            if other == code:
                assert inside["all"]
                # the machine's own count is biased: its interval misses the stand-in's share
                assert (
                    not rows.loc["all", f"{code}_ci_low"]
                    <= share["all"]
                    <= rows.loc["all", f"{code}_ci_high"]
                )
    assert unchanged and any(c in CODEBOOK.partnership_codes for c in unchanged)
    assert np.mean(covered) >= 0.85, np.mean(covered)


@pytest.mark.slow
def test_sample_qdpx_round_trip_through_the_cli(processed_corpus, tmp_path):
    from textmine.store import open_store

    runner = CliRunner()
    project = tmp_path / "to_code.qdpx"
    result = runner.invoke(
        app,
        [
            "sample",
            "--n",
            "60",
            "--seed",
            "2",
            "--stratify-doc-type",
            "--corpus-dir",
            str(processed_corpus),
            "--out",
            str(project),
        ],
    )
    assert result.exit_code == 0, result.output
    sample_csv = tmp_path / "to_code.sample.csv"
    sample = read_sample(sample_csv)
    assert len(sample) == 60 and set(sample["stratified_by"]) == {"year+doc_type"}
    with open_store(processed_corpus) as store:
        coded = store.coded_sentences()
    decisions = _decisions(sample, coded)
    exported = _code_in_qda_tool(project, tmp_path / "coded.qdpx", decisions)
    validation_csv = tmp_path / "validation.csv"
    result = runner.invoke(
        app,
        [
            "import-qdpx",
            str(exported),
            "--corpus-dir",
            str(processed_corpus),
            "--sample",
            str(sample_csv),
            "--out",
            str(validation_csv),
        ],
    )
    assert result.exit_code == 0, result.output
    validation = read_validation(validation_csv, CODES)
    assert validation["id"].tolist() == sample["id"].tolist()
    flipped = (
        validation[CODES[0]].to_numpy()
        != coded.set_index("sentence_id").loc[validation["id"], CODES[0]].to_numpy()
    )
    assert flipped.sum() == len(range(0, 60, 3))
    out = tmp_path / "evaluation"
    result = runner.invoke(app, ["evaluate", str(validation_csv), "--out", str(out)])
    assert result.exit_code == 0, result.output
    report = pd.read_csv(out / "validation_by_period.csv", dtype={"period": str})
    assert set(report["code"]) == set(CODES) and "all" in set(report["period"])
    assert report[["bias_ci_low", "bias_ci_high"]].notna().all().all()
    result = runner.invoke(
        app,
        [
            "sample",
            "--n",
            "20",
            "--strategy",
            "uncertain",
            "--corpus-dir",
            str(processed_corpus),
            "--out",
            str(tmp_path / "train.csv"),
        ],
    )
    assert result.exit_code == 0, result.output
    assert "cannot correct trends" in result.output


@pytest.mark.slow
def test_run_with_a_validation_sample_writes_corrected_trends(processed_corpus, tmp_path):
    import shutil

    from textmine.run import RunSettings, run_pipeline

    out = tmp_path / "out"
    shutil.copytree(processed_corpus, out)
    runner = CliRunner()
    sample_csv, human_csv = tmp_path / "sample.csv", tmp_path / "human.csv"
    result = runner.invoke(
        app,
        ["sample", "--n", "300", "--seed", "3", "--corpus-dir", str(out), "--out", str(sample_csv)],
    )
    assert result.exit_code == 0, result.output
    result = runner.invoke(
        app, ["code", str(sample_csv), "--out", str(human_csv), "--coder", "rules"]
    )
    assert result.exit_code == 0, result.output

    def run(validation):
        settings = RunSettings(
            paths=[CORPUS],
            out_dir=out,
            coder="rules",
            stages=("ingest", "code", "trends", "export"),
            validation=validation,
        )
        return run_pipeline(settings)

    first = run(human_csv)
    stance = pd.read_csv(out / "stance_trends.csv")
    assert {"share_corrected_collaboration", "n_validation"} <= set(stance.columns)
    assert stance["n_validation"].max() == 300
    assert "nothing new" in " ".join(run(human_csv).notes)  # same sample: up to date
    assert first.outputs_regenerated
    run(None)  # the sample left out: the corrected columns leave the outputs too
    assert "share_corrected_collaboration" not in pd.read_csv(out / "stance_trends.csv").columns
