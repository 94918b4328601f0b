"""One router per area of /api/v1: sources (health, status, ingest), search (search, ask,
clip), consent (grant, revoke, list, pending decisions). Pages add their own routers here."""
