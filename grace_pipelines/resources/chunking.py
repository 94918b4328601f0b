"""`Chunking`: the chunk size and overlap of GRACE_HOME's settings, as a resource.

A resource rather than job-level run config: `ingest_job` runs are often a share of the graph
(a consent hold seals the bytes only, a resume or re-embed picks up mid-way), and run config
naming the `chunks` op is rejected by any share that leaves `chunks` out.
"""

import dagster as dg
from pydantic import Field


class Chunking(dg.ConfigurableResource):
    """Sentence-aware chunking: characters per chunk and characters shared between neighbours."""

    chunk_chars: int = Field(500, description="Characters per chunk (about)")
    chunk_overlap: int = Field(100, description="Characters shared with the previous chunk")
