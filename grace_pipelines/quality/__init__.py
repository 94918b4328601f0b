"""Data quality: great-expectations suites over a source's transcript, chunks and vectors.

Plain Python, no Dagster: `checks` names every `quality_*` check (asset, severity, why),
`frames` turns a source's stored data into numbers-only DataFrames, `suites` runs the
great-expectations suites on them (GE imported lazily: it costs 5-8 s), and `evaluate` does
both for a batch of sources. The Dagster side (grace_pipelines/assets/quality.py, the quality
job; grace_pipelines/sensors/quality.py) runs them after a source becomes searchable, never in
the ingest run.
"""
