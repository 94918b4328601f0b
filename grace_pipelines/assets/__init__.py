"""One module per asset stage: source -> transcript -> chunks -> embeddings."""

from grace_pipelines.assets.chunks import chunks
from grace_pipelines.assets.embeddings import embeddings
from grace_pipelines.assets.purge import purge_receipt
from grace_pipelines.assets.source import source
from grace_pipelines.assets.transcript import transcript

__all__ = ["chunks", "embeddings", "purge_receipt", "source", "transcript"]
