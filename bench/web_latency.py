"""What `grace serve` buys a person (issue 12): each figure beside its in-process / cold-CLI
baseline measured in the same run.

- warm search through the HTTP API (p50/p99) vs the same `Grace.search` in-process, warm;
- `grace search --json` wall with the server up (fast path) vs the cold in-process CLI
  (GRACE_NO_FASTPATH=1, the switch that turns the fast path off: "before" without git stash);
- `grace ask` (extractive) through the server: HTTP p50 and CLI wall, vs the cold CLI;
- `grace --help` and `grace status` wall: fast path vs GRACE_NO_FASTPATH=1.

The index: `--docs` generated Markdown documents of `--sentences` sentences each, ingested
through the pipeline (real MiniLM vectors; a few hundred chunks, minutes on 2 cores), then grown
to `--scale-to` chunks (default 100,000) over `--scale-sources` more sources by `scale_up`: real
sources in the state database and consent ledger, each with its own text key, whose rows are
noisy copies of the pipeline's real rows (100,000 chunks all through the pipeline take hours
here). The clip figure ingests a `--clip-hours` recording (speech fixtures, silence, a fixture
at the end) once and cites the end.

    .venv/bin/python bench/web_latency.py [--docs 40] [--sentences 60] [--queries 50] [--runs 5]
                                          [--scale-to 100000] [--scale-sources 1000]
                                          [--clip-hours 1] [--clip-only]
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import CONSENT_ME, emit, median, note, percentile

GRACE = str(Path(sys.executable).with_name("grace"))
WORDS = (
    "heron osprey kestrel budget rollout migration datacenter rollback release invoice contract hiring "
    "roadmap outage backup laptop office garden recipe holiday dentist meeting review launch schedule"
).split()
NAMES = ("Ines", "Priya", "Tomas", "Aiko", "Ravi", "Marta", "Jonas", "Lea")


def sentence(rng: random.Random) -> str:
    a, b, c = rng.sample(WORDS, 3)
    return f"{rng.choice(NAMES)} said the {a} {b} depends on the {c} plan before {rng.randint(1, 28)} May."


def build(home: Path, docs: int, sentences: int) -> int:
    from grace_pipelines.api import Grace

    rng = random.Random(12)
    drop = home.parent / "drop"
    drop.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(docs):
        path = drop / f"notes_{i:04d}.md"
        body = "\n".join(sentence(rng) for _ in range(sentences))
        path.write_text(f"# Notes {i}\n\n{body}\n", encoding="utf-8")
        path.with_name(path.name + ".consent.json").write_text(json.dumps(CONSENT_ME), encoding="utf-8")
        paths.append(path)
    grace = Grace(home)
    outcomes = grace.ingest(paths, wait=True)
    bad = [o for o in outcomes if o.state != "searchable"]
    assert not bad, bad[0].why
    return int(grace.clients.chunk_index.count())


def scale_up(home: Path, total: int, sources: int, seed: int = 5) -> dict[str, Any]:
    """Grow the real index to `total` chunks over `sources` more sources (documented shortcut:
    100,000 chunks through the pipeline take hours here). Each added source is a real one in the
    state database (registered, searchable, with its `me` grant in the consent ledger) with its
    own text key in the blob store; its rows are copies of the pipeline's real rows: the chunk
    text and sentence vectors re-sealed under that source's key and row, the blind keywords as
    they are, and the vector the real MiniLM vector plus gaussian noise of norm 0.35 (cosine
    about 0.94 to it), normalised, so neighbours are near but not equal. Then the maintenance
    Grace runs off-peak (`ChunkIndex.maintain`: compaction, and the IVF_HNSW_SQ index once past
    `ann_min_rows`)."""
    import hashlib

    import numpy as np
    import pyarrow as pa

    from grace_pipelines.api import Grace
    from grace_pipelines.db.schema import Stage
    from grace_pipelines.search import sentences
    from grace_pipelines.stores.blobs import open_bytes, open_text, seal_bytes, seal_text
    from grace_pipelines.stores.vectors import SENTENCES_COLUMN, chunks_schema

    grace = Grace(home)
    index, blobs, db = grace.clients.chunk_index, grace.clients.blob_store, grace.db
    table = index.table()
    pool = table.to_arrow().to_pylist()
    have = len(pool)
    if total <= have:
        return {"added_rows": 0, "added_sources": 0}
    for row in pool:  # open each real row once
        key = blobs.text_key(row["source_key"])
        row["text"] = open_text(key, row["text_enc"], f"{row['source_key']}:{row['chunk_index']}")
        row["sv"] = open_bytes(key, row[SENTENCES_COLUMN], sentences.aad_for(row["source_key"], row["chunk_index"]))
    template = db.get_source(pool[0]["source_key"])
    dim = len(pool[0]["vector"])
    rng = np.random.default_rng(seed)
    per_source = max(1, (total - have) // sources)
    started = time.perf_counter()
    batch: list[dict[str, Any]] = []
    added = 0
    for s in range(sources):
        key = hashlib.sha256(f"bench-scale-{s}".encode()).hexdigest()[:16]
        db.register_source(
            key=key,
            sha256=hashlib.sha256(key.encode()).hexdigest(),
            filename=f"scaled_{s:05d}.md",
            title=f"scaled_{s:05d}.md",
            kind=template.kind,
            ext=template.ext,
            origin=template.origin,
            size=template.bytes,
            duration_s=None,
            participants=["me"],
            inbox_path=None,
        )
        db.append_consent(
            source_key=key, party="me", scopes=["transcribe", "index"], action="grant", method="bench", actor="bench"
        )
        db.update_source(key, stage=Stage.SEARCHABLE, embedding_model=grace.clients.embedder.code_version())
        text_key = blobs.text_key(key, create=True)
        picks = rng.integers(0, have, size=per_source)
        noise = rng.normal(size=(per_source, dim)).astype(np.float32)
        noise *= 0.35 / np.linalg.norm(noise, axis=1, keepdims=True)
        for j, (pick, jitter) in enumerate(zip(picks, noise)):
            real = pool[int(pick)]
            vector = np.asarray(real["vector"], dtype=np.float32) + jitter
            batch.append(
                {
                    **{k: real[k] for k in ("kind", "start_s", "end_s", "line_start", "line_end", "page", "moments")},
                    **{k: real[k] for k in ("keywords", "model", "model_version")},
                    "heading_enc": None,  # sealed under the real source's key: left out
                    "id": f"{key}:{j}",
                    "source_key": key,
                    "chunk_index": j,
                    "title": f"scaled_{s:05d}.md",
                    "text_enc": seal_text(text_key, real["text"], f"{key}:{j}"),
                    SENTENCES_COLUMN: seal_bytes(text_key, real["sv"], sentences.aad_for(key, j)),
                    "vector": (vector / np.linalg.norm(vector)).tolist(),
                }
            )
        if len(batch) >= 20_000 or s == sources - 1:
            table.add(pa.Table.from_pylist(batch, schema=chunks_schema(dim)))
            added += len(batch)
            batch = []
    write_s = time.perf_counter() - started
    maintained = index.maintain()
    return {
        "added_rows": added,
        "added_sources": sources,
        "rows_per_added_source": per_source,
        "write_s": round(write_s, 1),
        "maintain": maintained,
    }


def wall(args: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run([GRACE, *args], env=env, capture_output=True, text=True)
    took = time.perf_counter() - started
    assert proc.returncode == 0, proc.stderr[-2000:]
    return took


def time_python(code: str, env: dict[str, str]) -> float:
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return time.perf_counter() - started


def walls(args: list[str], env: dict[str, str], runs: int) -> dict[str, float]:
    values = [wall(args, env) for _ in range(runs)]
    return {"median_s": round(median(values), 3), "min_s": round(min(values), 3), "runs": runs}


class Api:
    def __init__(self, home: Path) -> None:
        info = json.loads((home / "web" / "server.json").read_text())
        self.conn = http.client.HTTPConnection(info["host"], info["port"], timeout=60)
        self.headers = {"Authorization": "Bearer " + (home / "web" / "token").read_text().strip()}

    def get(self, path: str) -> tuple[float, bytes]:
        started = time.perf_counter()
        self.conn.request("GET", path, headers=self.headers)
        reply = self.conn.getresponse()
        body = reply.read()
        assert reply.status == 200, body[:500]
        return (time.perf_counter() - started) * 1000, body

    def post(self, path: str, body: dict[str, Any]) -> float:
        started = time.perf_counter()
        self.conn.request(
            "POST", path, body=json.dumps(body), headers={**self.headers, "Content-Type": "application/json"}
        )
        reply = self.conn.getresponse()
        data = reply.read()
        assert reply.status == 200, data[:500]
        return (time.perf_counter() - started) * 1000


def clip_bench(root: Path, hours: float, runs: int) -> dict[str, Any]:
    """First audio byte of GET /api/v1/clip for a citation near the end of a `hours`-long
    recording (the speech fixtures, then silence, then a fixture again), against `Grace.clip`
    in-process (warm) and the cold `grace play --out` wall."""
    import numpy as np
    from _common import SR, decode, write_consent, write_wav

    from grace_pipelines.api import Grace

    home = root / "clip" / "grace"
    env = {k: v for k, v in os.environ.items() if not k.startswith("GRACE_") and k != "DAGSTER_HOME"}
    env["GRACE_HOME"] = str(home)
    head = np.concatenate([decode("standup.mp3"), np.zeros(SR, dtype=np.float32)])
    tail = decode("migration.wav")
    silence = np.zeros(max(0, int(hours * 3600 * SR) - len(head) - len(tail)), dtype=np.float32)
    media = root / "clip" / "long_meeting.wav"
    media.parent.mkdir(parents=True, exist_ok=True)
    write_wav(media, np.concatenate([head, silence, tail]))
    write_consent(media)
    note(f"ingesting a {hours:g} h recording ({media.stat().st_size / 1e6:.0f} MB)")
    started = time.perf_counter()
    grace = Grace(home)
    (outcome,) = grace.ingest([media], wait=True)
    ingest_s = time.perf_counter() - started
    assert outcome.state == "searchable", outcome.why
    found = grace.search("migrate the database to Postgres, downtime", k=20)
    cited = max((r for r in found if r.start_s is not None), key=lambda r: r.start_s)
    assert cited.start_s > hours * 3600 / 2, f"the cited moment is not near the end: {cited.citation}"
    in_process = []
    for _ in range(runs):
        t = time.perf_counter()
        grace.clip(cited.citation, source_key=cited.source_key)
        in_process.append((time.perf_counter() - t) * 1000)
    cold = [wall(["play", cited.citation, "--out", str(root / "clip" / "c.wav")], env) for _ in range(runs)]
    server = subprocess.Popen(
        [GRACE, "serve", "--port", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    first_byte = []
    try:
        api = wait_ready(home, server)
        from urllib.parse import urlencode

        path = "/api/v1/clip?" + urlencode({"citation": cited.citation, "source": cited.source_key})
        for _ in range(runs + 1):
            t = time.perf_counter()
            api.conn.request("GET", path, headers=api.headers)
            reply = api.conn.getresponse()
            reply.read(1)
            first_byte.append((time.perf_counter() - t) * 1000)
            assert reply.status == 200 and reply.getheader("content-type") == "audio/wav"
            reply.read()
    finally:
        server.terminate()
        server.wait(30)
    return {
        "recording_s": round((len(head) + len(silence) + len(tail)) / SR),
        "ingest_s": round(ingest_s, 1),
        "citation_start_s": cited.start_s,
        "http_first_byte_ms": {**ms_stats(first_byte[1:]), "first_ms": round(first_byte[0], 1)},
        "in_process_clip_ms": ms_stats(in_process),
        "cold_cli_play_wall_s": round(median(cold), 3),
        "target_first_byte_ms": 300,
    }


def wait_ready(home: Path, server: subprocess.Popen, timeout_s: float = 300) -> Api:
    """The server's API once it answers /health (server.json is written before the models warm
    and the socket listens: a CLI then falls back in-process)."""
    deadline = time.monotonic() + timeout_s
    while True:
        assert server.poll() is None, server.stderr.read().decode()[-2000:] if server.stderr else "exited"
        assert time.monotonic() < deadline, "grace serve did not start"
        if (home / "web" / "server.json").exists():
            api = Api(home)
            try:
                api.get("/api/v1/health")
                return api
            except OSError:
                api.conn.close()
        time.sleep(0.2)


def ms_stats(values: list[float]) -> dict[str, float]:
    return {"p50_ms": round(percentile(values, 50), 2), "p99_ms": round(percentile(values, 99), 2), "n": len(values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=40)
    parser.add_argument("--sentences", type=int, default=60)
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--scale-to", type=int, default=100_000, help="Chunks in the index (0: as built).")
    parser.add_argument("--scale-sources", type=int, default=1000, help="Sources the added chunks belong to.")
    parser.add_argument("--clip-hours", type=float, default=1.0, help="0: skip the clip figure.")
    parser.add_argument("--clip-only", action="store_true", help="Only the clip figure.")
    opts = parser.parse_args()
    if opts.clip_only:
        with tempfile.TemporaryDirectory() as tmp:
            emit("web_latency_clip", {"clip": clip_bench(Path(tmp), opts.clip_hours, opts.runs)})
        return
    rng = random.Random(7)
    queries = [f"{rng.choice(WORDS)} {rng.choice(WORDS)} plan" for _ in range(opts.queries)]
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(tmp) / "grace"
        env = {k: v for k, v in os.environ.items() if not k.startswith("GRACE_") and k != "DAGSTER_HOME"}
        env["GRACE_HOME"] = str(home)
        os.environ.update({"GRACE_HOME": str(home)})
        note(f"building {opts.docs} documents x {opts.sentences} sentences")
        started = time.perf_counter()
        chunks = build(home, opts.docs, opts.sentences)
        build_s = time.perf_counter() - started
        note(f"scaling the index to {opts.scale_to} chunks over {opts.scale_sources} more sources")
        scaled = scale_up(home, opts.scale_to, opts.scale_sources) if opts.scale_to else None

        from grace_pipelines.api import Grace

        grace = Grace(home)
        grace.search(queries[0], k=5)  # warm
        in_process = []
        for q in queries:
            t = time.perf_counter()
            grace.search(q, k=5)
            in_process.append((time.perf_counter() - t) * 1000)

        cold = {**env, "GRACE_NO_FASTPATH": "1"}
        note("cold CLI (GRACE_NO_FASTPATH=1)")
        eager = [  # `grace --help` as it was: the CLI imported the facade (Dagster, LanceDB...) eagerly
            time_python(
                "import sys, grace_pipelines.api\nfrom grace_pipelines.cli import main\n"
                "sys.argv = ['grace', '--help']\ntry:\n    main()\nexcept SystemExit:\n    pass",
                cold,
            )
            for _ in range(opts.runs)
        ]
        before = {
            "help_eager_imports": {"median_s": round(median(eager), 3), "min_s": round(min(eager), 3)},
            "help": walls(["--help"], cold, opts.runs),
            "status": walls(["status", "--json"], cold, opts.runs),
            "search": walls(["search", queries[0], "--json"], cold, opts.runs),
            "ask": walls(["ask", queries[1], "--json"], cold, opts.runs),
        }
        note("starting grace serve")
        server = subprocess.Popen(
            [GRACE, "serve", "--port", "0"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        try:
            api = wait_ready(home, server)
            from urllib.parse import quote

            api.get(f"/api/v1/search?q={quote(queries[0])}")  # warm
            http_search = [api.get(f"/api/v1/search?q={quote(q)}&k=5")[0] for q in queries]
            http_ask = [api.post("/api/v1/ask", {"question": q, "k": 5}) for q in queries[: max(5, opts.queries // 2)]]
            note("CLI with the server up")
            after = {
                "help": walls(["--help"], env, opts.runs),
                "status": walls(["status", "--json"], env, opts.runs),
                "search": walls(["search", queries[0], "--json"], env, opts.runs),
                "ask": walls(["ask", queries[1], "--json"], env, opts.runs),
            }
        finally:
            server.terminate()
            server.wait(30)
        clip = clip_bench(Path(tmp), opts.clip_hours, opts.runs) if opts.clip_hours > 0 else None
    result = {
        "index": {
            "documents": opts.docs,
            "pipeline_chunks": chunks,
            "build_s": round(build_s, 1),
            "scaled": scaled,
            "chunks": chunks + (scaled or {}).get("added_rows", 0),
        },
        "http_search_warm": ms_stats(http_search),
        "in_process_search_warm": ms_stats(in_process),
        "http_ask_extractive": ms_stats(http_ask),
        "cli_wall_fast_path": after,
        "cli_wall_cold_in_process": before,
        "speedup_cold_over_fast": {k: round(before[k]["median_s"] / after[k]["median_s"], 1) for k in after},
        "help_speedup_over_eager_imports": round(
            before["help_eager_imports"]["median_s"] / after["help"]["median_s"], 1
        ),
        "targets": {
            "http_search_p50_ms": 30,
            "http_search_p99_ms": 80,
            "cli_search_s": 0.3,
            "ask_p50_ms": 200,
            "help_status_s": 1.0,
        },
        "clip": clip,
        "not_measured": ["100,000 chunks all through the pipeline: see scale_up (copies of its real rows)"],
    }
    emit("web_latency", result)


if __name__ == "__main__":
    main()
