"""Clean extracted text: artefacts, running lines, hyphenation, wrapped lines.

Character artefacts, running headers and footers, page numbers, hyphenation
across line breaks, hard-wrapped lines into paragraphs.

Pure functions on strings and lists of lines.
"""

from __future__ import annotations

import functools
import gzip
import json
import math
import re
import unicodedata
from collections import Counter
from collections.abc import Container
from pathlib import Path

# Glyphs that start list items: bullets, squares, dashes, and private-use
# symbols (Wingdings/Symbol bullets come out of PDFium as U+F0xx).
BULLET_CHARS = "\u2022\u25aa\u25ab\u25a0\u25a1\u25fc\u25fb\u25cf\u25e6\u2023\u2043\u2219\u00b7\u25b6\u25ba\u27a2\u2713\u2714\u2015\u2014\u2013*-"
PRIVATE_USE = re.compile("[\ue000-\uf8ff]")
LEADING_PRIVATE_USE = re.compile("(?m)^([ \t]*)[\ue000-\uf8ff]+")
BULLET_LINE = re.compile(rf"^\s*(?:[{re.escape(BULLET_CHARS)}]|[\ue000-\uf8ff])+\s+")
ENUMERATED_LINE = re.compile(
    r"^\s*(?:(?:\(?\d{1,3}[.)]|\(?[a-z][.)]|\(?(?:i|ii|iii|iv|v|vi|vii|viii|ix|x)[.)])\s+\S"
    # a paragraph number glued to its first word by the PDF: "10.When children ..."
    r"|\d{1,3}\.(?=[A-Z][a-z]))"
)
FOOTNOTE_LINE = re.compile(r"^\s*\d{1,3}\s?[A-Z](?:[a-z]|\s)")
MONTHS = [
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
    "jan",
    "feb",
    "mar",
    "apr",
    "jun",
    "jul",
    "aug",
    "sep",
    "sept",
    "oct",
    "nov",
    "dec",
]
FOOTNOTE_NOT_MONTH = re.compile(r"^\s*\d{1,3}\s?(" + "|".join(MONTHS) + r")\b", re.I)
PAGE_NUMBER = re.compile(
    r"^\s*(?:[-\u2013\u2014|]\s*)?(?:page\s*)?(?:\d{1,4}|[ivxlc]{1,6})(?:\s*(?:of|/)\s*\d{1,4})?(?:\s*[-\u2013\u2014|])?\s*$",
    re.I,
)
TERMINAL = re.compile(r"[.!?:;][\"'\u2019\u201d)\]]*$")
SPACES = re.compile(r"[ \t\u00a0\u2000-\u200a\u202f\u205f\u3000]+")
# A space other than " ": with no such character and no "  ", SPACES changes nothing.
ODD_SPACE = re.compile(r"[\t\u00a0\u2000-\u200a\u202f\u205f\u3000]")
ZERO_WIDTH = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")
# Lone surrogates (from broken UTF-16 in a file) cannot be written as UTF-8.
SURROGATE = re.compile("[\ud800-\udfff]")
LIGATURES = {"\ufb00": "ff", "\ufb01": "fi", "\ufb02": "fl", "\ufb03": "ffi", "\ufb04": "ffl"}
HYPHEN_AT_END = re.compile(r"(\w+)[-\u00ad]$")
FIRST_WORD = re.compile(r"^(\w+)")
HAS_LETTER = re.compile(r"[^\W\d_]")
CONNECTOR_END = re.compile(
    r"(?:\b(?:and|or|of|the|a|an|to|in|for|with|on|by|at|from|that|which|as|is|are|be)|[,\u2013\u2014-])$",
    re.I,
)

# A line shorter than this share of the typical line, followed by a capital, ends
# its paragraph (a heading); inside a multi-line paragraph the share is smaller.
HEADING_SHARE = 0.7
HEADING_SHARE_IN_PARAGRAPH = 0.45
# Zones searched for running headers and footers, in non-empty lines.
HEADER_FOOTER_LINES = 4
# A zone line repeated (digits ignored) on at least this share of pages is a running line.
RUNNING_LINE_SHARE = 0.4
# A short line anywhere on more than this share of pages (and on 3+ pages) is a running line.
REPEATED_ANYWHERE_SHARE = 0.5


# Tables of contents. An entry ends in its page number, after spaces or dot leaders
# ("Executive summary 6", "Introduction ........ 4"); a heading names the block.
CONTENTS_HEADING = re.compile(r"^(?:table of )?contents?(?: page)?(?:\s+\d{1,3})?$", re.I)
CONTENTS_ENTRY = re.compile(
    r"^(?P<title>.*[^\W\d_].*?)(?:\s*(?:\.\s*){3,}\s*|\s+)(?P<page>\d{1,3})$"
)
DOT_LEADER_ENTRY = re.compile(r".*?[^\W\d_].*?(?:\.\s*){4,}\d{1,4}")
# A contents entry is at most this long; longer lines ending in a number are prose.
CONTENTS_LINE_CHARS = 150
# Contents entries point at most this many pages past the document's last page.
CONTENTS_PAGE_SLACK = 5


@functools.lru_cache(maxsize=1)
def english_words() -> frozenset[str]:
    """Lower-case English word forms from spacy-lookups-data's lemma table."""
    import spacy_lookups_data

    table = Path(spacy_lookups_data.__file__).parent / "data" / "en_lemma_lookup.json.gz"
    with gzip.open(table, "rt", encoding="utf-8") as handle:
        lookup = json.load(handle)
    return frozenset(word.lower() for pair in lookup.items() for word in pair)


def normalize_characters(text: str) -> str:
    r"""Line breaks to \n, odd spaces to spaces, ligatures expanded, zero-width chars dropped."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    # PDFium marks a word broken at a line end with U+FFFE and drops the break.
    text = text.replace("\ufffe", "-\n").replace("\u00ad\n", "-\n").replace("\u00ad", "")
    text = text.replace("\u2011", "-").replace("\x0c", "\n")
    for ligature, letters in LIGATURES.items():
        text = text.replace(ligature, letters)
    text = ZERO_WIDTH.sub("", text)
    text = SURROGATE.sub("\ufffd", text)
    if PRIVATE_USE.search(text):
        # private-use symbols (Wingdings/Symbol) at a line start are bullets; elsewhere noise
        text = PRIVATE_USE.sub("", LEADING_PRIVATE_USE.sub("\u2022 ", text))
    if "  " in text or ODD_SPACE.search(text):
        text = SPACES.sub(" ", text)
    return text


def split_lines(text: str) -> list[str]:
    """Lines with surrounding spaces removed (empty lines kept as "")."""
    return [line.strip() for line in text.split("\n")]


DIGITS = re.compile(r"\d+")


def line_key(line: str) -> str:
    """Comparison key for running lines: lower case, digits and spaces folded."""
    return " ".join(DIGITS.sub("#", line.lower()).split())


# Every character for which str.isspace() is true but " " and "\n" (a test checks the list).
OTHER_WHITESPACE = re.compile(
    "[\t\x0b\x0c\r\x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
)


def _even_spaces(text: str) -> bool:
    """True when every line of `text` is unchanged by " ".join(line.split())."""
    return not (
        "  " in text
        or " \n" in text
        or "\n " in text
        or text.startswith(" ")
        or text.endswith(" ")
        or OTHER_WHITESPACE.search(text)
    )


def _line_keys(lines: list[str]) -> list[str]:
    """line_key of each line up to 120 characters long, "" for the others.

    The page is lower-cased and its digits folded at once; a line is split and
    joined on its own only where the page holds whitespace that would change.
    """
    page = "\n".join(lines)
    folded = DIGITS.sub("#", page.lower())
    keys = folded.split("\n")
    if len(keys) != len(lines) or not _even_spaces(folded):
        return [line_key(line) if line and len(line) <= 120 else "" for line in lines]
    return [key if line and len(line) <= 120 else "" for line, key in zip(lines, keys, strict=True)]


def is_page_number(line: str) -> bool:
    """True for a bare page number line ("3", "Page 3 of 12", "- iv -")."""
    return bool(PAGE_NUMBER.match(line))


def _zone_indices(lines: list[str]) -> list[int]:
    filled = [i for i, line in enumerate(lines) if line]
    if len(filled) <= 2 * HEADER_FOOTER_LINES:
        return filled
    return filled[:HEADER_FOOTER_LINES] + filled[-HEADER_FOOTER_LINES:]


def remove_running_lines(pages: list[list[str]]) -> list[list[str]]:
    """Drop running headers/footers and page numbers from each page's lines.

    A line in the top or bottom zone of a page is dropped when the same line
    (digits ignored) is in a zone on at least RUNNING_LINE_SHARE of the pages
    (and on 2+ pages), or when it is a bare page number ("3", "Page 3 of 12").
    Short lines repeated anywhere on most pages (3+) are dropped too.
    """
    n_pages = len(pages)
    zones = [_zone_indices(lines) for lines in pages]
    keys = [_line_keys(lines) for lines in pages]
    zone_counts: Counter[str] = Counter()
    any_counts: Counter[str] = Counter()
    for page_keys, zone in zip(keys, zones, strict=True):
        zone_counts.update({page_keys[i] for i in zone if page_keys[i]})
        any_counts.update(set(page_keys))
    zone_threshold = max(2, math.ceil(RUNNING_LINE_SHARE * n_pages))
    anywhere_threshold = max(3, math.floor(REPEATED_ANYWHERE_SHARE * n_pages) + 1)
    repeated = {
        key
        for key, count in any_counts.items()
        if key and count >= anywhere_threshold and re.search(r"[a-z]{2}", key)
    }
    cleaned = []
    for lines, page_keys, zone in zip(pages, keys, zones, strict=True):
        drop = set()
        for i in zone:
            if is_page_number(lines[i]) or (
                n_pages > 1 and page_keys[i] and zone_counts[page_keys[i]] >= zone_threshold
            ):
                drop.add(i)
        if repeated:
            drop.update(i for i, key in enumerate(page_keys) if key in repeated)
        cleaned.append([line for i, line in enumerate(lines) if i not in drop])
    return cleaned


def contents_page_number(line: str) -> int | None:
    """The page number a table-of-contents entry points to ("Executive summary 6" -> 6), else None."""
    if len(line) > CONTENTS_LINE_CHARS or TERMINAL.search(line):
        return None
    match = CONTENTS_ENTRY.match(line)
    return int(match["page"]) if match else None


def remove_contents(pages: list[list[str]]) -> list[list[str]]:
    """Each page's lines without its table of contents (see `contents_lines`)."""
    return [
        [line for i, line in enumerate(lines) if i not in drop]
        for lines, drop in zip(pages, contents_lines(pages), strict=True)
    ]


def contents_lines(pages: list[list[str]]) -> list[set[int]]:
    """Per page, the indices of the lines that make up a table of contents.

    A contents block starts at a "Contents" heading and runs over the entries
    after it (a title ending in a page number, the lines of a title wrapped
    before its number included) while page numbers do not go down and stay
    within the document; it ends at the first other line. A block that reaches
    the end of its page goes on at the top of the next page while its entries
    do. Lines with dot leaders ("Introduction ....... 4") are entries wherever
    they are.
    """
    max_page = len(pages) + CONTENTS_PAGE_SLACK if len(pages) > 1 else None
    found: list[set[int]] = []
    carried: int | None = None  # last page number of a block that ran to the end of the page before
    for lines in pages:
        drop = {i for i, line in enumerate(lines) if _has_dot_leader(line)}
        starts: list[tuple[int, int | None]] = [
            (i + 1, None) for i, line in enumerate(lines) if CONTENTS_HEADING.match(line)
        ]
        if carried is not None:
            starts.insert(0, (0, carried))
        carried = None
        for first, floor in starts:
            end, last, entries = _contents_block(lines, first, floor, max_page)
            if entries < (1 if floor is not None else 2):
                continue
            drop.update(range(first - (floor is None), end))
            if not any(lines[end:]):
                carried = last
        found.append(drop)
    return found


def _has_dot_leader(line: str) -> bool:
    """A contents entry with dot leaders; the substring test keeps the regex off ordinary lines."""
    return (
        len(line) <= 2 * CONTENTS_LINE_CHARS
        and ("...." in line or ". . . ." in line)
        and bool(DOT_LEADER_ENTRY.fullmatch(line))
    )


def _contents_block(
    lines: list[str], first: int, floor: int | None, max_page: int | None
) -> tuple[int, int | None, int]:
    """(index after the block's last entry, its page number, number of entries) from `first` on."""
    last, entries, end, wrapped = floor, 0, first, 0
    for index in range(first, len(lines)):
        line = lines[index]
        if not line:
            continue
        number = contents_page_number(line)
        if (
            number is not None
            and (last is None or number >= last)
            and (max_page is None or number <= max_page)
        ):
            last, entries, end, wrapped = number, entries + 1, index + 1, 0
        elif (
            number is None
            and wrapped < 2
            and not TERMINAL.search(line)
            and len(line) <= CONTENTS_LINE_CHARS
        ):
            wrapped += 1  # part of a title whose page number is on a later line
        else:
            break
    return end, last, entries


def strip_bullet(line: str) -> tuple[str, bool]:
    """Remove a leading bullet glyph; return (line, had_bullet)."""
    match = BULLET_LINE.match(line)
    if match and len(line) > match.end():
        return line[match.end() :], True
    return line, False


def join_hyphenated(left: str, right: str, document_words: Container[str]) -> str:
    """Join `left` (ending in a hyphen at a line break) with `right`.

    The hyphen is dropped when the joined word is an English word or occurs in
    the document unhyphenated ("inter-" + "vention"), and kept for compounds
    ("child-" + "centred", "multi-" + "agency").
    """
    end = HYPHEN_AT_END.search(left)
    start = FIRST_WORD.match(right)
    if end and start and right[0].islower():
        joined = (end.group(1) + start.group(1)).lower()
        if joined in document_words or (
            joined in english_words()
            and (end.group(1) + "-" + start.group(1)).lower() not in document_words
        ):
            return left[:-1] + right
    return left + right


def join_lines(left: str, right: str, document_words: Container[str]) -> str:
    """Join two wrapped lines of one paragraph."""
    if not left:
        return right
    if left.endswith(("-", "\u00ad")) and len(left) > 1 and left[-2].isalnum():
        return join_hyphenated(left, right, document_words)
    if (
        left.endswith(("\u2013", "/"))
        and len(left) > 1
        and left[-2].isalnum()
        and right[:1].isalnum()
    ):
        return left + right
    return left + " " + right


def is_wrapped(lines: list[str]) -> bool:
    """True when lines look hard-wrapped (most lines short, of similar length)."""
    lengths = sorted(len(line) for line in lines if line)
    if len(lengths) < 5:
        return False
    return lengths[int(0.9 * (len(lengths) - 1))] <= 130 and lengths[len(lengths) // 2] >= 30


def _breaks_paragraph(
    left: str, right: str, width: int, left_alone: bool = True, in_list_item: bool = False
) -> bool:
    if not left or not right:
        return True
    if BULLET_LINE.match(right) or ENUMERATED_LINE.match(right):
        return True
    if (
        FOOTNOTE_LINE.match(right)
        and not FOOTNOTE_NOT_MONTH.match(right)
        and not left.endswith(",")
    ):
        return True
    if TERMINAL.search(left):
        if in_list_item and right[:1].isupper():
            return True
        return len(left) < 0.8 * width or (right[:1].isupper() and len(left) < 0.9 * width)
    starts_upper = right[:1].isupper() or right[:1].isdigit()
    # `left` is a heading or a table cell: short, and shorter still inside a paragraph
    short = len(left) < (HEADING_SHARE if left_alone else HEADING_SHARE_IN_PARAGRAPH) * width
    return bool(starts_upper and short and not CONNECTOR_END.search(left))


def lines_to_paragraphs(
    lines: list[str], document_words: Container[str] = frozenset(), *, wrapped: bool | None = None
) -> list[str]:
    """Group lines into paragraphs.

    Empty lines always separate paragraphs; bullets and numbered items start one.
    Hard-wrapped lines (`wrapped`, detected when None) are joined into
    paragraphs, repairing hyphenation; otherwise every line is a paragraph.
    """
    if wrapped is None:
        wrapped = is_wrapped(lines)
    lengths = sorted(len(line.rstrip()) for line in lines if line)
    # Typical full line: the upper quartile (wider footnotes or tables do not count much).
    width = lengths[int(0.75 * (len(lengths) - 1))] if lengths else 0
    paragraphs: list[str] = []
    current = ""
    previous = ""
    current_lines = 0
    in_item = False
    for raw in lines:
        line, bullet = strip_bullet(raw) if raw else ("", False)
        line = line.strip()
        if not line:
            if current:
                paragraphs.append(current)
            current, previous, current_lines = "", "", 0
            continue
        if current and (
            not wrapped or _breaks_paragraph(previous, raw, width, current_lines == 1, in_item)
        ):
            paragraphs.append(current)
            current, current_lines = "", 0
        if not current:
            in_item = bullet  # bulleted items rarely run past one sentence; numbered paragraphs do
        current = join_lines(current, line, document_words) if current else line
        current_lines += 1
        previous = raw
    if current:
        paragraphs.append(current)
    return [p.strip() for p in paragraphs if HAS_LETTER.search(p)]


def document_vocabulary(text: str) -> str:
    """The document in lower case, for `word in vocabulary` tests.

    A substring test, far cheaper than building a word set.
    """
    return text.lower()


def starts_with_list_item(lines: list[str]) -> bool:
    """True when the first non-empty line is a bullet or numbered item."""
    first = next((line for line in lines if line), "")
    return bool(BULLET_LINE.match(first) or ENUMERATED_LINE.match(first))


def is_footnote(paragraph: str) -> bool:
    """True for a paragraph that starts like a footnote ("12 See ...", not "12 May")."""
    return bool(FOOTNOTE_LINE.match(paragraph)) and not FOOTNOTE_NOT_MONTH.match(paragraph)


def ends_sentence(paragraph: str) -> bool:
    """True when the paragraph ends with sentence punctuation."""
    return bool(TERMINAL.search(paragraph))


def nfc(text: str) -> str:
    """Unicode NFC normal form."""
    return unicodedata.normalize("NFC", text)


def merge_across_pages(
    pages: list[list[str]],
    document_words: Container[str] = frozenset(),
    starts_list_item: list[bool] | None = None,
) -> list[tuple[int, str]]:
    """Flatten per-page paragraphs to (page, paragraph), joining page-broken ones.

    A paragraph that runs over a page break is joined when it ends mid-sentence
    and the next page's first
    paragraph (footnotes skipped) starts in lower case or the break is in a
    hyphenated word. The joined paragraph keeps the page it started on.
    """
    merged: list[tuple[int, str]] = []
    for number, paragraphs in enumerate(pages, start=1):
        paragraphs = list(paragraphs)
        item = bool(starts_list_item and starts_list_item[number - 1])
        target = len(merged) - 1
        while target > 0 and merged[target][0] == number - 1 and is_footnote(merged[target][1]):
            target -= 1
        first = next((i for i, p in enumerate(paragraphs[:10]) if not is_footnote(p)), None)
        if merged and first is not None and not (item and first == 0):
            page, previous = merged[target]
            candidate = paragraphs[first]
            if (
                page == number - 1
                and not ends_sentence(previous)
                and (candidate[:1].islower() or previous.endswith("-"))
            ):
                merged[target] = (page, join_lines(previous, candidate, document_words))
                del paragraphs[first]
        merged.extend((number, paragraph) for paragraph in paragraphs)
    return merged
