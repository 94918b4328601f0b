"""Custom vocabulary: name recall of Whisper with and without the hint (grace.toml `vocabulary`
plus the named speakers, passed as faster-whisper `hotwords`).

Fixture: tests/fixtures/speakers/names.ogg, two espeak-ng voices saying sentences full of
names and terms the bundled tiny.en does not know (Siobhan, Okonkwo, Tadhg, Reykjavik,
LanceDB, ...). The reference text is the script in tests/fixtures/make_conversations.py. Name
recall = name occurrences in the reference found (case-insensitively, as whole words) in the
transcript; also reported: names in the transcript that the reference does not have at that
count (insertions, a hint's risk), and the seconds of each run. Both runs use the same warm
model, interleaved, 3 rounds (the transcripts are deterministic; the seconds are medians).
"""

from __future__ import annotations

import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FIXTURES, emit, median, note  # noqa: E402

sys.path.insert(0, str(FIXTURES))
from make_conversations import CONVERSATIONS  # noqa: E402

NAMES = [
    "Siobhan",
    "Okonkwo",
    "Priya",
    "Tadhg",
    "Reykjavik",
    "Marco",
    "Dagster",
    "Nguyen",
    "Aoife",
    "Ximena",
    "LanceDB",
]
ROUNDS = 3


def counts(text: str) -> Counter:
    found = Counter()
    for name in NAMES:
        found[name] = len(re.findall(rf"\b{re.escape(name)}\b", text, flags=re.IGNORECASE))
    return found


def main() -> None:
    from dataclasses import replace

    from grace_pipelines.engines.whisper import FasterWhisperClient

    audio = (FIXTURES / "speakers" / "names.ogg").read_bytes()
    reference = " ".join(s for _, sentences in CONVERSATIONS["names"] for s in sentences)
    expected = counts(reference)
    plain = FasterWhisperClient(model="bundled", device="cpu", compute_type="int8", cpu_threads=2)
    hinted = replace(plain, vocabulary=tuple(NAMES))
    plain.transcribe(audio, "names.ogg")  # warm the model
    runs: dict[str, list[float]] = {"without": [], "with": []}
    texts: dict[str, str] = {}
    for _ in range(ROUNDS):
        for label, client in (("without", plain), ("with", hinted)):
            t = time.perf_counter()
            result = client.transcribe(audio, "names.ogg")
            runs[label].append(time.perf_counter() - t)
            texts[label] = " ".join(s["text"] for s in result.segments)
    out = {}
    total = sum(expected.values())
    for label, text in texts.items():
        got = counts(text)
        hits = sum(min(got[n], expected[n]) for n in NAMES)
        out[label] = {
            "name_recall": round(hits / total, 4),
            "names_found": hits,
            "insertions": sum(max(got[n] - expected[n], 0) for n in NAMES),
            "per_name": {n: f"{min(got[n], expected[n])}/{expected[n]}" for n in NAMES},
            "seconds": round(median(runs[label]), 3),
        }
        note(f"{label}: recall {out[label]['name_recall']}, {text[:160]!r}")
    emit(
        "vocabulary_recall",
        {
            "name_occurrences": total,
            "without_hint": out["without"],
            "with_hint": out["with"],
            "recall_gain": round(out["with"]["name_recall"] - out["without"]["name_recall"], 4),
            "cost_ratio": round(out["with"]["seconds"] / out["without"]["seconds"], 3),
        },
    )


if __name__ == "__main__":
    main()
