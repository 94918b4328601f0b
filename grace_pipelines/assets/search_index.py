"""`search_index`: the LanceDB table kept fast, off-peak.

Compaction folds the many small fragments each upsert leaves into few, new rows join the
keyword index, and once the table is large enough (settings `ann_min_rows`, default 50,000)
an IVF_HNSW_SQ vector index is built (rebuilt when more than a tenth of the rows are outside
it). Below the threshold exact search is both exact and fast enough. Runs daily at 02:00 UTC
(the `search_index` playbook, playbooks/search_index.yaml) in the same pool as the writers.
"""

import dagster as dg

from grace_pipelines.assets.embeddings import embeddings
from grace_pipelines.resources import VectorStore


@dg.asset(group_name="index", kinds={"lancedb"}, deps=[embeddings], pool="index_writer")
def search_index(context: dg.AssetExecutionContext, vector_store: VectorStore) -> dg.MaterializeResult:
    """The chunks table compacted and indexed: full-text always, approximate vectors at scale."""
    report = vector_store.maintain()
    context.log.info(f"search index: {report['rows']} rows, vector index {report['vector_index']}")
    return dg.MaterializeResult(metadata=report)
