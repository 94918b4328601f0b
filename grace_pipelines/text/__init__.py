"""Text: extraction from documents (one module per format, bounded in size, time and memory, the
risky parsers in a forked child), sentence-aware chunking with positions, and the blind keyword
tokens (HMAC of stems) that let full-text search work without plaintext. No Dagster."""
