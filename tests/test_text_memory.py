"""ENCODE text on one huge document: hashed a piece at a time, it gives exactly the row
scikit-learn's HashingVectorizer makes of the whole document, and the fit's memory stays bounded
(one 50 MB document of short words peaked at 1.9 GB when it was hashed whole)."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from oocml import encoding
from oocml.encoding import TextEncoder, document_counts, hash_documents

# Words and separators that try every rule of the cut: spaces and newlines, punctuation that
# lowercasing looks across (' . : ·) next to capital sigmas (Python lowers a word's last Σ to
# \u03c2, any other to \u03c3), a character that lowers to two (İ), a cased symbol (Ⓐ), stop
# words, and no separator at all.
WORDS = np.array("the a of and it's don't Good GREAT film ΟΔΟΣ ΣΟΦΟΣ ΑΣ x-ray naïve İstanbul "
                 "Ⓐb 北京 a.b.c".split(), dtype=object)
SEPARATORS = np.array([" ", "  ", "\n", ", ", "'", ".", ":", "·", "Σ", "Ⓐ", "-", ""], dtype=object)


def _document(words: int, seed: int, separators: np.ndarray = SEPARATORS) -> str:
    rng = np.random.default_rng(seed)
    pairs = zip(rng.choice(WORDS, words), rng.choice(separators, words))
    return "".join(itertools.chain.from_iterable(pairs))


def _documents() -> np.ndarray:
    """Long documents (with and without spaces, with and without Σ, one a single long token)
    among short and empty ones."""
    unspaced = SEPARATORS[~np.isin(SEPARATORS, [" ", "  ", "\n", ", "])]
    return np.array([_document(1_000, 1), "Good film", "", _document(800, 2, unspaced),
                     _document(800, 3, unspaced).replace("Σ", "S"), "ab" * 300 + " cd",
                     "ΣΣ ΑΣ. ΑΣ'Β"], dtype=object)


def _hashing_vectorizer(**params):
    from sklearn.feature_extraction.text import HashingVectorizer

    return HashingVectorizer(n_features=2**12, dtype=np.float64, **params)


def _assert_same_rows(ours, theirs) -> None:
    """The same sparse rows: the same columns (including those whose signs cancel), values to
    1e-12."""
    assert type(ours) is type(theirs)
    np.testing.assert_array_equal(ours.indptr, theirs.indptr)
    np.testing.assert_array_equal(ours.indices, theirs.indices)
    np.testing.assert_allclose(ours.data, theirs.data, rtol=1e-12, atol=1e-12)


PARAMETERS = [dict(zip(("ngram_range", "norm", "alternate_sign", "binary", "lowercase",
                        "stop_words"), values))
              for values in itertools.product([(1, 1), (1, 2)], ["l2", None], [True, False],
                                              [False, True], [True, False], [None, "english"])]


@pytest.mark.parametrize("params", PARAMETERS, ids=lambda p: "-".join(map(str, p.values())))
def test_a_document_hashed_in_pieces_is_hashed_as_a_whole(params, monkeypatch):
    """Pieces of about 100 characters (dozens per document), cut after spaces, or after other
    characters where no token and no lowercasing crosses: the rows of the whole documents."""
    monkeypatch.setattr(encoding, "PIECE_CHARS", 100)
    documents = _documents()
    assert len(list(encoding._pieces(documents[3], params["lowercase"]))) > 20
    vectorizer = _hashing_vectorizer(**params)
    _assert_same_rows(hash_documents(vectorizer, documents), vectorizer.transform(documents))
    frame = pd.DataFrame({"review": documents})
    encoded = TextEncoder(n_features=2**12, **params).fit(frame).transform(frame)
    _assert_same_rows(encoded, vectorizer.transform(documents))


@pytest.mark.parametrize("ngram_range", [(2, 2), (1, 3), (2, 3)])
def test_longer_n_grams_overlap_the_pieces(ngram_range, monkeypatch):
    monkeypatch.setattr(encoding, "PIECE_CHARS", 100)
    documents = _documents()
    vectorizer = _hashing_vectorizer(ngram_range=ngram_range, stop_words="english")
    _assert_same_rows(hash_documents(vectorizer, documents), vectorizer.transform(documents))


def test_tfidf_counts_and_weights_a_document_in_pieces(monkeypatch):
    """The statistics pass counts a long document's hashed columns once, as scikit-learn's
    TfidfTransformer does on the whole document's counts."""
    from sklearn.feature_extraction.text import TfidfTransformer

    frame = pd.DataFrame({"review": _documents()})
    whole = _hashing_vectorizer(ngram_range=(1, 2), alternate_sign=False, norm=None).transform(
        frame["review"])
    monkeypatch.setattr(encoding, "PIECE_CHARS", 100)
    params = {**encoding.with_defaults("text", {}), "n_features": 2**12, "ngram_range": (1, 2),
              "tfidf": True}
    documents, frequency = document_counts(frame, {"review": params})["review"]
    assert documents == len(frame)
    np.testing.assert_array_equal(frequency, np.bincount(whole.indices, minlength=2**12))
    expected = TfidfTransformer().fit(whole)
    encoder = TextEncoder(**params).fit(frame)
    np.testing.assert_allclose(encoder.idf_[0], expected.idf_, rtol=1e-12)
    _assert_same_rows(encoder.transform(frame), expected.transform(whole))


def test_a_few_megabytes_at_the_real_piece_size():
    """Three pieces of the default ``PIECE_CHARS``, 2-grams across their cuts."""
    document = _document(700_000, 4)
    assert len(document) > 3 * encoding.PIECE_CHARS
    vectorizer = _hashing_vectorizer(ngram_range=(1, 2))
    documents = np.array(["Good film", document, "bad plot"], dtype=object)
    _assert_same_rows(hash_documents(vectorizer, documents), vectorizer.transform(documents))


def _words(megabytes: int, letters: int = 3) -> str:
    """``megabytes`` of random words of ``letters`` letters (three: about 13 million tokens in
    50 MB), made by numpy in a second or two."""
    codes = np.random.default_rng(0).integers(97, 123, size=megabytes << 20, dtype=np.uint8)
    codes[letters::letters + 1] = 32
    return codes.tobytes().decode("ascii")


def _peak(script: str, *args: str) -> dict:
    """What ``script`` prints last, run in a fresh Python (its own peak memory, VmHWM)."""
    done = subprocess.run([sys.executable, "-c", script, *args], check=True, capture_output=True,
                          text=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


FIT_SCRIPT = """
import json, re, sys
import oocml
model = oocml.sql(f"TRAIN sgd ON '{sys.argv[1]}' PREDICT y ENCODE text(review)")
peak = re.search(r"VmHWM:\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)
print(json.dumps({"rss_mb": int(peak) / 1024, "rows": model.report.rows}))
"""


@pytest.mark.slow
def test_one_50_mb_document_trains_within_1_5_gb(tmp_path):
    """TRAIN ... ENCODE text on one 50 MB document among short ones: 1,902 MB when it was
    hashed whole, about 650 MB in pieces (most of it reading the document)."""
    reviews = ["good film", "bad plot", "great actor", "dull scene"] * 5
    frame = pd.DataFrame({"review": [_words(50), *reviews], "y": [1] + [1, 0, 1, 0] * 5})
    frame.to_parquet(tmp_path / "long.parquet")
    peak = _peak(FIT_SCRIPT, str(tmp_path / "long.parquet"))
    assert peak["rows"] == 21
    assert peak["rss_mb"] < 1_500, peak


ENCODER_SCRIPT = """
import json, re, sys
import numpy as np
from oocml.encoding import TextEncoder, hash_documents
def memory(key):
    return int(re.search(key + r":\\s+(\\d+) kB", open("/proc/self/status").read()).group(1)) / 1024
megabytes, letters = map(int, sys.argv[1:])
codes = np.random.default_rng(0).integers(97, 123, size=megabytes << 20, dtype=np.uint8)
codes[letters::letters + 1] = 32  # as _words makes them
documents = np.array([codes.tobytes().decode("ascii"), "good film"], dtype=object)
del codes
open("/proc/self/clear_refs", "w").write("5")  # the peak so far (making the document) forgotten
before = memory("VmRSS")
encoder = TextEncoder(tfidf=True)
for vectorizer in (encoder._vectorizer(), encoder._vectorizer(counting=True)):
    rows = hash_documents(vectorizer, documents)
    del rows
print(json.dumps({"mb": memory("VmHWM") - before}))
"""


@pytest.mark.slow
def test_hashing_memory_does_not_grow_with_the_document():
    """One document hashed for TF-IDF and its hashed columns counted: the memory above the
    document itself is the same for 25 and 50 MB of text, 45 MB (and for 100 MB); hashed
    whole, it was 350 and 642 MB."""
    small, large = (_peak(ENCODER_SCRIPT, str(megabytes), "7") for megabytes in (25, 50))
    assert large["mb"] < small["mb"] + 20, (small, large)
