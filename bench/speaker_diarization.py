"""Speaker turns: DER, speaker count, the voice-match threshold, and the cost against transcription.

On every fixture in tests/fixtures/speakers (espeak-ng conversations of 2-4 voices with exact
turns, crosstalk, and the real two-speaker recording from pyannote-audio's wheel):
- DER with a 0.25 s collar two ways: md-eval's (0.25 s each side of every reference boundary)
  and pyannote.metrics' (`collar=0.25`: 0.125 s each side), optimal speaker mapping
  (grace_pipelines/audio/der.py);
- whether the speaker count is right;
- the speaker stage's seconds (decode, VAD, fbank, CAM++, clustering: OfflineSpeakers.diarize)
  against the raw engine transcribing the same file (faster-whisper tiny.en as the Transcriber
  resource runs it), both warm, medians of 3 interleaved runs: the "fraction of transcription".
Then the calibration of VOICE_MATCH: every pair of speaker voices (per-recording centroids) from
different recordings, labelled same or different person from the reference turns; reports both
distributions, the threshold in the gap (midpoint of the highest different-pair and lowest
same-pair cosine, or the equal-error point when they overlap), and the shipped threshold's
false accept / false reject counts.
"""

from __future__ import annotations

import io
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import FIXTURES, emit, median, note  # noqa: E402

SPEAKERS = FIXTURES / "speakers"
ROUNDS = 3


def references() -> dict[str, list[tuple[float, float, str]]]:
    from grace_pipelines.audio.der import read_rttm

    files = json.loads((SPEAKERS / "turns.json").read_text())["files"]
    refs = {name: [(t["start"], t["end"], t["speaker"]) for t in turns] for name, turns in files.items()}
    refs["real_two_speakers.flac"] = read_rttm((SPEAKERS / "real_two_speakers.rttm").read_text())
    return refs


def main() -> None:
    from faster_whisper import decode_audio

    from grace_pipelines.audio.der import der
    from grace_pipelines.audio.profiles import VOICE_MATCH
    from grace_pipelines.engines.transcription import Transcription
    from grace_pipelines.engines.whisper import FasterWhisperClient
    from grace_pipelines.resources.speakers import OfflineSpeakers

    refs = references()
    whisper = FasterWhisperClient(model="bundled", device="cpu", compute_type="int8", cpu_threads=2)
    speakers = OfflineSpeakers()
    files, voices = {}, []
    for name, ref in refs.items():
        audio = (SPEAKERS / name).read_bytes()
        duration = len(decode_audio(io.BytesIO(audio), sampling_rate=16000)) / 16000
        stub = Transcription(
            segments=[], language="en", language_probability=1.0, duration_s=duration, engine="x", model="x"
        )
        whisper.transcribe(audio, name)  # warm both
        found = speakers.diarize(audio, name, stub)
        asr_s, spk_s = [], []
        for _ in range(ROUNDS):
            t = time.perf_counter()
            whisper.transcribe(audio, name)
            asr_s.append(time.perf_counter() - t)
            t = time.perf_counter()
            found = speakers.diarize(audio, name, stub)
            spk_s.append(time.perf_counter() - t)
        hyp = [(t.start, t.end, t.speaker) for t in found.turns]
        md_eval = der(ref, hyp, collar=0.25)
        pyannote_style = der(ref, hyp, collar=0.125)
        files[name] = {
            "audio_s": round(duration, 2),
            "reference_speakers": md_eval.reference_speakers,
            "found_speakers": md_eval.hypothesis_speakers,
            "count_right": md_eval.reference_speakers == md_eval.hypothesis_speakers,
            "der_collar_0_25_each_side": round(md_eval.der, 4),
            "der_pyannote_collar_0_25": round(pyannote_style.der, 4),
            "missed": round(md_eval.missed, 4),
            "false_alarm": round(md_eval.false_alarm, 4),
            "confusion": round(md_eval.confusion, 4),
            "speakers_s": round(median(spk_s), 3),
            "transcribe_s": round(median(asr_s), 3),
            "fraction_of_transcription": round(median(spk_s) / median(asr_s), 3),
            "speakers_rtf": round(median(spk_s) / duration, 4),
        }
        note(f"{name}: {files[name]}")
        for label, centroid in found.centroids.items():
            overlap: dict[str, float] = {}
            for t in found.turns:
                if t.speaker != label:
                    continue
                for start, end, who in ref:
                    o = min(t.end, end) - max(t.start, start)
                    if o > 0:
                        overlap[who] = overlap.get(who, 0.0) + o
            if overlap:
                person = max(overlap, key=overlap.get)
                # the espeak-ng people share names across files; the real recording's do not
                voices.append((name, person if name.endswith(".ogg") else f"{name}:{person}", centroid))
    same, different = [], []
    for i, (fa, pa, va) in enumerate(voices):
        for fb, pb, vb in voices[i + 1 :]:
            if fa != fb:
                (same if pa == pb else different).append(float(va @ vb))
    same, different = sorted(same), sorted(different)
    if same and different and max(different) < min(same):
        chosen = (max(different) + min(same)) / 2
    else:
        grid = np.linspace(0, 1, 1001)
        errs = [abs(np.mean(np.array(different) >= g) - np.mean(np.array(same) < g)) for g in grid]
        chosen = float(grid[int(np.argmin(errs))])
    model = (
        Path(__file__).resolve().parents[1] / "grace_pipelines" / "models" / "campplus" / "campplus_cn_en_common.onnx"
    )
    ders = [f["der_collar_0_25_each_side"] for f in files.values()]
    emit(
        "speaker_diarization",
        {
            "files": files,
            "real_speech_der": files["real_two_speakers.flac"]["der_collar_0_25_each_side"],
            "real_speech_der_pyannote_style": files["real_two_speakers.flac"]["der_pyannote_collar_0_25"],
            "median_der": round(median(ders), 4),
            "count_right": sum(f["count_right"] for f in files.values()),
            "count_files": len(files),
            "median_fraction_of_transcription": round(
                median([f["fraction_of_transcription"] for f in files.values()]), 3
            ),
            "calibration": {
                "same_pairs": len(same),
                "same_min": round(min(same), 4) if same else None,
                "same_median": round(median(same), 4) if same else None,
                "different_pairs": len(different),
                "different_max": round(max(different), 4) if different else None,
                "different_median": round(median(different), 4) if different else None,
                "threshold_from_pairs": round(chosen, 4),
                "threshold_shipped": VOICE_MATCH,
                "false_accepts_at_shipped": sum(d >= VOICE_MATCH for d in different),
                "false_rejects_at_shipped": sum(s < VOICE_MATCH for s in same),
            },
            "model_bytes": model.stat().st_size,
        },
    )


if __name__ == "__main__":
    main()
