"""Tokens of topic texts: textmine's token pattern, and texts tokenised a piece between white space at a time."""

from __future__ import annotations

from collections.abc import Callable
from itertools import chain


def token_pattern() -> str:
    """Regex of a token: words of 2+ letters (hyphens inside), no bare numbers.

    Apostrophes, straight or curly, end a token: "Majesty’s" and "Majesty's"
    are both "majesty" (a stop word) and the "s" is dropped, so a curly
    apostrophe never smuggles a stop word or a possessive into the topics.
    """
    return r"(?u)\b[^\W\d_][\w-]*[^\W_]\b"


class PieceTokens(dict):
    """{piece of text between white space: its tokens (stop words left out)}, each tokenised once."""

    def __init__(self, find_tokens: Callable[[str], list[str]], stop_words: frozenset | None):
        """Tokenise with `find_tokens`; leave out `stop_words` (None: none)."""
        super().__init__()
        self.find_tokens = find_tokens
        self.stop_words = stop_words or frozenset()

    def __missing__(self, piece: str) -> tuple[str, ...]:
        tokens = tuple(t for t in self.find_tokens(piece) if t not in self.stop_words)
        self[piece] = tokens
        return tokens

    def tokens(self, text: str) -> list[str]:
        """The tokens of `text` (already lower-cased where wanted), stop words left out, in order."""
        return list(chain.from_iterable(map(self.__getitem__, text.split())))
