"""The audit trail's HTTP API: a citizen's access log, and the auditors' listing.

``GET /audit/access-log`` (scope ``samhandling:audit/own``): "who has seen my information":
every access by others to the signed-in citizen's information, across every service, newest
first; with ``samhandling-acting-for`` the log of a person they represent. Filters: ``from``
and ``to`` (dates or instants), ``service``, ``emergency=true``; paging with ``count`` and
the ``next`` link. JSON, for the citizen portal.

``GET /audit/AuditEvent`` (scope ``samhandling:audit/read``): every record as a FHIR
searchset Bundle of AuditEvents, for auditors and follow-up of emergency accesses.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from samhandling.platform.audit.query import StoredEvent, events, events_for
from samhandling.platform.audit.record import AuditRecord
from samhandling.platform.auth.context import AccessContext, Principal
from samhandling.platform.auth.guard import ACCESS_CONTEXT, ApiResource
from samhandling.platform.fhir.content import dumps
from samhandling.platform.fhir.datetimes import DateTimeFormatError, format_instant, parse_range
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.rest.http import error_response, fhir_response
from samhandling.platform.fhir.storage import Store
from samhandling.platform.policy.rules import Rules

OWN_SCOPE = "samhandling:audit/own"
READ_SCOPE = "samhandling:audit/read"
AUDIT_API = ApiResource(
    name="samhandling:audit",
    title="Audit trail",
    scopes={
        OWN_SCOPE: "a citizen's own access log (and of those they represent)",
        READ_SCOPE: "every audit record (auditors, follow-up of emergency access)",
    },
)
PREFIX = "/audit"
SERVICE_NAME = "audit"  # in representation (a power of attorney may cover it)
DEFAULT_COUNT = 50
MAX_COUNT = 200
MAX_FETCHES = 10  # pages read to fill one page of others' accesses


def required_scope(method: str, path: str) -> str:
    """The scope a request to the audit API needs."""
    return READ_SCOPE if path.endswith("/AuditEvent") else OWN_SCOPE


def audit_routes(store: Callable[[], Store], rules: Callable[[], Rules]) -> list[Route]:
    """The audit API's routes (behind a guard that checks the token and the scope)."""

    async def access_log(request: Request) -> Response:
        try:
            return JSONResponse(await _access_log(request, store(), rules()))
        except FhirError as error:
            return error_response(error)

    async def audit_events(request: Request) -> Response:
        try:
            return fhir_response(dumps(await _audit_events(request, store())))
        except FhirError as error:
            return error_response(error)

    return [
        Route(f"{PREFIX}/access-log", access_log, methods=["GET"]),
        Route(f"{PREFIX}/AuditEvent", audit_events, methods=["GET"]),
    ]


async def _access_log(request: Request, store: Store, rules: Rules) -> dict[str, Any]:
    context = request.scope[ACCESS_CONTEXT]
    assert isinstance(context, AccessContext)
    if context.principal is not Principal.CITIZEN or not context.person_id:
        raise FhirError.of(403, "forbidden", "the access log is the signed-in citizen's")
    await rules.representation(context, SERVICE_NAME)  # Denied unless they may act for them
    person = context.patient_person
    assert person is not None
    query = _Query.of(request)
    entries: list[dict[str, Any]] = []
    before = query.before
    more = False
    for _ in range(MAX_FETCHES):
        page = await events_for(
            store,
            [person],
            since=query.since,
            until=query.until,
            service=query.service,
            emergency_only=query.emergency,
            before_id=before,
            limit=query.count,
        )
        for stored in page:
            if len(entries) < query.count and stored.record.agent.person_id != person:
                entries.append(_entry(stored))
                before = stored.id
        more = len(page) == query.count
        if len(entries) >= query.count or not more:
            break
        before = page[-1].id
    body: dict[str, Any] = {"person": person, "entries": entries}
    if more and before is not None:
        body["next"] = _next_url(request, before)
    return body


def _entry(stored: StoredEvent) -> dict[str, Any]:
    """One access, as the citizen's log shows it."""
    record: AuditRecord = stored.record
    agent = record.agent
    who: dict[str, Any] = {"kind": agent.kind}
    for key, value in (
        ("name", agent.name),
        ("hprNumber", agent.hpr_number),
        ("profession", agent.profession_name or agent.profession),
        ("organisation", agent.org_name),
        ("organisationNumber", agent.orgnr),
        ("system", agent.client_name or agent.client_id),
        ("actingFor", agent.acting_for),
    ):
        if value:
            who[key] = value
    entry: dict[str, Any] = {
        "id": str(stored.id),
        "time": format_instant(record.recorded),
        "service": record.service,
        "interaction": record.interaction,
        "who": who,
        "what": list(record.entities),
        "outcome": "ok" if record.outcome == 0 else "refused",
        "emergency": record.emergency,
    }
    if record.access_basis:
        entry["basis"] = record.access_basis
    if record.reason:
        entry["reason"] = record.reason
    if record.outcome_text:
        entry["outcomeText"] = record.outcome_text
    return entry


async def _audit_events(request: Request, store: Store) -> dict[str, Any]:
    context = request.scope[ACCESS_CONTEXT]
    assert isinstance(context, AccessContext)
    if context.principal is Principal.CITIZEN:  # a citizen reads their own access log
        raise FhirError.of(
            403, "forbidden", "the audit trail is for auditors; see /audit/access-log"
        )
    query = _Query.of(request)
    found = await events(
        store,
        since=query.since,
        until=query.until,
        service=query.service,
        emergency_only=query.emergency,
        before_id=query.before,
        limit=query.count,
    )
    base = str(request.url.replace(query=""))
    links = [{"relation": "self", "url": str(request.url)}]
    if len(found) == query.count:
        links.append({"relation": "next", "url": _next_url(request, found[-1].id)})
    bundle: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "link": links}
    if found:
        bundle["entry"] = [
            {
                "fullUrl": f"{base}/{stored.id}",
                "resource": stored.record.to_fhir(str(stored.id)),
                "search": {"mode": "match"},
            }
            for stored in found
        ]
    return bundle


class _Query:
    """The filters and paging of a request to the audit API."""

    def __init__(
        self,
        since: datetime | None,
        until: datetime | None,
        service: str | None,
        emergency: bool,
        before: int | None,
        count: int,
    ) -> None:
        self.since, self.until, self.service = since, until, service
        self.emergency, self.before, self.count = emergency, before, count

    @classmethod
    def of(cls, request: Request) -> _Query:
        params = request.query_params
        since = _bound(params.get("from"), "from", start=True)
        until = _bound(params.get("to"), "to", start=False)
        emergency = params.get("emergency", "false")
        if emergency not in ("true", "false"):
            raise FhirError.of(400, "invalid", "emergency must be true or false", "emergency")
        return cls(
            since,
            until,
            params.get("service") or None,
            emergency == "true",
            _integer(params.get("cursor"), "cursor", 1, None),
            _integer(params.get("count"), "count", 1, MAX_COUNT) or DEFAULT_COUNT,
        )


def _bound(value: str | None, name: str, *, start: bool) -> datetime | None:
    """A date or instant as the start (``from``) or the end (``to``, inclusive) of a period."""
    if value is None:
        return None
    try:
        low, high = parse_range(value)
    except DateTimeFormatError as exc:
        raise FhirError.of(400, "invalid", f"{name}: {exc}", name) from None
    return (low if start else high).astimezone(UTC)


def _integer(value: str | None, name: str, low: int, high: int | None) -> int | None:
    if value is None:
        return None
    if not (value.isascii() and value.isdigit() and len(value) <= 15):
        raise FhirError.of(400, "invalid", f"{name} must be a whole number", name)
    number = int(value)
    if number < low or (high is not None and number > high):
        raise FhirError.of(400, "invalid", f"{name} must be between {low} and {high}", name)
    return number


def _next_url(request: Request, before: int) -> str:
    items = [(k, v) for k, v in request.query_params.multi_items() if k != "cursor"]
    items.append(("cursor", str(before)))
    return str(request.url.replace(query=urlencode(items)))
