"""Categorical features: value counts from the fused statistics pass, and the fitted encoders.

``onehot`` keeps the ``max_categories`` most frequent values of each column and
puts every other value (rare, unseen or missing) in one ``infrequent`` column;
``ordinal`` numbers every value seen (-1 for unseen or missing); ``hash`` needs
no statistics at all. The encoders are scikit-learn's own (``OneHotEncoder``,
``OrdinalEncoder``), fitted on a few synthetic rows that reproduce the decisions
taken from the counts, plus :class:`HashEncoder` for ``hash``.

``text`` hashes at most about ``PIECE_CHARS`` characters at once, whatever the size of a
document: a run of short documents together, a long one piece by piece (:func:`hash_documents`),
with exactly the row ``HashingVectorizer`` makes of the whole document.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder

from .errors import DataError, ParameterError
from .plan_rules import SPARSE_ENCODINGS

# Each encoding's parameters and their defaults (which parameters exist, and their rules, are
# the Plan validator's: oocml.plan_rules.STEP_PARAMETERS).
DEFAULTS = {"onehot": {"max_categories": 32}, "ordinal": {}, "hash": {"n_features": 256},
            "text": {"n_features": 2**20, "ngram_range": (1, 1), "lowercase": True,
                     "stop_words": None, "alternate_sign": True, "norm": "l2", "binary": False,
                     "tfidf": False}}
MAX_DISTINCT = 100_000  # per column: beyond this, counting costs memory; ENCODE hash needs none
OTHER = "(other)"  # the synthetic value standing for every rare one
# scikit-learn's analyzer holds a Python string (about 50 bytes) for every token and n-gram of
# a document, and its hasher 12 bytes more for each of a batch: one 50 MB document of short
# words peaked at 1.9 GB, 650 MB in pieces of this many characters (tests/test_text_memory.py).
PIECE_CHARS = 1 << 20


def is_categorical(dtype: Any) -> bool:
    """Strings, pandas categoricals and objects: what an encoder must turn into numbers."""
    return not (pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype))


def with_defaults(method: str, params: dict[str, Any]) -> dict[str, Any]:
    """A validated encoding step's parameters, with the defaults of those it leaves out."""
    return {**DEFAULTS[method], **params}


def count_values(frame: pd.DataFrame, columns: list[str]) -> dict[str, pd.Series]:
    """How often each (non-missing) value occurs in each column of one partition."""
    counts = {}
    for column in columns:
        values = frame[column]
        if isinstance(values.dtype, pd.CategoricalDtype):
            values = values.astype(object)
        counts[column] = values.value_counts(dropna=True, sort=False)
        _check_distinct(column, counts[column])
    return counts


def merge_counts(a: dict[str, pd.Series], b: dict[str, pd.Series]) -> dict[str, pd.Series]:
    merged = {c: a[c].add(b[c], fill_value=0).astype(np.int64) for c in a}
    for column, counts in merged.items():
        _check_distinct(column, counts)
    return merged


def _check_distinct(column: str, counts: pd.Series) -> None:
    if len(counts) > MAX_DISTINCT:
        raise DataError(f"categorical column {column!r} has more than {MAX_DISTINCT:,} distinct "
                        "values: use ENCODE hash n / .encode('hash', n_features=n) for it")


def encoder_and_rows(method: str, params: dict[str, Any], columns: list[str],
                     counts: dict[str, pd.Series] | None,
                     missing: float = -1) -> tuple[Any, pd.DataFrame]:
    """An unfitted encoder and the few synthetic rows that fit it as the counts say; ``missing``
    is the code ordinal encoding gives a missing or unseen value (NaN for trees, which learn
    where it goes)."""
    params = with_defaults(method, params)
    if method in SPARSE_ENCODINGS:  # stateless: nothing learned from the data
        encoder = HashEncoder(**params) if method == "hash" else TextEncoder(**params)
        return encoder, pd.DataFrame({c: ["a"] for c in columns})
    kept, rows = {}, {}
    for column in columns:
        values = counts[column]
        if values.empty:
            raise DataError(f"categorical column {column!r} holds no values at all: nothing to "
                            "encode; leave it out")
        # Most frequent first; ties broken by the value itself, so the choice is deterministic.
        ranked = sorted(values.items(), key=lambda item: (-item[1], str(item[0])))
        if method == "onehot":
            top = [v for v, _ in ranked[: params["max_categories"]]]
            kept[column] = top
            # The stand-in for every rare value: OTHER, or for numbers (hive partition columns
            # such as year=2020) the most frequent rare value, so the column keeps one type.
            other = ranked[len(top)][0] if _numeric(top) and len(ranked) > len(top) else OTHER
            rows[column] = top + top + ([other] if len(ranked) > len(top) else [])
        else:
            kept[column] = sorted((v for v, _ in ranked), key=str)
            rows[column] = list(kept[column])
    length = max(len(r) for r in rows.values())
    synthetic = pd.DataFrame({c: pd.Series(r + [r[0]] * (length - len(r)),
                                           dtype=None if _numeric(r) else object)
                              for c, r in rows.items()})
    if method == "onehot":
        # A value seen once in the synthetic rows (only OTHER) is "infrequent": the other bucket.
        encoder = OneHotEncoder(categories=[sorted(set(rows[c]), key=str) for c in columns],
                                handle_unknown="infrequent_if_exist", min_frequency=2,
                                sparse_output=False)
    else:
        encoder = OrdinalEncoder(categories=[kept[c] for c in columns],
                                 handle_unknown="use_encoded_value", unknown_value=missing,
                                 encoded_missing_value=missing)
    return encoder, synthetic


def _numeric(values: list) -> bool:
    """Whether every value is a number: such a column reaches the encoder as numbers."""
    return all(isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in values)


class HashEncoder(TransformerMixin, BaseEstimator):
    """Stateless hashing of categorical columns into ``n_features`` signed sparse columns.

    Each value is hashed together with its column, so equal values in two columns
    land apart; the sign bit halves the bias of collisions (as ``FeatureHasher``).
    ``FeatureHasher`` itself wants one list of strings per row, which costs a
    Python loop per row; here every column is hashed at once with pandas.
    """

    def __init__(self, n_features: int = 256):
        self.n_features = n_features

    def fit(self, X: Any, y: Any = None) -> HashEncoder:
        self._validate_data_columns(X)
        return self

    def transform(self, X: Any) -> sparse.csr_matrix:
        frame = pd.DataFrame(X)
        n = len(frame)
        width = frame.shape[1]
        if width == 0 or n == 0:
            return sparse.csr_matrix((n, self.n_features))
        columns, signs = [], []
        for position in range(width):
            values = frame.iloc[:, position].astype(object).to_numpy()
            hashed = pd.util.hash_array(values, hash_key=f"oocml-hash-{position:05d}")
            columns.append((hashed % np.uint64(self.n_features)).astype(np.int64))
            signs.append(np.where(hashed >> np.uint64(63), -1.0, 1.0))
        indices = np.stack(columns, axis=1).ravel()
        data = np.stack(signs, axis=1).ravel()
        indptr = np.arange(0, n * width + 1, width)
        matrix = sparse.csr_matrix((data, indices, indptr), shape=(n, self.n_features))
        matrix.sum_duplicates()
        return matrix

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        return np.asarray([f"hash_{i}" for i in range(self.n_features)], dtype=object)

    def _validate_data_columns(self, X: Any) -> None:
        if not isinstance(self.n_features, int) or self.n_features < 1:
            raise ParameterError(f"n_features must be a whole number >= 1, not {self.n_features!r}")
        self.n_features_in_ = np.shape(X)[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)


class TextEncoder(TransformerMixin, BaseEstimator):
    """Free text as hashed word n-grams: scikit-learn's ``HashingVectorizer`` on each column
    (a missing value is an empty document), the columns side by side in one sparse matrix.

    Stateless, so it needs no statistics pass; ``alternate_sign=False`` keeps the counts
    non-negative, as the naive Bayes family needs. With ``tfidf``, the counts (unsigned,
    unnormalised) are weighted by ``idf_``, one row per column, from the document frequency
    of each hashed column that the statistics pass counts (:func:`document_counts`), then
    normalised: scikit-learn's ``TfidfTransformer`` (smooth idf) on hashed columns.
    """

    def __init__(self, n_features: int = 2**20, ngram_range: tuple = (1, 1),
                 lowercase: bool = True, stop_words: str | None = None,
                 alternate_sign: bool = True, norm: str | None = "l2", binary: bool = False,
                 tfidf: bool = False):
        self.n_features = n_features
        self.ngram_range = ngram_range
        self.lowercase = lowercase
        self.stop_words = stop_words
        self.alternate_sign = alternate_sign
        self.norm = norm
        self.binary = binary
        self.tfidf = tfidf

    def fit(self, X: Any, y: Any = None) -> TextEncoder:
        self.n_features_in_ = np.shape(X)[1]
        if hasattr(X, "columns"):
            self.feature_names_in_ = np.asarray(X.columns, dtype=object)
        self._vectorizer().fit([])  # scikit-learn checks the parameters
        if self.tfidf:  # in memory, from X itself; oocml sets them from the statistics pass
            frame = pd.DataFrame(X)
            counts = document_counts(frame, {c: self.get_params() for c in frame.columns})
            self.idf_ = np.stack([idf(*counts[c]) for c in frame.columns])
        return self

    def _vectorizer(self, counting: bool = False) -> Any:
        """The HashingVectorizer this encoder applies; with ``tfidf`` (or ``counting``
        documents) unsigned and unnormalised, the weighting and norm applied after it."""
        from sklearn.feature_extraction.text import HashingVectorizer

        raw = self.tfidf or counting
        return HashingVectorizer(n_features=self.n_features, ngram_range=tuple(self.ngram_range),
                                 lowercase=self.lowercase, stop_words=self.stop_words,
                                 alternate_sign=self.alternate_sign and not raw,
                                 norm=None if raw else self.norm,
                                 binary=self.binary or counting, dtype=np.float64)

    def transform(self, X: Any) -> sparse.csr_matrix:
        frame = pd.DataFrame(X)
        vectorizer = self._vectorizer()
        blocks = [hash_documents(vectorizer, _documents(frame.iloc[:, k]))
                  for k in range(frame.shape[1])]
        if self.tfidf:
            from sklearn.preprocessing import normalize

            blocks = [sparse.csr_matrix(block.multiply(self.idf_[k])) for k, block in
                      enumerate(blocks)]
            blocks = [normalize(block, norm=self.norm) if self.norm else block for block in blocks]
        if not blocks:
            return sparse.csr_matrix((len(frame), 0))
        return blocks[0] if len(blocks) == 1 else sparse.hstack(blocks, format="csr")

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        names = getattr(self, "feature_names_in_", [f"x{k}" for k in range(self.n_features_in_)])
        return np.asarray([f"{column}_text_{i}" for column in names
                           for i in range(self.n_features)], dtype=object)


def document_counts(frame: pd.DataFrame, texts: dict[str, dict[str, Any]]) -> dict[str, tuple]:
    """For each text column to weight by TF-IDF: (documents, how many contain each hashed
    column), from its encoder's parameters; mergeable by adding (2**20 counters a column)."""
    counts = {}
    for column, params in texts.items():
        hashed = hash_documents(TextEncoder(**params)._vectorizer(counting=True),
                                _documents(frame[column]))
        counts[column] = (len(frame), np.bincount(hashed.indices, minlength=hashed.shape[1]))
    return counts


def _documents(values: pd.Series) -> np.ndarray:
    """A text column as the documents HashingVectorizer takes: a missing value is empty."""
    return values.fillna("").astype(str).to_numpy()


def merge_documents(a: dict[str, tuple], b: dict[str, tuple]) -> dict[str, tuple]:
    return {c: (a[c][0] + b[c][0], a[c][1] + b[c][1]) for c in a}


def idf(documents: int, frequency: np.ndarray) -> np.ndarray:
    """scikit-learn's smooth inverse document frequency: ln((1 + n) / (1 + df)) + 1."""
    return np.log((1 + documents) / (1 + frequency)) + 1.0


def hash_documents(vectorizer: Any, documents: np.ndarray) -> sparse.csr_matrix:
    """``vectorizer.transform(documents)``, in memory bounded by ``PIECE_CHARS`` (and
    ``n_features``) rather than by the batch or its longest document: runs of documents of at
    most ``PIECE_CHARS`` characters together, a longer document alone and piece by piece
    (:func:`_hash_long`). The vectorizer is one :meth:`TextEncoder._vectorizer` makes: words of
    the default token pattern (runs of word characters), no accent stripping, which the
    pieces' cuts rely on."""
    lengths = np.fromiter(map(len, documents), dtype=np.int64, count=len(documents))
    if lengths.sum() <= PIECE_CHARS:
        return vectorizer.transform(documents)
    blocks = [_hash_long(vectorizer, documents[start]) if lengths[start] > PIECE_CHARS
              else vectorizer.transform(documents[start:stop])
              for start, stop in _runs(lengths)]
    return sparse.csr_matrix(sparse.vstack(blocks, format="csr"))


def _runs(lengths: np.ndarray) -> Iterator[tuple[int, int]]:
    """Consecutive runs of documents (start, stop) of at most ``PIECE_CHARS`` characters in all,
    or one document alone when it is longer."""
    ends = np.cumsum(lengths)
    start = 0
    while start < len(lengths):
        before = ends[start] - lengths[start]
        stop = max(start + 1, int(np.searchsorted(ends, before + PIECE_CHARS, side="right")))
        yield start, stop
        start = stop


def _hash_long(vectorizer: Any, document: str) -> sparse.csr_matrix:
    """One long document as ``vectorizer.transform([document])`` makes it, hashing one piece at
    a time: each piece's n-grams include the ones that begin in the last n - 1 tokens (stop
    words left out) of the pieces before it, so every n-gram is counted once; the counts of
    the pieces are added (whole numbers, so exactly), then made binary and normalised."""
    from sklearn.feature_extraction import FeatureHasher
    from sklearn.preprocessing import normalize

    preprocess, tokenize = vectorizer.build_preprocessor(), vectorizer.build_tokenizer()
    stop_words = vectorizer.get_stop_words()
    hasher = FeatureHasher(n_features=vectorizer.n_features, input_type="string",
                           dtype=vectorizer.dtype, alternate_sign=vectorizer.alternate_sign)
    keep = vectorizer.ngram_range[1] - 1  # tokens carried to the next piece
    carry: list[str] = []
    # The sum held dense: n_features values, as the model's own coefficients (a sparse sum
    # would cost several times its entries while merging them).
    total = np.zeros(vectorizer.n_features, dtype=vectorizer.dtype)
    hit = np.zeros(vectorizer.n_features, dtype=bool)
    for piece in _pieces(document, vectorizer.lowercase):
        tokens = tokenize(preprocess(piece))
        if stop_words:
            tokens = [token for token in tokens if token not in stop_words]
        row = hasher.transform([_ngrams(carry, tokens, vectorizer.ngram_range)])
        total[row.indices] += row.data  # a row's columns are distinct (summed by the hasher)
        hit[row.indices] = True
        carry = (carry + tokens[-keep:])[-keep:] if keep else []
    row = _one_row(total, hit)
    if vectorizer.binary:
        row.data.fill(1)
    return normalize(row, norm=vectorizer.norm, copy=False) if vectorizer.norm else row


def _one_row(total: np.ndarray, hit: np.ndarray) -> sparse.csr_matrix:
    """The dense sum as one sparse row with an entry for every column ``hit``, zero or not (as
    ``FeatureHasher`` keeps a column whose signed counts cancel)."""
    columns = np.flatnonzero(hit).astype(np.int32)  # FeatureHasher's n_features fits in int32
    indptr = np.array([0, len(columns)], dtype=np.int32)
    return sparse.csr_matrix((total[columns], columns, indptr), shape=(1, len(total)))


def _ngrams(carry: list[str], tokens: list[str], ngram_range: tuple[int, int]) -> Iterator[str]:
    """The n-grams of ``carry + tokens`` that end in ``tokens``, as scikit-learn's analyzer
    joins them (``_word_ngrams``); ``carry`` holds the n - 1 tokens before, counted already."""
    low, high = ngram_range
    if low == 1:
        yield from tokens
    sequence = carry + tokens if high > 1 else tokens
    for n in range(max(low, 2), high + 1):
        for start in range(max(0, len(carry) - n + 1), len(sequence) - n + 1):
            yield " ".join(sequence[start:start + n])


_NOT_WORD = re.compile(r"\W")


def _pieces(document: str, lowercase: bool) -> Iterator[str]:
    """The document in consecutive pieces of about ``PIECE_CHARS`` characters, each cut just
    after a character (preferably a space) that no token crosses and where lowercasing does
    not look across (:func:`_cuts_cleanly`): each piece lowered and tokenized alone gives the
    whole document's tokens. Where a piece's length holds no such character, the piece ends
    at the next one: only one token that long (or, with a Σ, text separated only by
    characters lowercasing looks across) makes a longer piece."""
    anywhere = not lowercase or "Σ" not in document  # without Σ, str.lower is per character
    start = 0
    while len(document) - start > PIECE_CHARS:
        stop = _cut(document, start, start + PIECE_CHARS, lowercase, anywhere)
        yield document[start:stop]
        start = stop
    yield document[start:]


def _cut(document: str, start: int, end: int, lowercase: bool, anywhere: bool) -> int:
    """Where the piece beginning at ``start`` ends: after the last space or newline before
    ``end``, else after the last character before it that cuts cleanly, else after the first
    one after it, else at the end of the document."""
    space = max(document.rfind(" ", start, end), document.rfind("\n", start, end))
    if space >= start:
        return space + 1
    for match in _NOT_WORD.finditer(document[start:end][::-1]):
        if _cuts_cleanly(match.group(), lowercase, anywhere):
            return end - match.start()
    for match in _NOT_WORD.finditer(document, end):
        if _cuts_cleanly(match.group(), lowercase, anywhere):
            return match.end()
    return len(document)


@functools.lru_cache(maxsize=4096)
def _cuts_cleanly(character: str, lowercase: bool, anywhere: bool) -> bool:
    """Whether cutting a document just after ``character`` (not a word character) leaves its
    tokens and their lowercase alone: lowered it is no word character either, and, with a Σ
    in the document, lowercasing does not look across it (Python lowers Σ to ς at the end of
    a word, skipping "case-ignorable" characters such as ' or . to find it); asked of
    ``str.lower`` itself, so it holds for the running Python's Unicode tables."""
    if not lowercase:
        return True
    if re.search(r"\w", character.lower()):
        return False
    return anywhere or ("AΣ" + character + "B").lower()[1] == "ς"
