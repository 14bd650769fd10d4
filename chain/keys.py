"""Chain accounts kept as key files: hex private key, mode 0600, never logged."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount


def load_or_create(path: Path) -> LocalAccount:
    """The account whose key is in `path`, creating a new random key there if it is absent."""
    path = Path(path)
    if path.exists():
        return Account.from_key(path.read_text().strip())
    path.parent.mkdir(parents=True, exist_ok=True)
    key = "0x" + secrets.token_hex(32)
    # O_EXCL: two processes creating the same key at once must not overwrite each other.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(key + "\n")
    return Account.from_key(key)
