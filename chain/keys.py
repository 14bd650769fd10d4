"""Throwaway chain accounts for tests, benchmarks and development networks: a hex key file
(mode 0600). The service itself never keeps a key this way: its keys are in a key store
(chain/keystore.py, materials_api/platform/keys.py)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from .signers import LocalSigner


def load_or_create(path: Path) -> LocalSigner:
    """The account whose key is in `path`, creating a new random key there if it is absent."""
    path = Path(path)
    if path.exists():
        return LocalSigner(bytes.fromhex(path.read_text().strip().removeprefix("0x")))
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    # O_EXCL: two processes creating the same key at once must not overwrite each other.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write("0x" + key.hex() + "\n")
    return LocalSigner(key)
