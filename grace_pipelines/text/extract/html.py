"""HTML: trafilatura picks the main text (navigation, sidebars, footers and cookie banners are
dropped) and keeps headings, each of which starts a section. It never fetches anything for a
string it is given.

Why trafilatura alone: its cascade already falls back from its own extractor to readability,
jusText and a baseline pass over the page (and retries a short result in its recall mode), so
the stdlib `html.parser` reader that ran when it found nothing is gone. What is left here are
trafilatura calls:
- a bare fragment (`<p>note</p>`, no `<html>`) trafilatura refuses as "not HTML"; it is
  wrapped in `<html><body>`, as trafilatura's documentation advises;
- when no heading or paragraph came out, one more pass in recall mode with navigation, header,
  footer, aside and forms pruned first (`prune_xpath`), this time also taking text left loose
  in `<main>` (a page whose text sits directly in `<body>`): what the stdlib reader was for;
- then the page is refused with a `MediaError`. Loose text is not taken from the first pass:
  there it is trafilatura's dump of the whole body, navigation included.

The bytes are decoded here, not by trafilatura: a BOM (UTF-8, UTF-16) first, then UTF-8, then
the charset the page declares, then the same legacy-encoding guess as text documents
(charset-normalizer, `media.decode_text`). trafilatura's own decode ignores the declared charset
and takes charset-normalizer's first guess, which read a French cp1252 page as cp1250 ("Trčs").

Size and nesting depth are checked before this module sees the page
(`grace_pipelines.text.budget.check_html`): trafilatura took 1.4 s on 0.9 MB of ordinary
markup, 19 s on 4.5 MB, and 10 MB of nested HTML ran over 600 s at 1.2 GB.
"""

from __future__ import annotations

import codecs
import re
import xml.etree.ElementTree as ET

from grace_pipelines.ingest.media import MediaError, decode_text
from grace_pipelines.text.extract.common import (
    BLOCK_SEPARATOR,
    Block,
    Extracted,
    assemble,
    squash,
)

HTML_EXTS = frozenset({"html", "htm", "xhtml"})

_BOMS = (codecs.BOM_UTF8, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_DECLARED_CHARSET = re.compile(rb"""charset\s*=\s*["']?([A-Za-z0-9_\-]+)""", re.IGNORECASE)
# the WHATWG Encoding Standard (what browsers do) reads these labels as windows-1252
_READ_AS_CP1252 = frozenset({"ascii", "iso8859-1"})
# what the last pass drops before trafilatura reads the page: its loose-text dump would
# otherwise be the navigation and footer of a page without paragraphs
_BOILERPLATE_XPATH = ["//nav", "//header", "//footer", "//aside", "//form", "//noscript", "//template"]
_TRAFILATURA_OPTIONS = {
    "output_format": "xml",
    "include_comments": False,
    "include_tables": True,
    "include_links": False,
    "include_images": False,
    "include_formatting": False,
    "with_metadata": False,
    "deduplicate": False,
}


def extract_html(data: bytes, name: str) -> Extracted:
    if b"\x00" in data[:4096] and not data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise MediaError(f"{name}: looks binary, not an HTML page")
    page = _decode_html(data)
    xml = _trafilatura(page)
    if xml is None:  # "not HTML": a fragment without <html>, which trafilatura asks callers to wrap
        page = f"<html><body>{page}</body></html>"
        xml = _trafilatura(page)
    blocks = _trafilatura_blocks(xml) if xml else []
    if not blocks:  # the last pass: recall mode, boilerplate elements pruned, loose text taken
        xml = _trafilatura(page, favor_recall=True, prune_xpath=_BOILERPLATE_XPATH)
        blocks = _trafilatura_blocks(xml, loose=True) if xml else []
    if not blocks:
        raise MediaError(f"{name}: no readable main text found in the HTML page")
    return assemble(blocks, BLOCK_SEPARATOR, "html", name)


def _trafilatura(page: str, **options) -> str | None:
    import trafilatura

    try:
        return trafilatura.extract(page, **_TRAFILATURA_OPTIONS, **options)
    except MemoryError:
        raise
    except Exception:  # noqa: BLE001 - trafilatura is defensive, garbage may still trip lxml
        return None


def _decode_html(data: bytes) -> str:
    """The page as text: BOM, UTF-8, the declared charset, the legacy guess; never refuses
    (undecodable bytes become U+FFFD, and trafilatura then finds no text in them or some)."""
    if not data.startswith(_BOMS):
        try:
            return data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        for encoding in _declared_encodings(data):
            try:
                return data.decode(encoding)
            except (LookupError, UnicodeDecodeError):  # LookupError: "hex", "rot13" are no text encodings
                continue
    try:
        return decode_text(data, "page")  # BOMs, then charset-normalizer's guess
    except MediaError:  # binary past the first 4 KB, or only whitespace
        return data.decode("utf-8", errors="replace")


def _declared_encodings(data: bytes) -> tuple[str, ...]:
    """The codec a `charset=` in the first 2 KB names (a <meta> tag), windows-1252 first for latin-1 / ASCII."""
    match = _DECLARED_CHARSET.search(data[:2048])
    if not match:
        return ()
    try:
        declared = codecs.lookup(match.group(1).decode("ascii")).name
    except LookupError:
        return ()
    return ("cp1252", declared) if declared in _READ_AS_CP1252 else (declared,)


def _trafilatura_blocks(xml: str, *, loose: bool = False) -> list[Block]:
    """Heading and paragraph blocks of trafilatura's XML; with `loose`, text it left loose in
    <main> (its dump of a page with no paragraphs) when there are no blocks."""
    try:
        root = ET.fromstring(xml)
    except ET.ParseError:
        return []
    main = root.find("main")
    if main is None:
        main = root
    blocks: list[Block] = []
    heading: list[str | None] = [None]

    def walk(el: ET.Element) -> None:
        for child in el:
            tag = child.tag
            if tag == "head":
                title = squash("".join(child.itertext()))
                if title:
                    heading[0] = title
                    blocks.append((title, None, title, True))
            elif tag in {"p", "quote", "code", "list", "table"}:
                text = _render_xml_block(child).strip()
                if text:
                    blocks.append((text, None, heading[0], False))
            elif tag in {"graphic", "comments"}:
                continue
            else:
                walk(child)

    walk(main)
    if loose and not blocks:
        text = squash("".join(main.itertext()))
        if text:
            blocks.append((text, None, None, False))
    return blocks


def _render_xml_block(el: ET.Element) -> str:
    """Text of a trafilatura block: <lb/> is a line break, list items and table rows lines."""
    tag = el.tag
    if tag == "list":
        items = [_render_xml_block(item).strip() for item in el if item.tag == "item"]
        return "\n".join(f"- {item}" for item in items if item)
    if tag == "table":
        rows = []
        for row in el.iter("row"):
            cells = [squash(_render_xml_block(cell)) for cell in row if cell.tag in {"cell", "head"}]
            if any(cells):
                rows.append(" | ".join(cells))
        return "\n".join(rows)
    if tag == "code":
        return "".join(el.itertext())
    out: list[str] = [el.text or ""]
    for child in el:
        if child.tag == "lb":
            out.append("\n")
        elif child.tag in {"list", "table"}:
            out.append("\n" + _render_xml_block(child) + "\n")
        else:
            out.append(_render_xml_block(child))
        out.append(child.tail or "")
    lines = [squash(line) for line in "".join(out).split("\n")]
    return "\n".join(line for line in lines if line)
