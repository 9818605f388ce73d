"""The platform secret: encrypts private keys at rest and keys stateless nonces.

Set ``SAMHANDLING_SECRET_KEY`` (32 random bytes, base64url) in production, the same for
every worker and machine. Without it, the embedded default keeps a generated secret in
``<data dir>/secret.key`` (readable by its owner only), so the CLI and the server agree.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from pathlib import Path

SECRET_FILE = "secret.key"


class SecretError(ValueError):
    """The configured secret is unusable."""


def platform_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, or the data directory's (created on first use)."""
    if configured:
        try:
            raw = base64.urlsafe_b64decode(configured + "=" * (-len(configured) % 4))
        except (binascii.Error, ValueError):
            raise SecretError("SAMHANDLING_SECRET_KEY must be base64url") from None
        if len(raw) < 32:
            raise SecretError("SAMHANDLING_SECRET_KEY must hold at least 32 bytes")
        return raw
    path = data_dir / SECRET_FILE
    try:
        return base64.urlsafe_b64decode(path.read_bytes().strip() + b"==")
    except FileNotFoundError:
        pass
    data_dir.mkdir(parents=True, exist_ok=True)
    fresh = base64.urlsafe_b64encode(secrets.token_bytes(32))
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return base64.urlsafe_b64decode(path.read_bytes().strip() + b"==")
    with os.fdopen(fd, "wb") as file:
        file.write(fresh)
    return base64.urlsafe_b64decode(fresh)


def derive(secret: bytes, purpose: str) -> bytes:
    """A 32-byte key for one purpose, so no two uses share key material."""
    return hmac.new(secret, purpose.encode(), hashlib.sha256).digest()
