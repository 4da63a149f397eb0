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
    if "code" in settings.stages and not coded_with_these_files(settings):
        from textmine.run.runner import coder_spec
        from textmine.run.steps import load_sentence_coder

        load_sentence_coder(coder_spec(settings))


def coded_with_these_files(settings: RunSettings) -> bool:
    """True when the output folder's store is coded with this codebook and model, byte for byte.

    The coding key hashes the codebook and model files, so they loaded and
    coded before: loading them again here (~1 s, most of a run with nothing
    new) would tell nothing new.
    """
    from textmine.run.runner import coder_spec, quick_coding_key
    from textmine.store import open_store, store_path

    if not store_path(settings.out_dir).is_file():
        return False
    quick = quick_coding_key(coder_spec(settings))
    if quick is None:
        return False
    store = open_store(settings.out_dir, read_only=True)
    try:
        current = store.coding
    finally:
        store.close()
    return current is not None and current.key == quick
