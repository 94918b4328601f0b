"""Engines: the models and API clients behind Grace's ports, as plain Python objects.

Why a package of its own: the Dagster resources (grace_pipelines/resources) are the ports that
assets annotate (`Transcriber`, `Embedder`, ...), one abstract `dg.ConfigurableResource` per
port with a subclass per engine. The work itself (loading the ONNX MiniLM or a Whisper model,
calling an OpenAI-compatible API) lives here instead, in plain objects that import no Dagster,
so three callers share one implementation:

- the resources, which hold their config fields and delegate to one of these clients;
- the Python API (`Grace`), which can search and embed with `clients_for(settings)` instead of
  reaching into `defs.resources[...]`;
- bench/, which times the engines themselves.

Modules: `minilm` (the default embedder), `openai_client` (embeddings and transcriptions of any
OpenAI-compatible server), `whisper` (faster-whisper and WhisperX), `embedding` and
`transcription` (what every engine of a port shares: results, errors, identity), `credentials`
(API keys from the environment or the vault) and `clients` (the plain objects for one
GraceSettings: embedder, chunk index, blob store).

Models load once per process and configuration (a `functools.cache` behind a lock: a Whisper
load costs about a second and its memory, so two threads must not both do it).
"""
