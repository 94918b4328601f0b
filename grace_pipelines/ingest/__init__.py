"""Ingest: getting a file from the person into Grace. Judging and copying dropped paths, the
inbox scan that registers sources, consent sidecars, media probing and safe names."""
