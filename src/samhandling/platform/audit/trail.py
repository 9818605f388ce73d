"""`AuditTrail`: the engine's `Trail`, turning each interaction on personal information into
one audit record.

An interaction touched personal information when the type it addressed, or the type of a
resource it returned or wrote, is in the Patient compartment. Its record names the caller
(with the profession HPR gives and the organisation's name, as they were at the time), the
persons concerned (the patients of what it returned or wrote, the patient a search named,
the patient a refusal protected), the resources, the query, the access basis and reason,
and the outcome. Writes are recorded in their own transaction; everything else is
group-committed before the response is sent.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import parse_qsl

import orjson

from samhandling.platform.audit.log import AuditLog
from samhandling.platform.audit.record import AuditAgent, AuditRecord
from samhandling.platform.auth.context import AccessBasis, AccessContext, Principal
from samhandling.platform.fhir import access
from samhandling.platform.fhir.access import Accessed
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.storage import StoreTransaction
from samhandling.platform.fhir.validation import check_id, check_resource_type
from samhandling.platform.policy.control import Policy
from samhandling.platform.policy.patients import PATIENT_PREFIX, in_patient_compartment
from samhandling.platform.policy.registers import (
    OrganisationRegister,
    PersonnelRegister,
    PersonRegister,
)
from samhandling.platform.policy.rules import Denied, Refused

ACTIONS = {
    access.CREATE: "C",
    access.READ: "R",
    access.SEARCH: "R",
    access.HISTORY: "R",
    access.UPDATE: "U",
    access.PATCH: "U",
    access.DELETE: "D",
}
MAX_ENTITIES = 1000  # a search page holds at most this many; more would be a bug


class AuditTrail:
    """Records every interaction on personal information in the audit log."""

    def __init__(
        self,
        log: AuditLog,
        policy: Policy,
        engine: FhirEngine,
        persons: PersonRegister,
        personnel: PersonnelRegister,
        organisations: OrganisationRegister,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._log = log
        self._policy = policy
        self._engine = engine
        self._persons = persons
        self._personnel = personnel
        self._organisations = organisations
        self._clock = clock

    async def record(self, event: Accessed, tx: StoreTransaction | None) -> None:
        """Record ``event`` if it touched personal information (inside ``tx`` when given)."""
        context = event.context
        if not isinstance(context, AccessContext):
            return
        personal = _personal_types(event)
        if not personal and event.kind != access.TRANSACTION:
            return
        record = await self.audit_record(event, context, personal)
        if tx is not None:
            await self._log.append(tx, [record])
        else:
            await self._log.record(record)

    async def audit_record(
        self, event: Accessed, context: AccessContext, personal: list[str]
    ) -> AuditRecord:
        """The audit record of ``event``."""
        basis = context.access_basis
        error = event.error
        return AuditRecord(
            recorded=self._clock(),
            service=self._policy.service_of(
                event.governed_by or (personal[0] if personal else None)
            ).service,
            interaction=_interaction(event),
            action=ACTIONS.get(event.kind, "E"),
            outcome=_outcome(event.status),
            agent=await self._agent(context),
            patients=await self._patients(event, personal),
            entities=_entities(event),
            query=event.query,
            outcome_text=_outcome_text(error) if error is not None else None,
            access_basis=basis.value if basis is not None else None,
            reason=context.access_reason,
            emergency=basis is AccessBasis.EMERGENCY,
        )

    async def _agent(self, context: AccessContext) -> AuditAgent:
        profession = profession_name = None
        if context.principal is Principal.PERSONNEL and context.hpr_number:
            approvals = await self._personnel.professions_in_force(context.hpr_number)
            if approvals:
                profession, profession_name = approvals[0]
        orgnr = context.orgnr_parent
        return AuditAgent(
            kind=context.principal.value,
            client_id=context.client_id,
            client_name=context.client_name,
            person_id=context.person_id,
            name=context.name,
            hpr_number=context.hpr_number,
            profession=profession,
            profession_name=profession_name,
            orgnr=orgnr,
            org_name=await self._organisations.name(orgnr) if orgnr else None,
            child_orgnr=context.orgnr_child,
            actor_client_id=context.actor_client_id,
            acting_for=context.acting_for,
        )

    async def _patients(self, event: Accessed, personal: list[str]) -> tuple[str, ...]:
        """The persons concerned, by number where the person register knows one."""
        finder = self._policy.finder
        keys: set[str] = set()
        if finder is not None:
            for touched in event.touched:
                if touched.content is not None and touched.type in personal:
                    resource = orjson.loads(touched.content)
                    keys.update(await finder.patients_of(touched.type, resource))
            if event.kind == access.SEARCH and event.query and event.type:
                keys.update(self._searched_patients(event.type, event.query))
        if isinstance(event.error, (Denied, Refused)):
            keys.update(event.error.persons)
            if not keys and event.type in personal:
                keys.update(await self._target_patients(event.target))
        numbers = set()
        for key in keys:
            if key.startswith(PATIENT_PREFIX):
                key = await self._persons.pid_of(key[len(PATIENT_PREFIX) :]) or key
            numbers.add(key)
        return tuple(sorted(numbers))

    async def _target_patients(self, target: str) -> set[str]:
        """The patients of the resource a refused read or write addressed (refused before
        it was read), so the refusal is in their log too."""
        parts = target.split("/")
        if len(parts) < 2 or not parts[1] or self._policy.finder is None:
            return set()
        try:
            check_resource_type(parts[0])
            check_id(parts[1])
        except FhirError:
            return set()
        found = await self._engine.store.read(parts[0], parts[1])
        if found is None or found.content is None:
            return set()
        return await self._policy.finder.patients_of(parts[0], orjson.loads(found.content))

    def _searched_patients(self, type: str, query: str) -> set[str]:
        """The patients a search's criteria name (a search that found nothing still looked
        for them)."""
        assert self._policy.finder is not None
        try:
            request = self._engine.parse_search((type,), parse_qsl(query))
        except FhirError:
            return set()
        return self._policy.finder.of_search(request)


def _personal_types(event: Accessed) -> list[str]:
    types = dict.fromkeys(
        t for t in (event.type, *(touched.type for touched in event.touched)) if t is not None
    )
    return [t for t in types if in_patient_compartment(t)]


def _interaction(event: Accessed) -> str:
    if event.kind == access.READ and "/_history/" in event.target:
        return "vread"
    return event.kind


def _outcome(status: int) -> int:
    if status < 400:
        return 0
    if status in (401, 403):
        return 8
    return 12 if status >= 500 else 4


def _outcome_text(error: FhirError) -> str:
    text = str(error)
    return f"{error.reason.value}: {text}" if isinstance(error, Denied) else text


def _entities(event: Accessed) -> tuple[str, ...]:
    seen = dict.fromkeys(f"{t.type}/{t.id}/_history/{t.version}" for t in event.touched)
    return tuple(list(seen)[:MAX_ENTITIES])
