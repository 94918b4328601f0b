"""Embedder port, one subclass per engine: `MiniLMEmbedder` (the bundled ONNX model) for real,
and `OpenAIEmbedder` (and its plain client) against a local fake OpenAI-compatible server that
the real `openai` client talks to over HTTP."""

from __future__ import annotations

import base64
import hashlib
import json
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any

import numpy as np
import pytest

from grace_pipelines.engines.embedding import ROW_LAYOUT
from grace_pipelines.engines.minilm import MiniLMClient, load_minilm
from grace_pipelines.engines.openai_client import OpenAIEmbeddingClient
from grace_pipelines.resources.embedder import (
    MINILM_DIM,
    MINILM_NAME,
    Embedder,
    EmbeddingError,
    MiniLM,
    MiniLMEmbedder,
    OpenAIEmbedder,
    embedder_for,
)
from grace_pipelines.settings import load_settings

from .local_http import local_server, send_json

API_KEY = "sk-test-0123456789-very-secret"
FAKE_DIM = 6

# ---- minilm ------------------------------------------------------------------------------------

QUERY = "When is the report due?"
PARAPHRASE = "The deadline for the quarterly report moved to Friday"
UNRELATED = "Buy oat milk and basil at the market"


@pytest.fixture(scope="module")
def minilm() -> Embedder:
    return MiniLMEmbedder()


def test_minilm_shape_dtype_and_norm(minilm: Embedder) -> None:
    texts = [QUERY, PARAPHRASE, UNRELATED, "a", "word " * 400]  # includes one past the 256-token limit
    vectors = minilm.embed(texts)
    assert vectors.shape == (len(texts), MINILM_DIM) == (5, 384)
    assert vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert np.all(np.isfinite(vectors))
    # different texts give different vectors
    assert len({v.tobytes() for v in vectors}) == len(texts)


def test_minilm_is_deterministic_and_order_independent(minilm: Embedder) -> None:
    texts = [UNRELATED, "short", PARAPHRASE, QUERY]
    first = minilm.embed(texts)
    again = minilm.embed(texts)
    np.testing.assert_array_equal(first, again)
    # batching sorts by length internally; results must still line up with the input order
    reversed_ = minilm.embed(texts[::-1])[::-1]
    np.testing.assert_allclose(first, reversed_, atol=1e-5)
    single = np.stack([minilm.embed_query(t) for t in texts])
    np.testing.assert_allclose(first, single, atol=1e-5)


def test_minilm_small_batches_match_one_batch(minilm: Embedder) -> None:
    texts = [f"sentence number {i} about {w}" for i, w in enumerate(["cats", "budget", "Postgres", "dentist", "rain"])]
    small = MiniLMEmbedder(batch_size=2).embed(texts)
    np.testing.assert_allclose(small, minilm.embed(texts), atol=1e-5)


def test_minilm_paraphrase_closer_than_unrelated(minilm: Embedder) -> None:
    q, p, u = minilm.embed([QUERY, PARAPHRASE, UNRELATED])
    sim_para = float(q @ p)
    sim_unrelated = float(q @ u)
    assert sim_para > sim_unrelated + 0.15, (sim_para, sim_unrelated)
    assert sim_para > 0.3


def test_minilm_empty_list(minilm: Embedder) -> None:
    out = minilm.embed([])
    assert out.shape == (0, MINILM_DIM)
    assert out.dtype == np.float32


def test_minilm_model_identity(minilm: Embedder) -> None:
    assert minilm.model_name == MINILM_NAME
    assert minilm.dim == MINILM_DIM
    version = minilm.model_version
    assert version and "+" in version
    assert len(version.split("+")[1]) == 12
    code = minilm.code_version()
    assert len(code) == 12 and code == MiniLMEmbedder().code_version()
    assert code != OpenAIEmbedder().code_version()
    # the identity the embeddings asset's code version and every stored source carry: it changes
    # only on purpose (a new model, or a new row layout, which re-embeds every source once)
    assert ROW_LAYOUT == "sentences-1"
    identity = f"minilm:{MINILM_NAME}:{version}:384:{ROW_LAYOUT}"
    assert code == hashlib.sha256(identity.encode()).hexdigest()[:12]


def test_unknown_engine_raises(tmp_path: Any) -> None:
    settings = load_settings(home=tmp_path).model_copy(update={"embedder": "word2vec"})  # past the Literal check
    with pytest.raises(EmbeddingError, match="unknown embedder engine 'word2vec'"):
        embedder_for(settings)


def test_the_port_is_abstract() -> None:
    with pytest.raises(TypeError, match="abstract"):
        Embedder()  # type: ignore[abstract]


def test_minilm_plain_client_is_the_resource(minilm: Embedder) -> None:
    plain = MiniLMClient()
    assert minilm.client() == plain
    assert (plain.model_name, plain.dim, plain.code_version()) == (minilm.model_name, minilm.dim, minilm.code_version())
    np.testing.assert_array_equal(plain.embed([QUERY, UNRELATED]), minilm.embed([QUERY, UNRELATED]))
    np.testing.assert_array_equal(plain.embed_query(QUERY), minilm.embed_query(QUERY))
    assert plain.embed([]).shape == (0, MINILM_DIM)


def test_minilm_loads_once() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(4) as pool:
        models = list(pool.map(lambda _: load_minilm(), range(4)))
    assert all(m is models[0] for m in models) and MiniLM.get() is models[0]


# ---- fake OpenAI-compatible embeddings server --------------------------------------------------


def fake_vector(text: str) -> list[float]:
    """Deterministic, deliberately non-normalised vector for a text."""
    digest = hashlib.sha256(text.encode()).digest()
    return [(b - 127.5) / 10.0 for b in digest[:FAKE_DIM]]


def expected_vectors(texts: list[str]) -> np.ndarray:
    arr = np.asarray([fake_vector(t) for t in texts], dtype=np.float32)
    return arr / np.linalg.norm(arr, axis=1, keepdims=True)


@dataclass
class Recorded:
    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class FakeServer:
    base_url: str
    requests: list[Recorded] = field(default_factory=list)
    # responses to give before normal behaviour: (status, headers, body)
    scripted: list[tuple[int, dict[str, str], dict[str, Any]]] = field(default_factory=list)
    always: tuple[int, dict[str, str], dict[str, Any]] | None = None
    shuffle_seed: int = 0


def _on_post(state: FakeServer, handler: BaseHTTPRequestHandler) -> None:
    length = int(handler.headers.get("Content-Length") or 0)
    body = json.loads(handler.rfile.read(length) or b"{}")
    state.requests.append(Recorded("POST", handler.path, {k.lower(): v for k, v in handler.headers.items()}, body))
    if handler.path != "/v1/embeddings":
        send_json(handler, 404, {"error": {"message": f"no route {handler.path}", "type": "invalid_request_error"}})
        return
    if state.scripted:
        status, headers, payload = state.scripted.pop(0)
        send_json(handler, status, payload, headers)
        return
    if state.always is not None:
        status, headers, payload = state.always
        send_json(handler, status, payload, headers)
        return
    if handler.headers.get("Authorization") != f"Bearer {API_KEY}":
        send_json(handler, 401, {"error": {"message": "bad key", "type": "invalid_request_error"}})
        return
    inputs = body["input"]
    if isinstance(inputs, str):
        inputs = [inputs]
    base64_format = body.get("encoding_format") == "base64"
    data = []
    for index, text in enumerate(inputs):
        vec = fake_vector(text)
        embedding: Any = (
            base64.b64encode(np.asarray(vec, dtype=np.float32).tobytes()).decode() if base64_format else vec
        )
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    # real servers may answer in any order: only `index` ties a vector to its input
    random.Random(state.shuffle_seed + len(state.requests)).shuffle(data)
    if len(data) > 1 and [d["index"] for d in data] == sorted(d["index"] for d in data):
        data.reverse()
    send_json(
        handler,
        200,
        {
            "object": "list",
            "data": data,
            "model": body.get("model"),
            "usage": {"prompt_tokens": len(inputs), "total_tokens": len(inputs)},
        },
    )


@pytest.fixture
def fake_openai() -> Iterator[FakeServer]:
    state = FakeServer(base_url="")
    with local_server(lambda handler: _on_post(state, handler)) as base_url:
        state.base_url = base_url
        yield state


def api_embedder(server: FakeServer, **kwargs: Any) -> Embedder:
    return OpenAIEmbedder(
        openai_base_url=server.base_url,
        openai_api_key=kwargs.pop("api_key", API_KEY),
        **kwargs,
    )


TEXTS = [
    f"chunk {i}: {w}"
    for i, w in enumerate(["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa"])
]


def test_openai_reorders_by_index_and_normalises(fake_openai: FakeServer) -> None:
    embedder = api_embedder(fake_openai)
    out = embedder.embed(TEXTS)
    assert out.shape == (len(TEXTS), FAKE_DIM)
    assert out.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)
    np.testing.assert_allclose(out, expected_vectors(TEXTS), atol=1e-6)
    # the raw vectors were not unit length, so normalisation really happened
    assert not math.isclose(float(np.linalg.norm(fake_vector(TEXTS[0]))), 1.0, abs_tol=1e-3)
    (request,) = fake_openai.requests
    assert request.path == "/v1/embeddings"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.body["model"] == "text-embedding-3-small"
    assert request.body["input"] == TEXTS


@pytest.mark.parametrize(("n", "batch_size"), [(10, 4), (10, 5), (10, 1), (3, 64), (64, 64), (65, 64)])
def test_openai_batches(fake_openai: FakeServer, n: int, batch_size: int) -> None:
    texts = [f"text number {i}" for i in range(n)]
    out = api_embedder(fake_openai, batch_size=batch_size).embed(texts)
    assert len(fake_openai.requests) == math.ceil(n / batch_size)
    sizes = [len(r.body["input"]) for r in fake_openai.requests]
    assert all(s <= batch_size for s in sizes)
    # every text sent exactly once, in order across batches
    assert [t for r in fake_openai.requests for t in r.body["input"]] == texts
    np.testing.assert_allclose(out, expected_vectors(texts), atol=1e-6)


def test_openai_batch_size_above_api_cap(fake_openai: FakeServer) -> None:
    texts = [f"t{i}" for i in range(2050)]
    out = api_embedder(fake_openai, batch_size=4096).embed(texts)
    assert all(len(r.body["input"]) <= 2048 for r in fake_openai.requests)
    assert out.shape == (2050, FAKE_DIM)


def test_openai_embed_query(fake_openai: FakeServer) -> None:
    vec = api_embedder(fake_openai).embed_query("what is due on Friday?")
    np.testing.assert_allclose(vec, expected_vectors(["what is due on Friday?"])[0], atol=1e-6)


def test_openai_empty_list_makes_no_request(fake_openai: FakeServer) -> None:
    out = api_embedder(fake_openai).embed([])
    assert out.shape == (0, 1536)  # text-embedding-3-small
    assert fake_openai.requests == []


def test_openai_retries_after_429(fake_openai: FakeServer) -> None:
    fake_openai.scripted.append(
        (
            429,
            {"retry-after-ms": "20"},
            {"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}},
        )
    )
    out = api_embedder(fake_openai).embed(TEXTS[:3])
    assert len(fake_openai.requests) == 2
    assert fake_openai.requests[0].body["input"] == fake_openai.requests[1].body["input"] == TEXTS[:3]
    np.testing.assert_allclose(out, expected_vectors(TEXTS[:3]), atol=1e-6)


def test_openai_retries_5xx_then_gives_up(fake_openai: FakeServer) -> None:
    fake_openai.always = (503, {"retry-after-ms": "1"}, {"error": {"message": "overloaded", "type": "server_error"}})
    with pytest.raises(EmbeddingError, match="embeddings API failed"):
        api_embedder(fake_openai).embed(["x"])
    assert len(fake_openai.requests) == 1 + 6  # first try plus max_retries=6


def test_openai_error_never_leaks_key_or_text(fake_openai: FakeServer) -> None:
    secret_text = "my private diary entry about the surprise party"
    # Like the real API, the fake echoes part of the key in its error message.
    fake_openai.always = (
        401,
        {},
        {
            "error": {
                "message": f"Incorrect API key provided: {API_KEY}. Input was: {secret_text}",
                "type": "invalid_request_error",
                "code": "invalid_api_key",
            }
        },
    )
    with pytest.raises(EmbeddingError) as info:
        api_embedder(fake_openai).embed([secret_text])
    assert len(fake_openai.requests) == 1  # 401 is not retried
    for text in (str(info.value), repr(info.value)):
        assert API_KEY not in text
        assert "sk-test" not in text
        assert secret_text not in text
    assert "AuthenticationError" in str(info.value)
    # `from None`: the traceback does not show the client's exception either
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_openai_missing_key_is_clear_error(fake_openai: FakeServer) -> None:
    with pytest.raises(EmbeddingError, match="API key"):
        api_embedder(fake_openai, api_key=None).embed(["x"])
    assert fake_openai.requests == []
    with pytest.raises(EmbeddingError, match="API key"):
        api_embedder(fake_openai, api_key="").embed(["x"])


def test_openai_model_identity() -> None:
    e = OpenAIEmbedder(openai_model="text-embedding-3-large")
    assert e.model_name == "text-embedding-3-large"
    assert e.model_version == "api"
    assert e.dim == 3072
    assert (
        e.code_version()
        == hashlib.sha256(f"openai:text-embedding-3-large:api:3072:{ROW_LAYOUT}".encode()).hexdigest()[:12]
    )
    assert OpenAIEmbedder(openai_model="my-model", dimensions=8).dim == 8


def test_openai_plain_client(fake_openai: FakeServer) -> None:
    plain = OpenAIEmbeddingClient(base_url=fake_openai.base_url, api_key=API_KEY, batch_size=4)
    out = plain.embed(TEXTS)
    np.testing.assert_allclose(out, expected_vectors(TEXTS), atol=1e-6)
    assert len(fake_openai.requests) == 3
    np.testing.assert_allclose(plain.embed_query(TEXTS[0]), expected_vectors(TEXTS[:1])[0], atol=1e-6)
    resource = api_embedder(fake_openai, batch_size=4)
    assert resource.client() == OpenAIEmbeddingClient(base_url=fake_openai.base_url, batch_size=4)  # key not compared
    assert API_KEY not in repr(resource.client()) and API_KEY not in repr(plain)
    assert (plain.model_name, plain.dim, plain.code_version()) == (
        resource.model_name,
        resource.dim,
        resource.code_version(),
    )


def test_openai_key_from_the_environment_or_nowhere(
    fake_openai: FakeServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The key's variable is read when the key is used, by the resource (`dg.EnvVar`) and the plain
    client (`EnvKey`) alike; with none set and no vault approval, both say how to give one."""
    import dagster as dg

    from grace_pipelines.engines.clients import clients_for
    from grace_pipelines.engines.credentials import EnvKey

    settings = load_settings(home=tmp_path, embedder="openai", openai_base_url=fake_openai.base_url)
    settings.ensure_dirs()
    for embedder in (embedder_for(settings), clients_for(settings).embedder):
        with pytest.raises(EmbeddingError, match="grace secrets set openai"):
            embedder.embed(["x"])
    assert fake_openai.requests == []
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    resource, plain = embedder_for(settings), clients_for(settings).embedder
    assert isinstance(resource.openai_api_key, dg.EnvVar) and plain.api_key == EnvKey("OPENAI_API_KEY")
    np.testing.assert_allclose(resource.embed(TEXTS[:2]), plain.embed(TEXTS[:2]))
    assert [r.headers["authorization"] for r in fake_openai.requests] == [f"Bearer {API_KEY}"] * 2
