"""Plain text: decoded like any text document (`media.decode_text`), kept verbatim, one section.

Why a module of its own: every format the package reads has one, so `extract` dispatches the
same way for all of them; a .txt file has no structure to cite beyond its lines, so it is one
untitled section (a `#` line in a .txt is text, not a heading). The size check runs before the
decode (`grace_pipelines.text.budget.check_text_size`), in this process: the decode is one
linear pass over at most `extract_max_bytes`.
"""

from __future__ import annotations

from grace_pipelines.ingest.media import decode_text
from grace_pipelines.text.extract.common import Extracted, Section

TEXT_EXTS = frozenset({"txt", "text"})


def extract_plain(data: bytes, name: str) -> Extracted:
    text = decode_text(data, name)
    return Extracted(text, [Section(0, len(text))], "text")
