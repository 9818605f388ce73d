"""`Policy`: the platform's access decisions for the FHIR API (an `AccessControl`).

It combines the services' declared policies (scopes, narrowing, redaction, write checks
for the types each owns) with the health-data rules (`rules`), which it applies to every
type a ``health`` service owns in the Patient compartment: the caller is judged before
anything is touched (`authorize`), a search is narrowed in the query to the one patient it
names, minus the entries hidden from the caller (`narrow`), and every resource returned or
written is judged by the patients it concerns (`present`, `permit_write`).
"""

from __future__ import annotations

from collections.abc import Iterable

import orjson

from samhandling.platform.auth.context import AccessContext, Principal
from samhandling.platform.fhir.access import HISTORY, READ_KINDS
from samhandling.platform.fhir.definitions import patient_compartment
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError, not_found
from samhandling.platform.fhir.search.executor import SearchPage
from samhandling.platform.fhir.search.query import Compartment, Leaf, SearchRequest
from samhandling.platform.policy.patients import (
    PATIENT_PREFIX,
    SECURITY_CONTEXT_TYPES,
    PatientFinder,
    in_patient_compartment,
)
from samhandling.platform.policy.rules import (
    Decision,
    Denied,
    Reason,
    Refused,
    Rules,
    caller_denial,
)
from samhandling.platform.policy.service import ServicePolicy

NO_PATIENT = "-"  # a Patient id nothing has: a search for a person without one finds nothing


class Policy:
    """Scopes, service rules and health-data rules, asked by the engine's REST layer."""

    def __init__(
        self,
        default_read: str,
        default_write: str,
        services: Iterable[ServicePolicy] = (),
        *,
        engine: FhirEngine | None = None,
        rules: Rules | None = None,
        default_service: str = "fhir",
        default_health: bool = False,
    ) -> None:
        self.default = ServicePolicy(
            frozenset(), default_read, default_write, default_service, default_health
        )
        self._by_type: dict[str, ServicePolicy] = {}
        services = tuple(services)
        for service in services:
            for type_name in service.types:
                if type_name in self._by_type:
                    raise ValueError(f"two services declare a policy for {type_name}")
                self._by_type[type_name] = service
        self._policies = (self.default, *services)
        self._scopes: dict[tuple[bool, str | None], tuple[str, ...]] = {}
        self.rules = rules
        self.finder = PatientFinder(engine) if engine is not None else None
        self._engine = engine
        self._any_health = rules is not None and any(p.health for p in self._policies)

    def service_of(self, type: str | None) -> ServicePolicy:
        """The policy of the service that owns ``type``."""
        return self._by_type.get(type, self.default) if type else self.default

    def is_health(self, type: str | None) -> bool:
        """Whether the health-data rules apply to ``type`` (None: a system-level request,
        which may touch every type)."""
        if self.rules is None:
            return False
        if type is None:
            return self._any_health
        return self.service_of(type).health and in_patient_compartment(type)

    def scopes_for(self, kind: str, type: str | None) -> tuple[str, ...]:
        """The scopes ``kind`` on ``type`` needs (None: every type, so every service's)."""
        read = kind in READ_KINDS
        key = (read, type)
        scopes = self._scopes.get(key)
        if scopes is None:
            policies = [self.service_of(type)] if type else self._policies
            scopes = tuple(dict.fromkeys(p.read_scope if read else p.write_scope for p in policies))
            if len(self._scopes) < 10_000:  # types are few; never grow without bound
                self._scopes[key] = scopes
        return scopes

    async def authorize(self, context: object, kind: str, type: str | None) -> None:
        """Refuse unless the token has the scope ``kind`` on ``type`` needs, and, for health
        information, the caller may see some at all (level, HPR, basis, representation)."""
        if not isinstance(context, AccessContext):
            raise FhirError.of(401, "login", "an access token is required")
        for scope in self.scopes_for(kind, type):
            if scope not in context.scopes:
                what = type or "every resource type"
                error = FhirError.of(403, "forbidden", f"{kind} of {what} needs scope {scope}")
                error.headers["www-authenticate"] = (
                    f'DPoP error="insufficient_scope", scope="{scope}"'
                )
                raise error
        if context.principal is Principal.SYSTEM or self.rules is None:
            return
        service = self.service_of(type)
        if self.is_health(type):
            denial = caller_denial(context)
            if denial is not None:
                raise denial
            await self.rules.check_personnel(context)
            if kind == HISTORY or type is None:
                raise Denied(
                    Reason.PATIENT_REQUIRED,
                    "health information is read or searched one patient at a time",
                )
        if (
            context.acting_for is not None
            and context.acting_for != context.person_id
            and (type is None or in_patient_compartment(type))
        ):
            decision = await self.rules.representation(context, service.service)
            _check_types(decision, type, kind not in READ_KINDS)

    async def narrow(self, context: object, request: SearchRequest) -> None:
        """Let the owners of the searched types restrict the search; then keep a search of
        health information to the one patient it names, minus what is hidden."""
        assert isinstance(context, AccessContext)
        for type_name in request.types:
            narrow = self.service_of(type_name).narrow.get(type_name)
            if narrow is not None:
                await narrow(context, request)
        health = [t for t in request.types if self.is_health(t)]
        if not health:
            return
        assert self.rules is not None and self.finder is not None
        keys = self.finder.of_search(request)
        named = bool(keys)  # the criteria already keep the search to these patients
        if not keys and context.principal is Principal.SYSTEM:
            return  # systems may search across patients: `present` judges each result
        services = {self.service_of(t).service for t in health}
        if len(health) != len(request.types) or len(services) > 1:
            raise Denied(
                Reason.PATIENT_REQUIRED, "search one service's health information at a time"
            )
        if not keys and context.principal is Principal.CITIZEN:
            keys = {context.patient_person or ""}
        if len(keys) != 1 and context.principal is not Principal.SYSTEM:
            raise Denied(
                Reason.PATIENT_REQUIRED,
                "a search of health information must name one patient "
                "(patient=, subject=, patient.identifier= or Patient/[id]/[type])",
            )
        service = services.pop()
        hidden: set[str] = set()
        for key in keys:
            pid, patient_id = await self._person_of(key)
            decision = await self._decide(context, service, pid)
            for type_name in health:
                _check_types(decision, type_name, False)
            if not named:
                request.criteria.append(self._compartment(health, patient_id or NO_PATIENT))
            if not decision.own:
                hidden.update(
                    ref.split("/", 1)[1] for ref in decision.hidden if ref.split("/")[0] in health
                )
        if hidden:
            request.criteria.append(Leaf(None, "_id", "not", tuple(sorted(hidden))))

    def _compartment(self, types: list[str], patient_id: str) -> Compartment:
        """The criterion that keeps a search of ``types`` to one patient's compartment."""
        assert self._engine is not None
        registry = self._engine.registry
        params = tuple(
            p
            for t in types
            for code in patient_compartment().get(t, ())
            if (p := registry.get(t, code)) is not None
        )
        return Compartment(params, "Patient", patient_id)

    async def present(
        self, context: object, type: str, content: bytes, current: bool = True
    ) -> bytes | None:
        """The owner's view of one resource for this caller; None when it is hidden from
        them (or, for a citizen, not theirs); `Denied` when its patient refuses them."""
        assert isinstance(context, AccessContext)
        present = self.service_of(type).present.get(type)
        if present is not None:
            shown = await present(context, content, current)
            if shown is None:
                return None
            content = shown
        if not self.is_health(type):
            return content
        resource = orjson.loads(content)  # references and ids only: no exact decimals
        try:
            decision = await self._judge(context, type, resource)
        except Denied as denied:
            if denied.reason is Reason.NOT_OWN:  # quiet: as if it did not exist
                return None
            raise
        if decision is not None and _hidden(decision, type, resource):
            return None
        return content

    async def annotate(self, context: object, request: SearchRequest, page: SearchPage) -> None:
        """Let the owners of the searched types add warnings."""
        assert isinstance(context, AccessContext)
        for type_name in request.types:
            annotate = self.service_of(type_name).annotate.get(type_name)
            if annotate is not None:
                await annotate(context, request, page)

    async def permit_write(
        self, context: object, type: str, new: dict | None, current: bytes | None
    ) -> None:
        """For health information, the rules for the patients of the stored resource (so
        that a hidden or refused one is not revealed by the owner's rules); the owner's
        write rule; then the rules for the patients of the new resource."""
        if not isinstance(context, AccessContext):
            raise FhirError.of(401, "login", "an access token is required")
        health = self.is_health(type)
        if health and current is not None:
            before = orjson.loads(current)
            decision = await self._judge(context, type, before, writing=True)
            if decision is not None and _hidden(decision, type, before):
                raise not_found(type, str(before.get("id")))
        permit = self.service_of(type).permit_write.get(type)
        if permit is not None:
            try:
                await permit(context, new, current)
            except FhirError as error:
                if not health or isinstance(error, Denied):
                    raise
                assert self.finder is not None
                concerned = set()
                for resource in (new, orjson.loads(current) if current is not None else None):
                    if resource is not None:
                        concerned |= await self.finder.patients_of(type, resource)
                raise Refused(error, tuple(sorted(concerned))) from None
        if health and new is not None:
            await self._judge(context, type, new, writing=True)

    async def _judge(
        self, context: AccessContext, type: str, resource: dict, writing: bool = False
    ) -> Decision | None:
        """The decision for the patients of ``resource`` (the last, when several: all must
        allow); None when it concerns no patient and the caller is not a citizen."""
        assert self.finder is not None
        keys = await self.finder.patients_of(type, resource)
        service = self.service_of(type).service
        if not keys:
            if context.principal is Principal.CITIZEN:
                raise Denied(Reason.NOT_OWN, "citizens see their own information only")
            return None
        decision = None
        for key in keys:
            pid, _ = await self._person_of(key)
            decision = await self._decide(context, service, pid)
            _check_types(decision, type, writing)
        return decision

    async def _decide(self, context: AccessContext, service: str, pid: str | None) -> Decision:
        assert self.rules is not None
        try:
            return await self.rules.decide(context, service, pid)
        except Denied as denied:
            denied.persons = (pid,) if pid else ()
            raise

    async def _person_of(self, key: str) -> tuple[str | None, str | None]:
        """(person number, Patient id) of a patient key."""
        assert self.rules is not None
        persons = self.rules.persons
        if key.startswith(PATIENT_PREFIX):
            patient_id = key[len(PATIENT_PREFIX) :]
            return await persons.pid_of(patient_id), patient_id
        facts = await persons.facts(key)
        return key, facts.patient_id if facts else None


def _check_types(decision: Decision, type: str | None, writing: bool) -> None:
    if decision.types is not None and (type is None or type not in decision.types):
        raise Denied(
            Reason.RESTRICTED, f"a representative of a person aged 12 to 15 cannot see {type}"
        )
    if writing and not decision.writes:
        raise Denied(Reason.RESTRICTED, "a representative of a person aged 12 to 15 cannot write")


def _hidden(decision: Decision, type: str, resource: dict) -> bool:
    """Whether the entry is hidden from the caller (a Binary: when what it holds is)."""
    if decision.own or not decision.hidden:
        return False
    if f"{type}/{resource.get('id')}" in decision.hidden:
        return True
    context = resource.get("securityContext") if type in SECURITY_CONTEXT_TYPES else None
    return isinstance(context, dict) and context.get("reference") in decision.hidden
