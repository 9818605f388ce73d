"""OAuth 2.0 errors as the endpoints return them (RFC 6749 §5.2, RFC 9449, RFC 9396)."""

from __future__ import annotations


class OAuthError(Exception):
    """An error response: ``{"error": ..., "error_description": ...}`` with a status."""

    def __init__(
        self,
        error: str,
        description: str,
        *,
        status: int = 400,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        """The JSON body."""
        return {"error": self.error, "error_description": self.description}
