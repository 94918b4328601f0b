"""Keyword search without plaintext: words become keyed hashes before they are indexed.

Each word is normalised (NFKC, lower case), stop words dropped, stemmed (Snowball English via
PyStemmer), then replaced by the first 16 hex of HMAC-SHA256(index key, stem). The index holds
only those tokens; a query is hashed the same way, so BM25 ranking still works while a byte
scan of the index finds no word anyone said or wrote. Pure functions: no I/O, no Dagster.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
from functools import lru_cache

import Stemmer

_WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)?", re.UNICODE)

# The common English function words; they carry no signal in BM25 and only bloat the index.
STOP_WORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had
    has have having he her here hers herself him himself his how i if in into is it its itself just
    me more most my myself no nor not now of off on once only or other our ours ourselves out over
    own same she should so some such than that the their theirs them themselves then there these
    they this those through to too under until up very was we were what when where which while who
    whom why will with would you your yours yourself yourselves""".split()
)


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def stems(text: str) -> list[str]:
    """Normalised, stop-word-free stems of `text`, in order."""
    words = [w.replace("'", "") for w in _WORD.findall(unicodedata.normalize("NFKC", text).lower())]
    return _stemmer().stemWords([w for w in words if w and w not in STOP_WORDS])


def token(key: bytes, stem: str) -> str:
    return hmac.new(key, stem.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def blind_tokens(key: bytes, text: str) -> str:
    """The space-joined keyed hashes of `text`'s stems (what the full-text index stores)."""
    if len(key) < 16:
        raise ValueError("the keyword index key must be at least 16 bytes")
    return " ".join(token(key, s) for s in stems(text))
