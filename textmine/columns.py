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
]

# coding ----------------------------------------------------------------------
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

CODED_SENTENCE_COLUMNS = SENTENCE_COLUMNS + CODE_COLUMNS + [
    EVIDENCE,
    CODEBOOK_VERSION,
    TEXTMINE_VERSION,
]

# failures.csv ----------------------------------------------------------------
FAILURE_COLUMNS = ["path", "reason", "message"]
FAILURE_REASONS = {
    "empty_file": "the file has no bytes",
    "encrypted": "the PDF is encrypted and no (or a wrong) password was given",
    "malformed": "the file could not be parsed, even after repair",
    "needs_ocr": "the PDF has no text layer (scanned); OCR it first (e.g. `ocrmypdf in.pdf out.pdf`) and add the result",
    "unsupported_format": "the bytes are of a format textmine does not read",
    "unreadable_encoding": "the text could not be decoded in any likely encoding",
    "no_text": "the document was read but holds no usable text",
    "not_found": "the path does not exist or cannot be read",
}
