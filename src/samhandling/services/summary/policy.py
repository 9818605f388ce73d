"""Who may read and write Kjernejournal: the platform's health-data rules (security level 4,
HPR, access basis, reservations, blocks, representation), plus Kjernejournal's own: only
health personnel register critical information, and a registration is never deleted (it is
marked entered-in-error, so its history stays)."""

from __future__ import annotations

from samhandling.platform.policy.service import ServicePolicy
from samhandling.services.summary.model import SERVICE_NAME, SUMMARY_TYPES

READ_SCOPE = "samhandling:kjernejournal/read"
WRITE_SCOPE = "samhandling:kjernejournal/write"


def summary_policy() -> ServicePolicy:
    """Kjernejournal's policy over the types it owns."""
    return ServicePolicy(
        types=SUMMARY_TYPES,
        read_scope=READ_SCOPE,
        write_scope=WRITE_SCOPE,
        service=SERVICE_NAME,
        health=True,
    )
