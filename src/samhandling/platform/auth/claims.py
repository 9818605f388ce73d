"""Claim and scope names, as HelseID spells them (``shared/reference/norway.md`` §1.7–1.8)."""

from __future__ import annotations

PID = "helseid://claims/identity/pid"
SECURITY_LEVEL = "helseid://claims/identity/security_level"
ASSURANCE_LEVEL = "helseid://claims/identity/assurance_level"
NETWORK = "helseid://claims/identity/network"
HPR_NUMBER = "helseid://claims/hpr/hpr_number"
CLIENT_NAME = "helseid://claims/client/client_name"
CLIENT_AMR = "helseid://claims/client/amr"
ORGNR_PARENT = "helseid://claims/client/claims/orgnr_parent"
ORGNR_CHILD = "helseid://claims/client/claims/orgnr_child"
ORGNR_SUPPLIER = "helseid://claims/client/claims/orgnr_supplier"
CLIENT_TENANCY = "helseid://claims/client/claims/client_tenancy"
# samhandling's own: which kind of caller the token speaks for (HelseID issues only
# health-personnel and system tokens; citizen tokens come from ID-porten in Norway)
PRINCIPAL = "samhandling://claims/principal"

SCOPE_PID = "helseid://scopes/identity/pid"
SCOPE_SECURITY_LEVEL = "helseid://scopes/identity/security_level"
SCOPE_ASSURANCE_LEVEL = "helseid://scopes/identity/assurance_level"
SCOPE_HPR_NUMBER = "helseid://scopes/hpr/hpr_number"
IDENTITY_SCOPES = frozenset(
    {
        "openid",
        "profile",
        "offline_access",
        SCOPE_PID,
        SCOPE_SECURITY_LEVEL,
        SCOPE_ASSURANCE_LEVEL,
        SCOPE_HPR_NUMBER,
        "helseid://scopes/identity/network",
    }
)

TENANCY_NONE = "none"
TENANCY_SINGLE = "single-tenant"
TENANCY_MULTI = "multi-tenant"
