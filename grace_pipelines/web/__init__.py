"""The person's side of Grace: `grace serve`'s web app and HTTP API under /api/v1.

One long-running process on 127.0.0.1 keeps one `Grace` (models, LanceDB tables, state
database) warm, so a search answers in milliseconds instead of a cold CLI's seconds. Layout:
`app.py` (the factory), `security.py` (token, cookie, CSRF, Host check, headers),
`uploads.py` (multipart streamed to disk), `wire.py` (the JSON shapes shared with the CLI's
`--json`), `models.py` (the pydantic request/response models the OpenAPI schema shows),
`routes/` (one router per area; pages get their own routers and `templates/`), `server.py`
(uvicorn, the token file, server.json). Importing this package imports no web framework: the
CLI uses `wire` without paying for FastAPI.
"""
