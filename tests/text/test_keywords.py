from hypothesis import given
from hypothesis import strategies as st

from grace_pipelines.text.keywords import blind_tokens, stems

KEY = b"k" * 32


def test_stems_normalise_and_drop_stop_words() -> None:
    assert stems("The Deadlines were MOVED to Friday!") == ["deadlin", "move", "friday"]
    assert stems("migrating, migration; migrated") == ["migrat", "migrat", "migrat"]
    assert stems("don't") == ["dont"]


def test_same_stem_same_token_and_no_plaintext() -> None:
    a, b = blind_tokens(KEY, "meeting"), blind_tokens(KEY, "meetings")
    assert a == b and len(a) == 16 and "meet" not in a
    assert blind_tokens(b"x" * 32, "meeting") != a, "the key matters"


@given(st.text(max_size=300))
def test_tokens_are_hex_only(text: str) -> None:
    out = blind_tokens(KEY, text)
    assert all(len(t) == 16 and all(c in "0123456789abcdef" for c in t) for t in out.split())
