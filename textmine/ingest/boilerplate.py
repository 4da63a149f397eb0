"""Web boilerplate inside text documents, found line by line.

Menus, close buttons, breadcrumbs,
mastheads, bylines, paywalls with their subscription lists, copyright footers.

Rules work on lines (before paragraphs are formed) and say why a line went.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from textmine.ingest.clean import BULLET_LINE

NAV_WORDS = (
    r"(?:x|\u00d7|\u2715)?\s*close|menu|main menu|open menu|close menu|toggle navigation|navigation|"
    r"home|homepage|search|search this site|skip to (?:main )?content|skip navigation|sign in|sign up|"
    r"log ?in|log ?out|register|subscribe|subscribe now|my account|account|"
    r"share|share this|share this (?:article|page|post)|share on (?:facebook|twitter|x|linkedin)|"
    r"facebook|twitter|linkedin|whatsapp|email|e-mail|tweet|print|print this page|copy link|"
    r"back to top|top|next|previous|next post|previous post|read more|more|related|related articles|"
    r"related posts|you may also like|most read|trending|advertisement|"
    r"cookie settings|cookie preferences|accept(?: all)? cookies|reject(?: all)? cookies|"
    r"manage cookies|we use cookies|leave a comment|comments|reply|x"
)
NAV_LINE = re.compile(rf"^(?:{NAV_WORDS})$", re.I)
COPYRIGHT_LINE = re.compile(r"^(?:\u00a9|\(c\)\s|copyright\b)|\ball rights reserved\b", re.I)
PAYWALL_LINE = re.compile(
    r"keep reading|continue reading|to continue reading|reached your (?:limit|maximum)|"
    r"free articles? (?:left|remaining|this month)|limit of free articles|already a subscriber|"
    r"subscribe (?:now|today|for)|subscriber[- ]only|sign up to (?:read|continue)|"
    r"register to (?:read|continue)|unlock (?:this|the full) article|for just [£$€]\s?\d",
    re.I,
)
SUBSCRIPTION_WORDS = re.compile(
    r"subscri|unlimited access|newsletter|exclusive|per month|per year|free trial|"
    r"cancel anytime|premium|member(?:ship)?s? only|sign up|log ?in",
    re.I,
)
# A prose sentence: 8+ words ending in . ! or ? (closing quotes or brackets may follow).
# Tested by `is_prose_sentence` in linear time (a backtracking pattern took minutes on
# a long line without a full stop).
PROSE_MIN_WORDS = 8
SENTENCE_CLOSERS = "\"'\u2019\u201d)"
WORD_END = re.compile(r"\S\s")
BYLINE = re.compile(r"^by\s+\S.{0,100}$", re.I)
HAS_LETTER = re.compile(r"[^\W\d_]", re.UNICODE)
# The top of a page is searched for chrome within this many non-empty lines.
TOP_LINES = 12
# Lines this long are prose, never part of a paywall tail.
PROSE_LINE_CHARS = 160


@dataclass(frozen=True)
class RemovedLine:
    """A line found to be boilerplate, with the rule that matched."""

    line: int  # 0-based index in the input lines
    text: str
    rule: str


def is_prose_sentence(line: str) -> bool:
    """True for a line of at least PROSE_MIN_WORDS words that ends a sentence (linear time)."""
    if not line or line[0].isspace() or line.rstrip(SENTENCE_CLOSERS)[-1:] not in (".", "!", "?"):
        return False
    word_ends = WORD_END.finditer(line)
    return (
        sum(1 for _ in zip(range(PROSE_MIN_WORDS - 1), word_ends, strict=False))
        == PROSE_MIN_WORDS - 1
    )


def _bare(line: str) -> str:
    match = BULLET_LINE.match(line)
    return (line[match.end() :] if match else line).strip()


def _norm(text: str) -> str:
    return re.sub(r"[^\w]+", " ", text.lower()).strip()


def find_boilerplate(
    lines: list[str], *, title: str = "", publisher: str = ""
) -> list[RemovedLine]:
    """Return the lines that are boilerplate, each with the rule that matched."""
    removed: dict[int, str] = {}
    filled = [i for i, line in enumerate(lines) if line.strip()]
    top = filled[:TOP_LINES]
    _mark_single_lines(lines, filled, removed)
    _mark_breadcrumb(lines, top, removed)
    _mark_title_and_masthead(lines, top, removed, title)
    _mark_publisher_line(lines, top, removed, publisher)
    _mark_bylines(lines, top, removed)
    _mark_paywall(lines, filled, removed)
    return [RemovedLine(i, lines[i], rule) for i, rule in sorted(removed.items())]


def _mark_single_lines(lines: list[str], filled: list[int], removed: dict[int, str]) -> None:
    """Lines that are boilerplate on their own: no letters, navigation, copyright."""
    for i in filled:
        bare = _bare(lines[i])
        if not HAS_LETTER.search(bare):
            removed[i] = "no_letters"
        elif NAV_LINE.match(bare):
            removed[i] = "navigation"
        elif COPYRIGHT_LINE.search(bare) and len(bare) <= 200:
            removed[i] = "copyright"


def _mark_breadcrumb(lines: list[str], top: list[int], removed: dict[int, str]) -> None:
    """Breadcrumb: a leading bullet list that starts with a navigation item."""
    if top and removed.get(top[0]) == "navigation" and BULLET_LINE.match(lines[top[0]]):
        for i in top:
            if not BULLET_LINE.match(lines[i]):
                break
            removed.setdefault(i, "breadcrumb")


def _mark_title_and_masthead(
    lines: list[str], top: list[int], removed: dict[int, str], title: str
) -> None:
    """Repeats of the title line at the top, and the masthead above the title.

    The masthead is the site name, tagline and menus above the title (or above
    the first prose sentence), up to the last navigation item there.
    """
    wanted = _norm(title) if title else ""
    title_line = next(
        (i for i in top if wanted and i not in removed and _norm(_bare(lines[i])) == wanted), None
    )
    if title_line is not None:
        for k in top:
            if k > title_line and _norm(_bare(lines[k])) == wanted:
                removed.setdefault(k, "repeated_title")
    limit = (
        title_line
        if title_line is not None
        else next((i for i in top if is_prose_sentence(lines[i])), len(lines))
    )
    nav_at_top = [i for i in top if i < limit and removed.get(i) == "navigation"]
    if len(nav_at_top) >= 2 or title_line is not None:
        end = title_line if title_line is not None else nav_at_top[-1]
        for i in top:
            if i < end and len(lines[i]) < 120:
                removed.setdefault(i, "masthead")


def _mark_publisher_line(
    lines: list[str], top: list[int], removed: dict[int, str], publisher: str
) -> None:
    """Site name line at the very top that names the publisher."""
    if publisher and top:
        first = lines[top[0]]
        if _norm(publisher) and _norm(publisher) in _norm(first) and len(first) < 120:
            removed.setdefault(top[0], "masthead")


def _mark_bylines(lines: list[str], top: list[int], removed: dict[int, str]) -> None:
    """Bylines near the top."""
    for i in top:
        if BYLINE.match(lines[i].strip()) and not lines[i].rstrip().endswith("."):
            removed.setdefault(i, "byline")


def _mark_paywall(lines: list[str], filled: list[int], removed: dict[int, str]) -> None:
    """Paywall: a short marker line in the second half and the promotional tail after it."""
    for position, i in enumerate(filled):
        if (
            position >= len(filled) // 2
            and PAYWALL_LINE.search(lines[i])
            and len(lines[i]) < PROSE_LINE_CHARS
        ):
            removed[i] = "paywall"
            for j in filled[position + 1 :]:
                text = lines[j].strip()
                if (
                    BULLET_LINE.match(text)
                    or SUBSCRIPTION_WORDS.search(text)
                    or PAYWALL_LINE.search(text)
                    or (len(text) < PROSE_LINE_CHARS and j in removed)
                ):
                    removed.setdefault(j, "paywall")
                else:
                    break
            break


def remove_boilerplate(lines: list[str], *, title: str = "", publisher: str = "") -> list[str]:
    """Lines without boilerplate (removed lines become empty, keeping paragraph breaks)."""
    drop = {r.line for r in find_boilerplate(lines, title=title, publisher=publisher)}
    return ["" if i in drop else line for i, line in enumerate(lines)]


def remove_copyright_lines(lines: list[str]) -> list[str]:
    """Only the copyright/licence-footer rule, for formats with their own chrome removal."""
    joined = "\n".join(lines).lower()
    if not any(cue in joined for cue in COPYRIGHT_CUES):
        return lines
    return [
        "" if line and COPYRIGHT_LINE.search(line) and len(line) <= 200 else line for line in lines
    ]


COPYRIGHT_CUES = ("\u00a9", "(c) ", "copyright", "all rights reserved")


BACK_MATTER = re.compile(
    r"\byou may (?:re-?use|copy) (?:this|all or parts of this)\b|\bopen government licen[cs]e\b|"
    r"^(?:this|the) (?:publication|report|document) is (?:also )?available (?:at|from)\b|"
    r"\bin a different format, such as large print or braille\b|"
    r"\bsubscribe to our (?:\w+ )?newsletter\b|^any complaints about the (?:inspection|report)\b|"
    r"\(ofsted\) regulates and inspects\b|^crown copyright\b",
    re.I,
)
CONTACT_LINE = re.compile(
    r"^(?:t|tel|telephone|textphone|minicom|e|email|e-mail|w|web|website|f|fax)\s*:\s*\S{3,}", re.I
)
UK_POSTCODE = re.compile(r"^[A-Z]{1,2}\d[A-Z\d]?\s*\d[A-Z]{2}$")
# Back matter is searched on the last two pages, or in this many final paragraphs.
BACK_MATTER_BLOCKS = 15
# Address lines are this short at most.
ADDRESS_LINE_CHARS = 40


def remove_back_matter(blocks: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Drop a publication's back matter paragraphs near the end.

    Reuse/licence notices,
    'available at', alternative-format and newsletter notices, and contact blocks
    (address lines before a postcode or 'T:'/'E:'/'W:' lines), near the end.
    """
    drop = set()
    last_page = max((page for page, _ in blocks), default=1)
    for i, (page, text) in enumerate(blocks):
        if page < last_page - 1 and i < len(blocks) - BACK_MATTER_BLOCKS:
            continue
        if len(text) <= 1500 and BACK_MATTER.search(text):
            drop.add(i)
        elif len(text) <= 120 and (CONTACT_LINE.match(text) or UK_POSTCODE.match(text)):
            drop.add(i)
            j = i - 1
            while (
                j >= 0
                and i - j <= 4
                and (
                    j in drop
                    or (
                        len(blocks[j][1]) <= ADDRESS_LINE_CHARS
                        and not TERMINAL_PUNCT.search(blocks[j][1])
                    )
                )
            ):
                drop.add(j)
                j -= 1
    return [block for i, block in enumerate(blocks) if i not in drop]


TERMINAL_PUNCT = re.compile(r"[.!?:;]$")
