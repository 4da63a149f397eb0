r"""Word counts of texts with textmine's token pattern, faster than scikit-learn's loop and equal to it.

scikit-learn's `CountVectorizer` runs the token regex over every character and
counts every word and two-word phrase in a Python loop. Here a text is split
at white space (`str.split`: a token holds no white space, and white space,
like a text's edge, is not a word character for `\b`), each distinct piece
is tokenised once, and the words and phrases are counted with
`collections.Counter`. The
counts, vocabulary and matrix are those of scikit-learn (tests compare them).
"""

from __future__ import annotations

import array
import re
from collections import Counter, defaultdict
from collections.abc import Iterable
from itertools import islice

import numpy as np
import scipy.sparse as sp
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer

from textmine.topics.tokens import PieceTokens, token_pattern

try:  # scikit-learn's own conversion of its count matrix (private: without it, its own loop)
    from sklearn.utils._sparse import _align_api_if_sparse
except ImportError:  # pragma: no cover - another scikit-learn version
    _align_api_if_sparse = None


def word_and_phrase_counts(tokens: list[str], phrases: bool) -> Counter:
    """Counts of the tokens, then (with `phrases`) of their two-word phrases, in first-seen order."""
    counts = Counter(tokens)
    if phrases and len(tokens) > 1:
        counts.update(map(" ".join, zip(tokens, islice(tokens, 1, None))))  # noqa: B905
    return counts


class FastCountMixin:
    """`_count_vocab` of scikit-learn's vectorizers, fast for textmine's word settings.

    Used for word analyzers with textmine's token pattern, lower-casing (or
    not), no accent stripping, no custom preprocessor or tokenizer, n-grams of
    one word or one and two, and text documents; anything else goes to
    scikit-learn's own loop.
    """

    def _fast_counting(self) -> bool:
        return (
            _align_api_if_sparse is not None
            and np.dtype(np.intp).itemsize == 8  # 32-bit Python: scikit-learn's own checks
            and self.analyzer == "word"  # type: ignore[attr-defined]
            and self.input == "content"  # type: ignore[attr-defined]
            and self.preprocessor is None  # type: ignore[attr-defined]
            and self.tokenizer is None  # type: ignore[attr-defined]
            and self.strip_accents is None  # type: ignore[attr-defined]
            and self.token_pattern == token_pattern()  # type: ignore[attr-defined]
            and tuple(self.ngram_range) in ((1, 1), (1, 2))  # type: ignore[attr-defined]
        )

    def _count_vocab(self, raw_documents: Iterable, fixed_vocab: bool):
        """(vocabulary, documents x features counts), as scikit-learn's `_count_vocab`."""
        documents = raw_documents if isinstance(raw_documents, list) else list(raw_documents)
        if not self._fast_counting() or not all(isinstance(d, str) for d in documents):
            return super()._count_vocab(documents, fixed_vocab)  # type: ignore[misc]
        self.build_analyzer()  # type: ignore[attr-defined]  # its checks and warnings
        if fixed_vocab:
            vocabulary = self.vocabulary_  # type: ignore[attr-defined]
        else:
            vocabulary = defaultdict()
            vocabulary.default_factory = vocabulary.__len__
        pieces = PieceTokens(
            re.compile(self.token_pattern).findall,  # type: ignore[attr-defined]
            self.get_stop_words(),  # type: ignore[attr-defined]
        )
        phrases = tuple(self.ngram_range) == (1, 2)  # type: ignore[attr-defined]
        lowercase = self.lowercase  # type: ignore[attr-defined]
        j_indices: list[int] = []
        values = array.array("i")
        indptr = [0]
        for doc in documents:
            counts = word_and_phrase_counts(
                pieces.tokens(doc.lower() if lowercase else doc), phrases
            )
            if fixed_vocab:
                known = [(vocabulary[f], c) for f, c in counts.items() if f in vocabulary]
                j_indices.extend(i for i, _ in known)
                values.extend(c for _, c in known)
            else:
                j_indices.extend(map(vocabulary.__getitem__, counts))
                values.extend(counts.values())
            indptr.append(len(j_indices))
        if not fixed_vocab:
            vocabulary = dict(vocabulary)
            if not vocabulary:
                raise ValueError("empty vocabulary; perhaps the documents only contain stop words")
        indices_dtype = np.int64 if indptr[-1] > np.iinfo(np.int32).max else np.int32
        matrix = sp.csr_array(
            (
                np.frombuffer(values, dtype=np.intc),
                np.asarray(j_indices, dtype=indices_dtype),
                np.asarray(indptr, dtype=indices_dtype),
            ),
            shape=(len(indptr) - 1, len(vocabulary)),
            dtype=self.dtype,  # type: ignore[attr-defined]
        )
        matrix.sort_indices()
        return vocabulary, _align_api_if_sparse(matrix)


class FastCountVectorizer(FastCountMixin, CountVectorizer):
    """scikit-learn's `CountVectorizer` with `FastCountMixin`'s counting (same parameters, same result)."""


class FastTfidfVectorizer(FastCountMixin, TfidfVectorizer):
    """scikit-learn's `TfidfVectorizer` with `FastCountMixin`'s counting (same parameters, same result)."""
