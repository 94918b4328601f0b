"""An upload (one file plus an optional consent sidecar) streamed from a multipart request to
a private folder under GRACE_HOME/web/uploads, never held in memory, with the size limit
enforced while the bytes arrive. The folder is the caller's to remove once the file has been
copied into the inbox (grace.ingest judges it by the inbox's rules)."""

from __future__ import annotations

import os
import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.concurrency import run_in_threadpool

from grace_pipelines.governance.consent import MAX_SIDECAR_BYTES
from grace_pipelines.ingest.media import SIDECAR_SUFFIX, safe_name

FILE_PART = "file"
CONSENT_PART = "consent"
FIELDS = ("origin", "wait")
MAX_FIELD_BYTES = 1024
OVERHEAD_BYTES = MAX_SIDECAR_BYTES + 64 * 1024  # boundaries, part headers, the sidecar and fields


class UploadRefused(Exception):
    """The request cannot be taken: `status` (400 malformed, 413 too large) and a clear reason."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass
class Upload:
    folder: Path
    filename: str | None = None  # as the client named it (made safe)
    path: Path | None = None
    sidecar: Path | None = None
    fields: dict[str, str] = field(default_factory=dict)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


class _Receiver:
    """python-multipart callbacks writing the file part straight to disk."""

    def __init__(self, upload: Upload, max_bytes: int) -> None:
        self.upload = upload
        self.max_bytes = max_bytes
        self.name: str | None = None
        self.fd: int | None = None
        self.buffer = bytearray()
        self.written = 0
        self.header_name = b""
        self.header_value = b""
        self.disposition = b""
        self.pending: list[bytes] = []

    def on_part_begin(self) -> None:
        self.name, self.disposition, self.buffer = None, b"", bytearray()

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self.header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self.header_value += data[start:end]

    def on_header_end(self) -> None:
        if self.header_name.lower() == b"content-disposition":
            self.disposition = self.header_value
        self.header_name, self.header_value = b"", b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self.disposition)
        name = options.get(b"name", b"").decode("utf-8", "replace")
        if name not in (FILE_PART, CONSENT_PART, *FIELDS):
            raise UploadRefused(400, f"unexpected form part {safe_name(name, 40)!r} (send file, consent, origin, wait)")
        self.name = name
        if name == FILE_PART:
            if self.upload.path is not None:
                raise UploadRefused(400, "one file per upload")
            given = options.get(b"filename", b"").decode("utf-8", "replace")
            shown = safe_name(os.path.basename(given.replace("\\", "/"))) if given else ""
            if not shown or shown == "unnamed" or shown.endswith(SIDECAR_SUFFIX):
                raise UploadRefused(400, f"the file part needs a file name (got {given!r})")
            self.upload.filename = shown
            self.upload.path = self.upload.folder / shown
            self.fd = os.open(self.upload.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self.name == FILE_PART:
            self.written += end - start
            if self.written > self.max_bytes:
                raise UploadRefused(
                    413, f"{self.upload.filename}: larger than the upload limit of {self.max_bytes} bytes"
                )
            self.pending.append(data[start:end])
            return
        self.buffer += data[start:end]
        limit = MAX_SIDECAR_BYTES if self.name == CONSENT_PART else MAX_FIELD_BYTES
        if len(self.buffer) > limit:
            raise UploadRefused(413, f"the {self.name} part is larger than {limit} bytes")

    def on_part_end(self) -> None:
        if self.name == FILE_PART:
            self.flush()
            assert self.fd is not None
            os.close(self.fd)
            self.fd = None
        elif self.name == CONSENT_PART:
            self.upload.fields[CONSENT_PART] = bytes(self.buffer).decode("utf-8", "replace")
        elif self.name is not None:
            self.upload.fields[self.name] = bytes(self.buffer).decode("utf-8", "replace").strip()

    def flush(self) -> None:
        if self.fd is not None and self.pending:
            os.write(self.fd, b"".join(self.pending))
        self.pending.clear()

    def callbacks(self) -> dict[str, Any]:
        return {
            name: getattr(self, name)
            for name in (
                "on_part_begin",
                "on_part_data",
                "on_part_end",
                "on_header_field",
                "on_header_value",
                "on_header_end",
                "on_headers_finished",
            )
        }


async def receive_upload(headers: Any, stream: Any, root: Path, max_bytes: int) -> Upload:
    """Stream a multipart body (`file`, optional `consent` JSON, `origin`, `wait`) into a new
    private folder under `root`. Raises UploadRefused (the folder already removed)."""
    content_type, params = parse_options_header(headers.get("content-type", ""))
    if content_type != b"multipart/form-data" or b"boundary" not in params:
        raise UploadRefused(400, "send the file as multipart/form-data (a 'file' part, optionally 'consent')")
    length = headers.get("content-length")
    if length and length.isdigit() and int(length) > max_bytes + OVERHEAD_BYTES:
        raise UploadRefused(413, f"the upload ({length} bytes) is larger than the limit of {max_bytes} bytes")
    root.mkdir(mode=0o700, parents=True, exist_ok=True)
    upload = Upload(root / secrets.token_hex(8))
    upload.folder.mkdir(mode=0o700)
    receiver = _Receiver(upload, max_bytes)
    try:
        parser = MultipartParser(params[b"boundary"], receiver.callbacks())
        async for chunk in stream:
            parser.write(chunk)
            if receiver.pending:
                await run_in_threadpool(receiver.flush)
        parser.finalize()
        if upload.path is None:
            raise UploadRefused(400, "no 'file' part in the upload")
        if CONSENT_PART in upload.fields:
            upload.sidecar = upload.path.with_name(upload.path.name + SIDECAR_SUFFIX)
            fd = os.open(upload.sidecar, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(upload.fields.pop(CONSENT_PART))
    except UploadRefused:
        upload.remove()
        raise
    except Exception as exc:  # noqa: BLE001 - a malformed body is the client's error, not a crash
        upload.remove()
        raise UploadRefused(400, f"malformed multipart upload ({type(exc).__name__})") from None
    finally:
        if receiver.fd is not None:
            os.close(receiver.fd)
    return upload
