"""Encryption-at-rest costs: ingest of a 100 MB file encrypted vs a plain copy, and key rotation.

1. Ingest: ``read + seal + atomic write`` (temp file, fsync, rename: what the encrypted blob
   store does with the bytes API) against a plain atomic copy (``shutil.copyfile`` to a temp
   file, fsync, rename), median of 3 interleaved runs each; ``ratio`` = encrypted / plain.
   ``ratio_streaming`` is the same with ``seal_stream`` file to temp file (bounded memory).
   Seal and open alone are timed too (in memory).
2. Rotation: 10,000 blobs of ~2 KB in the store layout (500 sources x 20 blobs); ``rotate()``
   rewraps every data key (header only: ciphertext untouched) with one atomic write per blob,
   then decrypts every blob to verify. ``rewrap_seconds`` is the rewrap phase (the figure the
   issue asks for), ``verify_seconds`` the verification; median of 3 rotations. The in-memory
   rewrap cost (no I/O) is reported separately.

Usage: python bench/crypto_overhead.py [--mb 100] [--blobs 10000] [--runs 3]
Prints one JSON object (see bench/_common.py).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import emit, median, note

from grace_pipelines.crypto import (
    FolderBlobs,
    Keyring,
    MasterKey,
    atomic_write_bytes,
    open_blob,
    rewrap,
    rotate,
    seal,
    seal_stream,
    store_aad,
)


def plain_copy(src: Path, dst: Path) -> None:
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-")
    os.close(fd)
    shutil.copyfile(src, tmp)
    with open(tmp, "rb+") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, dst)


def encrypted_ingest(src: Path, dst: Path, keyring: Keyring, aad: bytes) -> int:
    """The bytes API: read the file, seal in memory, atomic write."""
    blob = seal(src.read_bytes(), keyring, aad=aad)
    atomic_write_bytes(dst, blob, fsync_dir=False)
    return len(blob)


def encrypted_ingest_streaming(src: Path, dst: Path, keyring: Keyring, aad: bytes) -> int:
    """seal_stream from the source file into a temp file (one segment of memory), fsync, rename."""
    fd, tmp = tempfile.mkstemp(dir=dst.parent, prefix=".tmp-")
    with open(src, "rb") as reader, os.fdopen(fd, "wb") as writer:
        written = seal_stream(reader, writer, keyring, aad=aad, length=os.fstat(reader.fileno()).st_size)
        writer.flush()
        os.fsync(writer.fileno())
    os.replace(tmp, dst)
    return written


def bench_ingest(work: Path, keyring: Keyring, mb: int, runs: int) -> dict:
    src = work / "inbox" / "meeting.bin"
    src.parent.mkdir(parents=True)
    size = mb * 1000 * 1000
    note(f"writing a {mb} MB source file")
    with open(src, "wb") as handle:
        handle.writelines(os.urandom(1000 * 1000) for _ in range(mb))
        handle.flush()
        os.fsync(handle.fileno())
    folder = work / "store" / "00000000000000aa"
    folder.mkdir(parents=True)
    aad = store_aad("00000000000000aa", "source.bin")
    plain_s: list[float] = []
    enc_s: list[float] = []
    stream_s: list[float] = []
    blob_len = 0
    src.read_bytes()  # warm the page cache for both variants
    for run in range(runs):
        dst = folder / "source.bin"
        t = time.perf_counter()
        plain_copy(src, dst)
        plain_s.append(time.perf_counter() - t)
        dst.unlink()
        t = time.perf_counter()
        blob_len = encrypted_ingest(src, dst, keyring, aad)
        enc_s.append(time.perf_counter() - t)
        dst.unlink()
        t = time.perf_counter()
        assert encrypted_ingest_streaming(src, dst, keyring, aad) == blob_len
        stream_s.append(time.perf_counter() - t)
        dst.unlink()
        note(
            f"ingest run {run + 1}: plain {plain_s[-1]:.3f}s, encrypted {enc_s[-1]:.3f}s, streaming {stream_s[-1]:.3f}s"
        )
    data = src.read_bytes()
    seal_s, open_s = [], []
    for _ in range(runs):
        t = time.perf_counter()
        blob = seal(data, keyring, aad=aad)
        seal_s.append(time.perf_counter() - t)
        t = time.perf_counter()
        assert open_blob(blob, keyring, aad=aad, name="00000000000000aa/source.bin") == data
        open_s.append(time.perf_counter() - t)
    plain, enc = median(plain_s), median(enc_s)
    return {
        "file_bytes": size,
        "encrypted_bytes": blob_len,
        "size_overhead_bytes": blob_len - size,
        "plain_copy_s": round(plain, 4),
        "encrypted_ingest_s": round(enc, 4),
        "ratio": round(enc / plain, 3),
        "encrypted_streaming_ingest_s": round(median(stream_s), 4),
        "ratio_streaming": round(median(stream_s) / plain, 3),
        "plain_copy_s_runs": [round(x, 4) for x in plain_s],
        "encrypted_ingest_s_runs": [round(x, 4) for x in enc_s],
        "encrypted_streaming_ingest_s_runs": [round(x, 4) for x in stream_s],
        "seal_s": round(median(seal_s), 4),
        "open_s": round(median(open_s), 4),
        "seal_mb_per_s": round(size / 1e6 / median(seal_s), 1),
        "open_mb_per_s": round(size / 1e6 / median(open_s), 1),
    }


def bench_rotation(work: Path, keyring: Keyring, blobs_n: int, runs: int) -> dict:
    root = work / "rot-store"
    per_source = 20
    sources = max(1, blobs_n // per_source)
    payload = os.urandom(2048)
    note(f"sealing {sources * per_source} blobs of {len(payload)} bytes")
    for s in range(sources):
        key = f"{s:016x}"
        (root / key).mkdir(parents=True)
        for b in range(per_source):
            name = f"chunk-{b:03d}.bin"
            blob = seal(payload, keyring, aad=store_aad(key, name))
            (root / key / name).write_bytes(blob)
    os.sync()  # so rotation's fsyncs do not pay for flushing the set-up writes
    blobs = FolderBlobs(root)
    reports = []
    for run in range(runs):
        report = rotate(keyring, blobs)
        reports.append(report)
        note(
            f"rotation run {run + 1}: rewrap {report.rewrap_seconds:.2f}s, verify {report.verify_seconds:.2f}s, "
            f"total {report.seconds:.2f}s ({report.rewrapped} rewrapped)"
        )
    samples = [(blobs.read(n), n.encode()) for n in blobs.names()[:1000]]  # on the active key
    keyring.begin_rotation()
    t = time.perf_counter()
    for blob, aad in samples:
        rewrap(blob, keyring, aad=aad)
    rewrap_cpu_us = (time.perf_counter() - t) / len(samples) * 1e6
    rewrap_s = median([r.rewrap_seconds for r in reports])
    n = reports[0].blobs
    return {
        "blobs": n,
        "blob_plaintext_bytes": len(payload),
        "rewrap_s": round(rewrap_s, 3),
        "rewrap_blobs_per_s": round(n / rewrap_s, 1),
        "verify_s": round(median([r.verify_seconds for r in reports]), 3),
        "rotate_total_s": round(median([r.seconds for r in reports]), 3),
        "rewrap_s_runs": [round(r.rewrap_seconds, 3) for r in reports],
        "rewrap_in_memory_us_per_blob": round(rewrap_cpu_us, 1),
        "all_completed": all(r.completed and r.rewrapped == n for r in reports),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mb", type=int, default=100)
    parser.add_argument("--blobs", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="grace-crypto-bench-"))
    try:
        keyring = Keyring.create(work / "keys" / "keyring.bin", MasterKey.generate())
        ingest = bench_ingest(work, keyring, args.mb, args.runs)
        shutil.rmtree(work / "inbox")
        rotation = bench_rotation(work, keyring, args.blobs, args.runs)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    emit(
        "crypto_overhead",
        {
            "ingest": ingest,
            "rotation": rotation,
            "runs": args.runs,
            "params": {"mb": args.mb, "blobs": args.blobs, "segment_bytes": 1 << 20},
            "scratch_dir": tempfile.gettempdir(),
        },
    )


if __name__ == "__main__":
    main()
