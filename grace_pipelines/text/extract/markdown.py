"""Markdown: the decoded text kept exactly, its headings found by markdown-it-py (CommonMark).

Why the text is kept character for character: Markdown is cited by line as well as by heading
(`notes.md § Risks, lines 3-9`), so nothing is rendered; only where the headings are is read
from the parse. Each top-level heading (ATX `#`, `##`, ... and setext `===` / `---`
underlines) starts a section at the first character of its first line.

Why markdown-it-py and not regexes: the hand-written ATX / setext / fence rules it replaced
(64 lines) had to re-implement CommonMark's block rules one case at a time; the parser knows
fenced and indented code, HTML blocks, lists and block quotes (a `#` line in any of them is no
section heading) and multi-line setext headings. A heading's title is its inline content read
as text: "# The **Q3** plan" is titled "The Q3 plan", a code span keeps its text, not its
backticks. A YAML front matter block at the top (`---` to `---`, as Jekyll, Hugo and Obsidian
write it) is metadata and left out of the parse.

Cost, measured (one core, in this process like before: Markdown is not parsed in the isolated
child): block structure only, with inline parsing switched off and each heading's text parsed
alone (3x faster than a full parse). 10 MB of mixed notes (headings, prose, lists, code) take
5.7 s at 365 MB peak RSS (the regexes: 0.7 s, 202 MB); 50 MB of prose 12 s; one-character
lines are the worst case, about 9 microseconds a line (5 MB: 25 s at 600 MB; the regexes 4.2 s).
"""

from __future__ import annotations

import functools
import re

from grace_pipelines.ingest.media import decode_text
from grace_pipelines.text.extract.common import Extracted, contiguous

MARKDOWN_EXTS = frozenset({"md", "markdown"})

# markdown-it's own line breaks (its `normalize` rule turns \r\n and \r into \n before counting
# lines), so token.map line numbers index the lines of the original text
_LINE_BREAK = re.compile(r"\r\n?|\n")
# inline tokens whose content is read text; markup (emphasis, link brackets, raw HTML) is not
_TEXT_TOKENS = frozenset({"text", "text_special", "code_inline", "image"})


@functools.cache
def _parsers():
    """(block parser, inline parser): block structure without inline parsing (3x faster on
    prose; only the headings' text is wanted), and the full parser for a heading's text."""
    from markdown_it import MarkdownIt

    return MarkdownIt("commonmark").disable("inline"), MarkdownIt("commonmark")


def markdown_headings(text: str) -> list[tuple[int, int, str]]:
    """(char offset of the heading's first line, level, title) for each top-level Markdown heading."""
    blocks, inline = _parsers()
    env: dict = {}  # link reference definitions, so `# [Plan][p]` reads "Plan"
    line, offset = 0, _front_matter_end(text)
    tokens = blocks.parse(text[offset:] if offset else text, env)
    found: list[tuple[int, int, str]] = []
    for i, token in enumerate(tokens):
        if token.type != "heading_open" or token.level != 0 or token.map is None:
            continue
        title = _read_text(inline.parseInline(tokens[i + 1].content, env))
        if not title:
            continue  # `#` alone: an empty heading names nothing
        while line < token.map[0]:  # headings come in line order: walk forward to the first line
            offset = _LINE_BREAK.search(text, offset).end()
            line += 1
        found.append((offset, int(token.tag[1:]), title))
    return found


def _front_matter_end(text: str) -> int:
    """Where a YAML front matter block ends (a `---` first line to the next `---` or `...` line,
    as Jekyll, Hugo and Obsidian write it), or 0. CommonMark reads such a block as a setext
    heading titled with all of its lines; it is metadata, and is left out of the parse."""
    first = _LINE_BREAK.search(text)
    if first is None or text[: first.start()].rstrip() != "---":
        return 0
    start = first.end()
    for brk in _LINE_BREAK.finditer(text, start):
        if text[start : brk.start()].rstrip() in ("---", "..."):
            return brk.end()
        start = brk.end()
    return len(text) if text[start:].rstrip() in ("---", "...") else 0


def _read_text(tokens) -> str:
    words: list[str] = []
    for token in tokens:
        for child in token.children or ():
            if child.type in _TEXT_TOKENS:
                words.append(child.content)
            elif child.type in ("softbreak", "hardbreak"):
                words.append(" ")
    return " ".join("".join(words).split())


def extract_markdown(data: bytes, name: str) -> Extracted:
    text = decode_text(data, name)
    headings = markdown_headings(text)
    starts: list[tuple[int, str | None]] = []
    if not headings or text[: headings[0][0]].strip():
        starts.append((0, None))
    starts += [(offset, title) for offset, _, title in headings]
    if starts[0][0] > 0:  # only blank lines before the first heading: they belong to it
        starts[0] = (0, starts[0][1])
    return Extracted(text, contiguous(starts, len(text)), "markdown")
