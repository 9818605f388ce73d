"""The access context: who is calling, for whom, with what rights; built from a verified token."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from samhandling.platform.auth import claims as c


class Principal(StrEnum):
    """The kind of caller a token speaks for."""

    SYSTEM = "system"  # a client acting on its own behalf (client_credentials)
    PERSONNEL = "personnel"  # a signed-in health worker (HelseID)
    CITIZEN = "citizen"  # a signed-in citizen (citizen login, in the style of ID-porten)


@dataclass(frozen=True, slots=True)
class AccessContext:
    """Everything the policy and audit layers need to know about the caller.

    Immutable and passed down explicitly (never a global). Fields a token does not carry
    are None. ``access_basis`` and ``acting_for`` are set per request by the policy layer.
    """

    principal: Principal
    client_id: str
    scopes: frozenset[str]
    audience: tuple[str, ...]
    token_id: str
    expires_at: int
    client_name: str | None = None
    orgnr_parent: str | None = None
    orgnr_child: str | None = None
    orgnr_supplier: str | None = None
    client_tenancy: str | None = None
    person_id: str | None = None  # fødselsnummer / D-number of the signed-in person
    hpr_number: str | None = None
    security_level: int | None = None
    assurance_level: str | None = None
    name: str | None = None
    dpop_jkt: str | None = None  # thumbprint of the key the token is bound to
    actor_client_id: str | None = None  # token exchange: the API acting for the caller
    access_basis: str | None = None
    acting_for: str | None = None

    @classmethod
    def from_claims(cls, claims: dict[str, Any]) -> AccessContext:
        """The context of a verified access token's claims."""
        level = _str(claims, c.SECURITY_LEVEL)
        audience = claims.get("aud")
        actor = claims.get("act")
        return cls(
            principal=Principal(claims.get(c.PRINCIPAL, Principal.SYSTEM)),
            client_id=str(claims.get("client_id", "")),
            scopes=frozenset(str(claims.get("scope", "")).split()),
            audience=(audience,) if isinstance(audience, str) else tuple(audience or ()),
            token_id=str(claims.get("jti", "")),
            expires_at=int(claims.get("exp", 0)),
            client_name=_str(claims, c.CLIENT_NAME),
            orgnr_parent=_str(claims, c.ORGNR_PARENT),
            orgnr_child=_str(claims, c.ORGNR_CHILD),
            orgnr_supplier=_str(claims, c.ORGNR_SUPPLIER),
            client_tenancy=_str(claims, c.CLIENT_TENANCY),
            person_id=_str(claims, c.PID),
            hpr_number=_str(claims, c.HPR_NUMBER),
            security_level=int(level) if level and level.isdigit() else None,
            assurance_level=_str(claims, c.ASSURANCE_LEVEL),
            name=_str(claims, "name"),
            dpop_jkt=(claims.get("cnf") or {}).get("jkt"),
            actor_client_id=actor.get("client_id") if isinstance(actor, dict) else None,
        )


def _str(claims: dict[str, Any], name: str) -> str | None:
    value = claims.get(name)
    return None if value is None else str(value)
