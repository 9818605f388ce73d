"""Settings, from command-line options and ``SAMHANDLING_*`` environment variables."""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

DEFAULT_DATA_DIR = Path("var")
DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_BINARY_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Settings:
    """Everything the platform needs to start."""

    data_dir: Path = DEFAULT_DATA_DIR
    database_url: str | None = None  # None: SQLite in data_dir
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    max_binary_bytes: int = DEFAULT_MAX_BINARY_BYTES  # a Binary's content (raw or base64)
    conditional_delete_max: int = 1  # matches one conditional DELETE may remove (1: single)
    pg_pool_size: int = 10
    log_level: str = "info"
    public_url: str | None = None  # the issuer and API address clients see (None: host:port)
    secret_key: str | None = None  # base64url, 32+ bytes (None: <data dir>/secret.key)
    access_token_lifetime: int = 600
    refresh_token_lifetime: int = 8 * 3600
    signing_alg: str = "RS256"
    unprotected_api: bool = False  # benchmarks only: the FHIR API without token checks
    allow_synthetic_identifiers: bool = False  # accept test numbers (month + 80) in registers

    @property
    def issuer(self) -> str:
        """The public base URL: the token issuer and the address DPoP proofs name."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        return f"http://{host}:{self.port}"

    @property
    def effective_database_url(self) -> str:
        """The configured database URL, or the embedded SQLite file in the data directory."""
        return self.database_url or f"sqlite:///{(self.data_dir / 'samhandling.db').resolve()}"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Settings from ``SAMHANDLING_*`` variables (defaults where unset)."""
        env = dict(os.environ if env is None else env)
        base = cls()
        return replace(
            base,
            data_dir=Path(env.get("SAMHANDLING_DATA_DIR", str(base.data_dir))),
            database_url=env.get("SAMHANDLING_DATABASE_URL") or None,
            host=env.get("SAMHANDLING_HOST", base.host),
            port=int(env.get("SAMHANDLING_PORT", base.port)),
            workers=int(env.get("SAMHANDLING_WORKERS", base.workers)),
            max_body_bytes=int(env.get("SAMHANDLING_MAX_BODY_BYTES", base.max_body_bytes)),
            max_binary_bytes=int(env.get("SAMHANDLING_MAX_BINARY_BYTES", base.max_binary_bytes)),
            conditional_delete_max=int(
                env.get("SAMHANDLING_CONDITIONAL_DELETE_MAX", base.conditional_delete_max)
            ),
            pg_pool_size=int(env.get("SAMHANDLING_PG_POOL_SIZE", base.pg_pool_size)),
            log_level=env.get("SAMHANDLING_LOG_LEVEL", base.log_level),
            public_url=env.get("SAMHANDLING_PUBLIC_URL") or None,
            secret_key=env.get("SAMHANDLING_SECRET_KEY") or None,
            access_token_lifetime=int(
                env.get("SAMHANDLING_ACCESS_TOKEN_LIFETIME", base.access_token_lifetime)
            ),
            refresh_token_lifetime=int(
                env.get("SAMHANDLING_REFRESH_TOKEN_LIFETIME", base.refresh_token_lifetime)
            ),
            signing_alg=env.get("SAMHANDLING_SIGNING_ALG", base.signing_alg),
            unprotected_api=env.get("SAMHANDLING_UNPROTECTED_API") == "1",
            allow_synthetic_identifiers=env.get("SAMHANDLING_ALLOW_SYNTHETIC_IDENTIFIERS") == "1",
        )

    def to_env(self) -> dict[str, str]:
        """The settings as environment variables (how worker processes receive them)."""
        env = {
            "SAMHANDLING_DATA_DIR": str(self.data_dir),
            "SAMHANDLING_HOST": self.host,
            "SAMHANDLING_PORT": str(self.port),
            "SAMHANDLING_WORKERS": str(self.workers),
            "SAMHANDLING_MAX_BODY_BYTES": str(self.max_body_bytes),
            "SAMHANDLING_MAX_BINARY_BYTES": str(self.max_binary_bytes),
            "SAMHANDLING_CONDITIONAL_DELETE_MAX": str(self.conditional_delete_max),
            "SAMHANDLING_PG_POOL_SIZE": str(self.pg_pool_size),
            "SAMHANDLING_LOG_LEVEL": self.log_level,
            "SAMHANDLING_ACCESS_TOKEN_LIFETIME": str(self.access_token_lifetime),
            "SAMHANDLING_REFRESH_TOKEN_LIFETIME": str(self.refresh_token_lifetime),
            "SAMHANDLING_SIGNING_ALG": self.signing_alg,
        }
        if self.database_url:
            env["SAMHANDLING_DATABASE_URL"] = self.database_url
        if self.public_url:
            env["SAMHANDLING_PUBLIC_URL"] = self.public_url
        if self.secret_key:
            env["SAMHANDLING_SECRET_KEY"] = self.secret_key
        if self.unprotected_api:
            env["SAMHANDLING_UNPROTECTED_API"] = "1"
        if self.allow_synthetic_identifiers:
            env["SAMHANDLING_ALLOW_SYNTHETIC_IDENTIFIERS"] = "1"
        return env
