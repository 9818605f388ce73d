"""The audit trail: one record for every access to personal health information.

Each `AuditRecord` says who (the person, their HPR number and profession, the organisation,
the client application), whose information and what (the persons concerned, the resources),
why (the access basis and the reason given), when, and with what outcome. It is stored as
canonical JSON and shown as a FHIR R4 AuditEvent (IHE Basic Audit Log Patterns). Citizens
read the records that concern them across every service (`events_for`: "who has seen my
information"); auditors read them all (`events`).

Guarantees:

- Durable before the access is answered: `AuditLog.record` returns once the records are
  committed (concurrent callers share a transaction: group commit), and `AuditLog.append`
  writes them in the transaction of the write they audit, committed or rolled back with it.
  A failed write raises, so the request it audits fails too.
- Append-only: database triggers refuse UPDATE, DELETE and TRUNCATE of the audit tables.
- Tamper-evident: every row is in a hash chain (HMAC-SHA256 under a key derived from the
  platform secret, so database access alone cannot recompute it) over the previous row's
  hash, its place in the chain, its time, the persons concerned and the record. `verify`
  (``samhandling audit verify``) detects any row or person mapping changed, inserted or
  removed, a chain's newest rows removed, and a whole chain removed (but the last one
  registered), by someone who could bypass the triggers (a database administrator). It
  cannot detect the database being put back to an earlier copy of itself, nor the last
  registered chain removed whole: that needs the chain heads kept somewhere else too.
"""

from __future__ import annotations

from samhandling.platform.audit.log import AuditLog, AuditLogStopped
from samhandling.platform.audit.query import StoredEvent, events, events_for
from samhandling.platform.audit.record import AuditAgent, AuditRecord
from samhandling.platform.audit.verify import Problem, VerifyReport, verify

AUDIT_KEY_PURPOSE = "samhandling/audit-chain"  # derive(platform_secret, AUDIT_KEY_PURPOSE)

__all__ = [
    "AUDIT_KEY_PURPOSE",
    "AuditAgent",
    "AuditLog",
    "AuditLogStopped",
    "AuditRecord",
    "Problem",
    "StoredEvent",
    "VerifyReport",
    "events",
    "events_for",
    "verify",
]
