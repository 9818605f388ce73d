"""The access context: who is calling, for whom, with what rights; built from a verified token."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any
from urllib.parse import unquote

from samhandling.platform.auth import claims as c

# request headers that complete the context (as in NHN's APIs: kjernejournal, PJD)
ACCESS_BASIS_HEADER = "nhn-access-basis"  # SAMTYKKE | AKUTT | UNNTAK
ACCESS_REASON_HEADER = "nhn-access-reason"  # why (required with AKUTT); percent-encoded UTF-8
ACTING_FOR_HEADER = "samhandling-acting-for"  # a citizen acting for this person (their number)
MAX_REASON_LENGTH = 500


class AccessBasis(StrEnum):
    """Why health personnel access a patient's information (``nhn-access-basis``)."""

    CONSENT = "SAMTYKKE"  # the patient consented (in a treatment relationship)
    EMERGENCY = "AKUTT"  # an emergency: no time to ask; followed up, and the patient told
    EXCEPTION = "UNNTAK"  # consent not needed (the law's exceptions, e.g. the GP)


class RequestHeaderError(ValueError):
    """A request header that should complete the access context is malformed."""


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
    access_basis: AccessBasis | None = None  # from the request (health personnel)
    access_reason: str | None = None  # from the request: why (required in an emergency)
    acting_for: str | None = None  # from the request: the person a citizen acts for

    def for_request(self, headers: Mapping[str, str]) -> AccessContext:
        """This context completed with the request's access basis, reason and whom a citizen
        acts for (``headers``: lower-case names); `RequestHeaderError` when malformed."""
        basis = headers.get(ACCESS_BASIS_HEADER)
        reason = headers.get(ACCESS_REASON_HEADER)
        acting_for = headers.get(ACTING_FOR_HEADER)
        if basis is None and reason is None and acting_for is None:
            return self
        parsed_basis = None
        if basis is not None:
            try:
                parsed_basis = AccessBasis(basis.strip().upper())
            except ValueError:
                allowed = ", ".join(b.value for b in AccessBasis)
                raise RequestHeaderError(
                    f"{ACCESS_BASIS_HEADER} must be one of {allowed}, not {basis[:40]!r}"
                ) from None
        if reason is not None:
            try:
                reason = unquote(reason, errors="strict").strip() if reason.isascii() else None
            except UnicodeDecodeError:
                reason = None
            if reason is None or not reason.isprintable() or len(reason) > MAX_REASON_LENGTH:
                raise RequestHeaderError(
                    f"{ACCESS_REASON_HEADER} must be percent-encoded UTF-8 text of at most "
                    f"{MAX_REASON_LENGTH} characters"
                )
        if acting_for is not None:
            acting_for = acting_for.strip()
            if not (acting_for.isascii() and acting_for.isdigit() and len(acting_for) == 11):
                raise RequestHeaderError(f"{ACTING_FOR_HEADER} must be an 11-digit number")
            if self.principal is not Principal.CITIZEN:
                raise RequestHeaderError(f"only citizens send {ACTING_FOR_HEADER}")
        return replace(
            self, access_basis=parsed_basis, access_reason=reason or None, acting_for=acting_for
        )

    @property
    def patient_person(self) -> str | None:
        """A citizen's: the person whose information they ask for (themselves, or whom
        they act for)."""
        return self.acting_for or self.person_id

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
