"""Search: retrieval over the LanceDB index, fusion and sentence re-ranking, citations (format
and parse), answers with [n] citations, and the retrieval evaluation."""
