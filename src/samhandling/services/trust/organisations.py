"""Which organisation a token speaks for: the client's own, a child organisation it names,
or (multi-tenant clients) a customer that has delegated to the supplier.

HelseID's ``authorization_details`` of type ``helseid_authorization`` (norway.md §1.6).
"""

from __future__ import annotations

from typing import Any

import orjson

from samhandling.platform.auth import claims as c
from samhandling.services.trust.clients import Client, ClientError, ClientRegistry, check_orgnr
from samhandling.services.trust.errors import OAuthError

DETAILS_TYPE = "helseid_authorization"
ENH_SYSTEM = "urn:oid:2.16.578.1.12.4.1.2.101"  # single tenant: the child's orgnr
ISO6523_SYSTEM = "urn:oid:1.0.6523"  # multi tenant: NO:ORGNR:<parent>:<child>


def _invalid(description: str) -> OAuthError:
    return OAuthError("invalid_authorization_details", description)


def parse_details(raw: object) -> list[dict[str, Any]]:
    """``authorization_details`` as a list of objects (a form value is a JSON string)."""
    if raw is None or raw == "":
        return []
    if isinstance(raw, str):
        try:
            raw = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise _invalid("authorization_details must be JSON") from None
    details = raw if isinstance(raw, list) else [raw]
    if not all(isinstance(d, dict) and isinstance(d.get("type"), str) for d in details):
        raise _invalid("each authorization_details entry must be an object with a type")
    return details


def _requested_org(details: list[dict[str, Any]]) -> tuple[str, str] | None:
    for entry in details:
        if entry["type"] != DETAILS_TYPE:
            continue
        try:
            identifier = entry["practitioner_role"]["organization"]["identifier"]
            return str(identifier["system"]), str(identifier["value"])
        except (KeyError, TypeError):
            raise _invalid(
                "helseid_authorization needs practitioner_role.organization.identifier"
            ) from None
    return None


async def organisation_claims(
    client: Client, details: list[dict[str, Any]], clients: ClientRegistry
) -> dict[str, str]:
    """The organisation claims for a token of ``client`` given its authorization details."""
    if client.orgnr is None:  # a citizen-facing client speaks for no organisation
        return {c.CLIENT_TENANCY: c.TENANCY_NONE}
    requested = _requested_org(details)
    if client.tenancy == c.TENANCY_SINGLE:
        claims = {c.CLIENT_TENANCY: c.TENANCY_SINGLE, c.ORGNR_PARENT: client.orgnr}
        if requested is None:
            return claims
        system, child = requested
        if system != ENH_SYSTEM:
            raise _invalid(f"a single-tenant client names its child organisation in {ENH_SYSTEM}")
        if child not in client.child_orgnrs:
            raise _invalid(f"{child} is not a child organisation registered for this client")
        return {**claims, c.ORGNR_CHILD: child}
    claims = {c.CLIENT_TENANCY: c.TENANCY_MULTI, c.ORGNR_SUPPLIER: client.orgnr}
    if requested is None:
        return claims
    system, value = requested
    parts = value.split(":")
    if system != ISO6523_SYSTEM or len(parts) != 4 or parts[:2] != ["NO", "ORGNR"]:
        raise _invalid(f"a multi-tenant client names NO:ORGNR:<parent>:<child> in {ISO6523_SYSTEM}")
    parent, child = parts[2], parts[3]
    try:
        check_orgnr(parent)
        if child:
            check_orgnr(child)
    except ClientError as exc:
        raise _invalid(str(exc)) from None
    if not await clients.delegated(parent, client.orgnr):
        raise _invalid(f"{parent} has not delegated to the supplier {client.orgnr}")
    claims[c.ORGNR_PARENT] = parent
    if child:
        claims[c.ORGNR_CHILD] = child
    return claims
