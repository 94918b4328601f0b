"""Text encodings: UTF-8 and UTF-16 with a BOM as always; legacy encodings (cp1252, latin-1,
Shift-JIS) through charset-normalizer; binary and empty files still refused, naming the file."""

from __future__ import annotations

import random

import pytest

from grace_pipelines.ingest.media import MediaError, decode_text, probe
from grace_pipelines.text.extract import ExtractBudget, extract

# "à", "è", "ê" differ between cp1252 and cp1250, which charset-normalizer alone picks for both
FRENCH = (
    "Compte rendu de la réunion\n\n"
    "À la réunion de mardi, nous avons décidé de reporter la dépense. Très bien, à bientôt ; "
    "la tâche sera terminée après la fête.\n"
)
# cp1252's own characters in 0x80-0x9f: curly quotes, dashes, the euro sign
CP1252_NOTE = (
    "Meeting notes – Friday\n\nThe café on the quay charges €3.50 for a “flat white”; Zoë said it’s worth it.\n"
)
LATIN1_NOTE = "Grüße aus München. Die Straße ist schön, die Bäckerei öffnet um acht; Çà et là, señor.\n"


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        (CP1252_NOTE, "cp1252"),
        (FRENCH, "cp1252"),
        (LATIN1_NOTE, "latin-1"),
        (FRENCH, "latin-1"),
        ("Café at 9.\n", "latin-1"),  # short: charset-normalizer alone reads it as cp1006
        ("会議のメモ：来週の月曜日に予算を見直します。田中さんが資料を準備します。\n", "shift_jis"),
    ],
    ids=["cp1252-quotes-euro", "cp1252-french", "latin1-german", "latin1-french", "latin1-short", "shift-jis"],
)
def test_legacy_encodings_decode_to_the_original_text(text, encoding):
    data = text.encode(encoding)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    assert decode_text(data, "notes.txt") == text


def test_cp1252_and_latin1_documents_extract_verbatim():
    doc = extract(CP1252_NOTE.encode("cp1252"), "txt", "notes.txt")
    assert doc.text == CP1252_NOTE
    md = "# Réunion\n\n" + FRENCH
    doc = extract(md.encode("latin-1"), "md", "réunion.md")
    assert doc.text == md
    assert doc.section_at(doc.text.index("bientôt")).heading == "Réunion"


def test_a_cp1252_text_file_passes_the_probe(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_bytes(CP1252_NOTE.encode("cp1252"))
    assert probe(path).chars == len(CP1252_NOTE)


def test_utf8_and_utf16_boms_still_come_first():
    text = "Café “quoted” at 9.\n"
    assert decode_text(b"\xef\xbb\xbf" + text.encode("utf-8"), "a.txt") == text
    assert decode_text(text.encode("utf-16"), "a.txt") == text  # BOM + UTF-16: NUL bytes, yet text
    assert decode_text(b"\xfe\xff" + text.encode("utf-16-be"), "a.txt") == text


@pytest.mark.parametrize(
    "data",
    [
        b"\x00\x01binary\x00 bytes",  # valid UTF-8, with NULs
        b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01" + bytes(range(256)),  # a JPEG header: not UTF-8, NULs
        b"\x89PNG\r\n\x1a\n" + random.Random(7).randbytes(600).replace(b"\x00", b"\x01"),  # no NULs at all
    ],
    ids=["utf8-with-nul", "jpeg", "random-no-nul"],
)
def test_binary_files_are_still_refused_naming_the_file(data, tmp_path):
    with pytest.raises(MediaError, match=r"^photo\.txt: looks binary, not a text document"):
        decode_text(data, "photo.txt")
    for ext in ("txt", "md"):
        with pytest.raises(MediaError, match=rf"^photo\.{ext}: looks binary"):
            extract(data, ext, f"photo.{ext}")
    path = tmp_path / "photo.txt"
    path.write_bytes(data)
    with pytest.raises(MediaError, match=r"^photo\.txt: looks binary"):
        probe(path)


@pytest.mark.parametrize("data", [b"  \n\t\n", "\xa0 \n".encode("cp1252"), "\ufeff \n".encode("utf-8")])
def test_empty_text_is_refused_naming_the_file(data):
    with pytest.raises(MediaError, match=r"^blank\.md: document has no text$"):
        decode_text(data, "blank.md")


# ------------------------------------------------------------------------------------ HTML

PAGE = "<html><head>{meta}<title>{heading}</title></head><body><h1>{heading}</h1><p>{text}</p></body></html>"
FRENCH_PARAGRAPH = FRENCH.split("\n\n")[1].strip() + " “Oui.”"
JAPANESE_PARAGRAPH = "来週の月曜日に予算を見直します。田中さんが資料を準備します。"


@pytest.mark.parametrize(
    ("meta", "encoding", "heading", "text"),
    [
        ("", "cp1252", "Réunion", FRENCH_PARAGRAPH),  # nothing declared: the same guess as text documents
        ('<meta charset="windows-1252">', "cp1252", "Réunion", FRENCH_PARAGRAPH),
        # browsers read a latin-1 label as windows-1252, so the curly quotes survive
        (
            '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1">',
            "cp1252",
            "Réunion",
            FRENCH_PARAGRAPH,
        ),
        ('<meta charset="shift_jis">', "shift_jis", "会議", JAPANESE_PARAGRAPH),
        ("", "utf-16", "Réunion", FRENCH_PARAGRAPH),
    ],
    ids=["cp1252-undeclared", "cp1252-declared", "latin1-label", "shift-jis-declared", "utf-16-bom"],
)
def test_html_in_legacy_encodings(meta, encoding, heading, text):
    data = PAGE.format(meta=meta, heading=heading, text=text).encode(encoding)
    doc = extract(data, "html", "page.html", ExtractBudget(isolate=False))
    assert text in doc.text  # (trafilatura drops an <h1> that repeats the <title>)
