"""Column names shared by every stage: the contract between stages and outputs.

Stages pass pandas DataFrames with exactly these columns (in this order) or
dataclasses that convert to them. Change a name here and every writer follows.
"""

# documents.csv -------------------------------------------------------------
DOC_ID = "doc_id"  # first 16 hex digits of the SHA-256 of the file's bytes
DOCUMENT_COLUMNS = [
    DOC_ID,
    "path",
    "format",
    "pages",
    "title",
    "publisher",
    "doc_type",
    "published",  # ISO date (YYYY, YYYY-MM or YYYY-MM-DD as precise as known)
    "date_source",  # manifest | pdf_metadata | text | filename | none
    "licence",
    "source",
    "n_sentences",
    "duplicate_of",  # doc_id of the first identical file, else empty
]

DOC_TYPES = [
    "inspection_report",
    "policy_paper",
    "parliamentary_report",
    "news_article",
    "blog_post",
    "journal_article",
    "magazine_article",
    "unknown",
]
DATE_SOURCES = ["manifest", "pdf_metadata", "text", "filename", "none"]

# sentences.csv -------------------------------------------------------------
SENTENCE_COLUMNS = [
    "sentence_id",  # f"{doc_id}-{sentence_index:05d}"
    DOC_ID,
    "path",
    "page",  # 1-based page of the paragraph the sentence starts in
    "paragraph_index",  # 0-based, within the document
    "sentence_index",  # 0-based, within the document
    "start_char",  # offsets into the document's clean text, end exclusive
    "end_char",
    "text",
    "paragraph_number",  # the paragraph's own number ("29", "2.1") taken out of the text; "" when none
    "ocr",  # 1 when the sentence's page was read by OCR (an image without a text layer), else 0
]

# coding ----------------------------------------------------------------------
# The ten standard codes every codebook must define (textmine.codebook checks
# them). Everything else takes its list of codes from the codebook
# (`Codebook.code_columns`), so a code a researcher adds flows through.
STANCE_CODES = ["competition", "collaboration"]
PARTNERSHIP_CODES = [
    "academy_trust",
    "federation",
    "teaching_school",
    "system_leader",
    "local_partnership",
    "cross_sector",
    "faith",
    "network",
]
CODE_COLUMNS = STANCE_CODES + PARTNERSHIP_CODES
EVIDENCE = "evidence"  # JSON: {code: [{"text": ..., "start": ..., "end": ...}]}
CODEBOOK_VERSION = "codebook_version"  # content hash of the codebook file
TEXTMINE_VERSION = "textmine_version"
MODEL_VERSION = "model_version"  # the coder: "rules", or the hash of a learned model's files
PROBABILITY_PREFIX = "p_"  # p_<code>: the coder's probability that the code applies


def probability_column(code: str) -> str:
    """The column holding the coder's probability for `code`."""
    return f"{PROBABILITY_PREFIX}{code}"


def coded_sentence_columns(codes: list[str], with_probabilities: bool = False) -> list[str]:
    """Columns of coded sentences for a codebook's codes (in codebook order)."""
    columns = [*SENTENCE_COLUMNS, *codes]
    if with_probabilities:
        columns += [probability_column(c) for c in codes]
    return [*columns, EVIDENCE, CODEBOOK_VERSION, MODEL_VERSION, TEXTMINE_VERSION]


# Coded sentences with the ten standard codes (test fixtures; outputs use the codebook's).
CODED_SENTENCE_COLUMNS = coded_sentence_columns(CODE_COLUMNS)

# failures.csv ----------------------------------------------------------------
FAILURE_COLUMNS = [
    "path",
    "reason",
    "message",
    "duplicate_of",
]  # duplicate_of: doc_id of a failing twin
FAILURE_REASONS = {
    "empty_file": "the file has no bytes",
    "encrypted": "the PDF is encrypted and no (or a wrong) password was given",
    "malformed": "the file could not be parsed, even after repair",
    "needs_ocr": "the PDF has no text layer (scanned); OCR it first (e.g. `ocrmypdf in.pdf out.pdf`) and add the result",
    "unsupported_format": "the bytes are of a format textmine does not read",
    "unreadable_encoding": "the text could not be decoded in any likely encoding",
    "no_text": "the document was read but holds no usable text",
    "not_found": "the path does not exist or cannot be read",
    "too_large": "the file is past a size limit (bytes, inflated DOCX parts or characters of text); raise the limit (TEXTMINE_MAX_* variables) to read it",
    "timeout": "reading took longer than the time budget per document (TEXTMINE_READ_SECONDS)",
    "read_error": "an unexpected error while reading, twice; not a verdict on the file, tried again on the next run",
    "symlink_skipped": "a symbolic link found in a folder; not followed (TEXTMINE_FOLLOW_SYMLINKS=1 follows links)",
    "broken_symlink": "a symbolic link whose target does not exist",
    "symlink_loop": "a symbolic link that leads back to itself or to a folder already walked",
    "special_file": "a named pipe, socket or device, not a regular file; not read",
    "not_a_document": "a data or code file (.csv, .json, manifest.csv, ...) in a folder; not read",
    "hidden": "a hidden file or folder (name starts with a dot); not read",
    "coding_error": "read, but the coder raised an error on the document's sentences; they stay uncoded (0 for every code in documents.csv, in no coded output) and are coded again on the next run",
}
