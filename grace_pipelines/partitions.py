"""The dynamic partitions "sources": one partition per dropped source, keyed by content hash."""

import dagster as dg

sources_partitions = dg.DynamicPartitionsDefinition(name="sources")
