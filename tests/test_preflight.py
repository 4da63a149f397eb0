"""The input check before a run: a coder is loaded unless the store shows it coded already."""

from __future__ import annotations

import subprocess
import sys

import pytest

import textmine.run.steps as steps
from tests.test_pipeline import SMALL_CORPUS, make_corpus
from textmine.learned.model import ModelFolderError
from textmine.run import RunSettings, run_pipeline
from textmine.run.preflight import check_run_inputs, coded_with_these_files


def test_the_coder_is_loaded_again_only_when_its_files_or_the_store_differ(tmp_path, monkeypatch):
    corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:1])
    settings = RunSettings(
        paths=[corpus], out_dir=tmp_path / "out", stages=("ingest", "code"), workers=1
    )
    assert not coded_with_these_files(settings)  # no store yet
    run_pipeline(settings)
    assert coded_with_these_files(settings)

    def broken(spec):
        raise ModelFolderError(f"cannot load {spec}")

    monkeypatch.setattr(steps, "load_sentence_coder", broken)
    check_run_inputs(settings)  # the same files coded this store: no load
    for other in (
        RunSettings(paths=[corpus], out_dir=tmp_path / "out", coder="rules", workers=1),
        RunSettings(paths=[corpus], out_dir=tmp_path / "elsewhere", workers=1),
    ):
        assert not coded_with_these_files(other)
        with pytest.raises(ModelFolderError, match="cannot load"):
            check_run_inputs(other)


def test_checking_a_coded_store_imports_no_spacy(tmp_path):
    """The quick check hashes files: a run with nothing new does not pay for importing spaCy."""
    corpus = make_corpus(tmp_path / "corpus", files=SMALL_CORPUS[:1])
    out = tmp_path / "out"
    run_pipeline(RunSettings(paths=[corpus], out_dir=out, stages=("ingest", "code"), workers=1))
    script = (
        "import sys\n"
        "from pathlib import Path\n"
        "from textmine.run import RunSettings\n"
        "from textmine.run.preflight import coded_with_these_files\n"
        f"settings = RunSettings(paths=[Path({str(corpus)!r})], out_dir=Path({str(out)!r}))\n"
        "assert coded_with_these_files(settings)\n"
        "print('spacy' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
