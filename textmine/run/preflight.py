"""Checks of a run's inputs before any work; `textmine run` and the flows call the same one."""

from __future__ import annotations

from textmine.run.settings import RunSettings


def check_run_inputs(settings: RunSettings) -> None:
    """Fail before any work when an input of the run is missing or unusable.

    Checks the corpus paths, the codebook, the manifest, the validation sample
    and, when the run codes, the coder (a model folder that cannot be read, or
    one trained with another codebook version, is refused here rather than
    after every document has been read). Raises FileNotFoundError or a
    ValueError (CodebookError, ManifestError, ModelFolderError...) whose
    message names the file and the reason.
    """
    settings.check_inputs()
    if settings.codebook is not None:
        from textmine.codebook import load_codebook

        load_codebook(settings.codebook)
    manifest = settings.resolved_manifest()
    if manifest is not None:
        from textmine.manifest import read_manifest

        read_manifest(manifest)
    if settings.validation is not None:
        from textmine.validation import read_validation

        read_validation(settings.validation)
    if "code" in settings.stages:
        from textmine.run.runner import coder_spec
        from textmine.run.steps import load_sentence_coder

        load_sentence_coder(coder_spec(settings))
