"""Object storage. The embedded default is a local content-addressed folder: objects are named
by their SHA-256, written once (temp file, fsync, atomic rename), never overwritten."""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import BinaryIO

CHUNK = 1 << 20


class StorageError(RuntimeError):
    pass


class LocalObjectStore:
    def __init__(self, root: Path):
        self.root = Path(root)

    def _path(self, sha256_hex: str) -> Path:
        if len(sha256_hex) != 64 or any(c not in "0123456789abcdef" for c in sha256_hex):
            raise StorageError(f"not a SHA-256 address: {sha256_hex!r}")
        return self.root / sha256_hex[:2] / sha256_hex[2:4] / sha256_hex

    def put(self, stream: BinaryIO) -> tuple[str, int]:
        """Store a stream; returns (sha256 hex, size). Storing the same bytes twice is a no-op."""
        self.root.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as out:
                while chunk := stream.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
                    size += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            address = digest.hexdigest()
            final = self._path(address)
            if final.exists():
                os.unlink(tmp)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.chmod(tmp, 0o444)
                os.replace(tmp, final)
            return address, size
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise

    def exists(self, sha256_hex: str) -> bool:
        return self._path(sha256_hex).exists()

    def open(self, sha256_hex: str) -> BinaryIO:
        try:
            return open(self._path(sha256_hex), "rb")
        except FileNotFoundError:
            raise StorageError(f"no object {sha256_hex}") from None

    def health(self) -> dict:
        """Writable and readable: round-trips a small probe object."""
        import io

        address, _ = self.put(io.BytesIO(b"qiyema health probe\n"))
        with self.open(address) as f:
            ok = f.read() == b"qiyema health probe\n"
        return {"ok": ok, "kind": "local", "root": str(self.root)}
