"""Document metadata: the manifest row, else inferred.

Inferred from PDF metadata, the text or the file name; `date_source` says which.
"""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from textmine.columns import DOC_TYPES
from textmine.types import DocumentMeta

MONTHS = {
    name: number
    for number, names in enumerate(
        [
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ],
        start=1,
    )
    for name in names
}
MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
DAY_MONTH_YEAR = re.compile(
    rf"\b(\d{{1,2}})(?:st|nd|rd|th)?[\s_-]+({MONTH})[a-z]*[\s_,-]+((?:19|20)\d\d)\b", re.I
)
MONTH_DAY_YEAR = re.compile(rf"\b({MONTH})[a-z]*\s+(\d{{1,2}}),?\s+((?:19|20)\d\d)\b", re.I)
MONTH_YEAR = re.compile(rf"\b({MONTH})[a-z]*[\s_-]+((?:19|20)\d\d)\b", re.I)
ISO_DATE = re.compile(r"(?<!\d)((?:19|20)\d\d)[-_.](\d\d)(?:[-_.](\d\d))?(?!\d)")
YEAR = re.compile(r"(?<!\d)((?:19|20)\d\d)(?!\d)")
PUBLISHED_CUE = re.compile(
    r"(?:published|publication date|date of publication|posted|first published|updated)\s*(?:on|:)?\s*",
    re.I,
)
BYLINE_DATE = re.compile(r"^by\s.{0,80}?\bon\s+(.{6,30})$", re.I | re.M)
UNINFORMATIVE_TITLE = re.compile(
    r"^(untitled|document\d*|(report )?template|.*template\b.*|microsoft word - .*|.*\.(doc|docx|pdf|exe|indd|qxd)|slide \d+|title|"
    r"adobe photoshop pdf|\d+_?[a-z_]*)$",
    re.I,
)
# Template placeholders left in a PDF's Title: "LA NAME - report - INSPECTION DATE",
# "[School name]", "<title>", "Insert title here", "XXXX".
PLACEHOLDER_WORD = re.compile(r"\b(?:NAME|DATE|TITLE)\b|\bX{3,}\b")
PLACEHOLDER_MARK = re.compile(r"\[[^\]]*\]|<[^>]*>|\binsert\b.{0,20}\bhere\b|\bclick here\b", re.I)
# Headings that name a kind of document, not the document: joined with the heading after them.
GENERIC_HEADING = re.compile(
    r"^(?:school report|report|summary|executive summary|contents|introduction|foreword|"
    r"inspection report|project template for|briefing|research report|overview)$",
    re.I,
)
# A heading-like paragraph is at most this long; a longer one (or a full sentence) is prose.
TITLE_MAX_CHARS = 200
PROSE_WORDS = 12
INSPECTION_CUES = re.compile(
    r"\binspection (?:report|of|dates?|judgements?)\b|\blead inspector\b|"
    r"\b(?:his|her) majesty['\u2019]s inspector|\bschool report\b|\boverall effectiveness\b",
    re.I,
)
INSPECTORATES = re.compile(
    r"\bofsted\b|\bestyn\b|\beducation scotland\b|\bcare quality commission\b", re.I
)
DOC_TYPE_RULES = [
    (
        "parliamentary_report",
        re.compile(
            r"\bhouse of (?:commons|lords)\b|\bselect committee\b|\bhc \d+\b|\bhansard\b", re.I
        ),
    ),
    (
        "policy_paper",
        re.compile(
            r"\bdepartment for education\b|\bwhite paper\b|\bgreen paper\b|\bpolicy paper\b|"
            r"\bstatutory guidance\b",
            re.I,
        ),
    ),
    (
        "journal_article",
        re.compile(r"\babstract\b.*\breferences\b|\bdoi:\s*10\.|\bjournal of\b", re.I | re.S),
    ),
    ("blog_post", re.compile(r"\bblog\b", re.I)),
    ("news_article", re.compile(r"\bnews\b|\bcorrespondent\b|\breporter\b|\bkeep reading\b", re.I)),
    ("magazine_article", re.compile(r"\bmagazine\b", re.I)),
]
PUBLISHER_RULES = [
    ("Department for Education", re.compile(r"\bdepartment for education\b", re.I)),
    ("House of Commons", re.compile(r"\bhouse of commons\b", re.I)),
]


def iso(year: int, month: int | None = None, day: int | None = None) -> str:
    """ISO date as precise as known; "" when the parts are not a real date."""
    try:
        if day and month:
            return date(year, month, day).isoformat()
    except ValueError:
        return ""
    if month:
        return f"{year:04d}-{month:02d}" if 1 <= month <= 12 else ""
    return f"{year:04d}"


def _plausible(value: str) -> bool:
    return bool(value) and 1900 <= int(value[:4]) <= date.today().year + 1


def date_in_text(text: str) -> str:
    """First explicit date in `text` (day month year, month day year, ISO), else ""."""
    candidates = []
    for pattern, parts in (
        (DAY_MONTH_YEAR, lambda m: (int(m[3]), MONTHS[m[2].lower()], int(m[1]))),
        (MONTH_DAY_YEAR, lambda m: (int(m[3]), MONTHS[m[1].lower()], int(m[2]))),
        (ISO_DATE, lambda m: (int(m[1]), int(m[2]), int(m[3]) if m[3] else None)),
    ):
        for match in pattern.finditer(text):
            value = iso(*parts(match))
            if _plausible(value):
                candidates.append((match.start(), value))
                break
    return min(candidates)[1] if candidates else ""


def date_from_text(text: str) -> str:
    """Publication date stated near the top of a document ("Published: 3 May 2019", bylines)."""
    head = text[:3000]
    for match in PUBLISHED_CUE.finditer(head):
        value = date_in_text(head[match.end() : match.end() + 40])
        if value:
            return value
    byline = BYLINE_DATE.search(head)
    if byline:
        return date_in_text(byline.group(1))
    return ""


def date_from_filename(path: str | Path) -> str:
    """Date in a file name: 2014-03-20, 19_november_2021, november-2016, 2016-11, a leading year."""
    name = Path(path).stem.replace("_", " ")
    for finder in (date_in_text, _month_year, _year_only):
        value = finder(name)
        if value:
            return value
    return ""


def _month_year(text: str) -> str:
    match = MONTH_YEAR.search(text)
    if not match:
        return ""
    value = iso(int(match[2]), MONTHS[match[1].lower()])
    return value if _plausible(value) else ""


def _year_only(text: str) -> str:
    match = YEAR.search(text)
    return match[1] if match and _plausible(match[1]) else ""


def is_placeholder_title(title: str) -> bool:
    """True for a template's placeholder title ("LA NAME - report - INSPECTION DATE", "[Title]")."""
    mixed_case = bool(re.search(r"[a-z]", title))
    return bool(PLACEHOLDER_MARK.search(title) or (mixed_case and PLACEHOLDER_WORD.search(title)))


def title_from_pdf(metadata: dict[str, str]) -> str:
    """The Title of the PDF information dictionary, unless it says nothing (a template name or placeholder)."""
    title = re.sub(r"\s+", " ", metadata.get("Title", "")).strip()
    if title.lower().startswith("microsoft word - "):
        title = title[len("microsoft word - ") :]
    if not title or UNINFORMATIVE_TITLE.match(title) or is_placeholder_title(title):
        return ""
    return title


def _is_heading(paragraph: str) -> bool:
    """A short line that can be (part of) a title: not prose, not a list item or a fragment."""
    words = paragraph.split()
    return (
        2 <= len(paragraph) <= TITLE_MAX_CHARS
        and bool(re.search(r"[A-Za-z]{3}", paragraph))
        and not paragraph[:1].islower()
        and not paragraph.endswith((",", ";"))
        and not (paragraph.endswith((".", "!")) and len(words) >= PROSE_WORDS)
        and not is_placeholder_title(paragraph)
    )


def title_from_text(paragraphs: list[str]) -> str:
    """The document's opening heading, from its first paragraphs; "" when it opens with prose.

    Headings stop at the first prose paragraph, so a list item or a sentence
    further down is never taken. A heading that only names a kind of document
    ("School report", "Project template for:") is joined with the heading after it.
    """
    headings: list[str] = []
    for paragraph in paragraphs[:5]:
        candidate = re.sub(r"\s+", " ", paragraph).strip()
        if not _is_heading(candidate):
            break
        headings.append(candidate)
    for position, heading in enumerate(headings):
        bare = heading.rstrip(".: ")
        if GENERIC_HEADING.match(bare) or heading.endswith(":"):
            if position + 1 < len(headings):
                return f"{bare}: {headings[position + 1].rstrip('.:')}"
            continue
        if len(bare) >= 8:
            return bare
    return ""


LEADING_DATE = re.compile(r"^(?:19|20)\d\d(?:[-_.]\d\d){0,2}[-_ ]+(?=\S)")


def title_from_filename(path: str | Path) -> str:
    """A title made from the file name: separators to spaces, a leading date dropped, first letter capital.

    "2013_commons-education-committee_summary.txt" -> "Commons education committee summary"
    (the date is `published`'s business).
    """
    stem = LEADING_DATE.sub("", Path(path).stem)
    stem = re.sub(r"\s+", " ", re.sub(r"[_-]+", " ", stem)).strip()
    return stem[:1].upper() + stem[1:]


def infer_doc_type(text: str, path: str | Path = "") -> str:
    """doc_type from cues in the first pages and the path; "unknown" when nothing matches.

    An inspection report names an inspectorate and has the wording of one
    ("Inspection dates", "Lead inspector", "Overall effectiveness", ...).
    """
    head = text[:6000] + "\n" + str(path).replace("_", " ").replace("-", " ")
    cues = {cue.lower() for cue in INSPECTION_CUES.findall(head)}
    if len(cues) >= 2 or (cues and INSPECTORATES.search(text)):
        return "inspection_report"
    for doc_type, pattern in DOC_TYPE_RULES:
        if pattern.search(head):
            return doc_type
    return "unknown"


def infer_publisher(text: str, path: str | Path = "", doc_type: str = "") -> str:
    """Publisher named in the first page: the inspectorate of an inspection report, a few bodies."""
    head = text[:3000] + "\n" + str(path)
    if doc_type == "inspection_report":
        match = INSPECTORATES.search(text)
        if match:
            return {"ofsted": "Ofsted", "estyn": "Estyn"}.get(
                match.group(0).lower(), match.group(0)
            )
    for name, pattern in PUBLISHER_RULES:
        if pattern.search(head):
            return name
    return ""


def choose_date(candidates: list[tuple[str, str]]) -> tuple[str, str]:
    """(published, date_source) from (ISO date, source) candidates, most trusted first.

    The most trusted plausible date wins; a less trusted one that is more precise
    and falls inside it refines it ("2016-11" from the file name and the PDF's
    creation date "2016-11-03" give "2016-11-03", source pdf_metadata), while
    one that disagrees is ignored (a PDF made or re-saved after publication).
    ("", "none") when no candidate is usable.
    """
    usable = [(value, source) for value, source in candidates if value and _plausible(value)]
    if not usable:
        return "", "none"
    value, source = usable[0]
    for other, other_source in usable[1:]:
        if len(other) > len(value) and other.startswith(value):
            value, source = other, other_source
    return value, source


def build_metadata(
    path: str | Path,
    *,
    raw_text: str,
    paragraphs: list[str],
    manifest_row: dict | None = None,
    pdf_metadata: dict[str, str] | None = None,
    embedded_title: str = "",
    embedded_publisher: str = "",
    embedded_date: str = "",
    embedded_date_source: str = "text",
) -> DocumentMeta:
    """Metadata for one document; manifest values win, the rest is inferred.

    `embedded_title`/`embedded_date` are what the file itself declares (DOCX core
    properties, HTML meta tags); for PDFs pass `pdf_metadata`. The date is the
    most trusted one found (a publication line in the text or the page's date
    metadata, then the file name, then the PDF's creation date), refined by a
    more precise one that agrees with it (`choose_date`); `date_source` names it.
    """
    row = {k: (str(v).strip() if v is not None else "") for k, v in (manifest_row or {}).items()}
    row = {k: ("" if v.lower() == "nan" else v) for k, v in row.items()}
    meta = DocumentMeta(licence=row.get("licence", ""), source=row.get("source", ""))

    pdf_title = title_from_pdf(pdf_metadata or {})
    if is_placeholder_title(embedded_title):
        embedded_title = ""
    meta.title = (
        row.get("title")
        or embedded_title
        or pdf_title
        or title_from_text(paragraphs)
        or title_from_filename(path)
    )
    doc_type = row.get("doc_type", "")
    meta.doc_type = doc_type if doc_type in DOC_TYPES else infer_doc_type(raw_text, path)
    meta.publisher = (
        row.get("publisher") or embedded_publisher or infer_publisher(raw_text, path, meta.doc_type)
    )

    if row.get("published"):
        meta.published, meta.date_source = row["published"], "manifest"
        return meta
    from textmine.ingest.pdf import pdf_date

    candidates = [
        (embedded_date[:10] if embedded_date else "", embedded_date_source),
        (date_from_text(raw_text), "text"),
        (date_from_filename(path), "filename"),
        (pdf_date((pdf_metadata or {}).get("CreationDate", "")), "pdf_metadata"),
    ]
    meta.published, meta.date_source = choose_date(candidates)
    return meta
