"""Reading the audit trail: a person's access log ("who has seen my information") and the
auditors' listing, newest first, paged by keyset (``before_id``: the last id of a page)."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from samhandling.platform.audit.chain import Dialect
from samhandling.platform.audit.record import AuditRecord
from samhandling.platform.fhir.storage import Store


@dataclass(frozen=True, slots=True)
class StoredEvent:
    """A stored audit record and its global id (the order records were stored in)."""

    id: int
    record: AuditRecord


async def events_for(
    store: Store,
    persons: Collection[str],
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    service: str | None = None,
    emergency_only: bool = False,
    before_id: int | None = None,
    limit: int = 50,
) -> list[StoredEvent]:
    """Records concerning any of ``persons`` (national identity numbers, or "Patient/<id>"),
    recorded in [``since``, ``until``), newest first."""
    if not persons:
        return []
    dialect = Dialect(store)
    where, args = _conditions(dialect, "p.recorded", "p.record_id", since, until, before_id)
    filters, filter_args = _record_filters(dialect, service, emergency_only)
    if len(persons) == 1:  # the common case: walk the person's index backwards
        sql = (
            "SELECT r.id, r.record FROM audit_patient p JOIN audit_record r ON r.id = p.record_id"
            f" WHERE {' AND '.join(['p.person = ?', *where, *filters])}"
            " ORDER BY p.record_id DESC LIMIT ?"
        )
        arguments = [*persons, *args, *filter_args, limit]
    else:  # a record concerning several of them is listed once
        among, persons_arg = dialect.in_list("p.person", persons)
        sql = (
            "SELECT r.id, r.record FROM audit_record r WHERE r.id IN"
            f" (SELECT p.record_id FROM audit_patient p WHERE {' AND '.join([among, *where])})"
            f"{''.join(f' AND {f}' for f in filters)} ORDER BY r.id DESC LIMIT ?"
        )
        arguments = [persons_arg, *args, *filter_args, limit]
    return _events(await store.fetch(dialect.sql(sql), arguments))


async def events(
    store: Store,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    service: str | None = None,
    emergency_only: bool = False,
    before_id: int | None = None,
    limit: int = 50,
) -> list[StoredEvent]:
    """Every record (for auditors) recorded in [``since``, ``until``), newest first."""
    dialect = Dialect(store)
    where, args = _conditions(dialect, "r.recorded", "r.id", since, until, before_id)
    filters, filter_args = _record_filters(dialect, service, emergency_only)
    conditions = [*where, *filters]
    sql = (
        "SELECT r.id, r.record FROM audit_record r"
        + (f" WHERE {' AND '.join(conditions)}" if conditions else "")
        + " ORDER BY r.id DESC LIMIT ?"
    )
    return _events(await store.fetch(dialect.sql(sql), [*args, *filter_args, limit]))


def _conditions(
    dialect: Dialect,
    recorded: str,
    id: str,
    since: datetime | None,
    until: datetime | None,
    before_id: int | None,
) -> tuple[list[str], list[Any]]:
    where: list[str] = []
    args: list[Any] = []
    for condition, value in (
        (f"{recorded} >= ?", None if since is None else dialect.time(since)),
        (f"{recorded} < ?", None if until is None else dialect.time(until)),
        (f"{id} < ?", before_id),
    ):
        if value is not None:
            where.append(condition)
            args.append(value)
    return where, args


def _record_filters(
    dialect: Dialect, service: str | None, emergency_only: bool
) -> tuple[list[str], list[Any]]:
    filters = [dialect.is_true("r.emergency")] if emergency_only else []
    if service is None:
        return filters, []
    return [*filters, "r.service = ?"], [service]


def _events(rows: list[Any]) -> list[StoredEvent]:
    return [StoredEvent(row[0], AuditRecord.from_json(bytes(row[1]))) for row in rows]
