"""An audit record: who accessed whose health information, what, why, when and with what
outcome; stored as canonical JSON and shown as a FHIR R4 AuditEvent (IHE BALP)."""

from __future__ import annotations

import base64
from dataclasses import dataclass, fields
from datetime import datetime, timedelta
from typing import Any

import orjson

from samhandling.platform.fhir.datetimes import format_instant
from samhandling.platform.identifiers import (
    DNR_SYSTEM,
    FHN_SYSTEM,
    FNR_SYSTEM,
    HNR_SYSTEM,
    HPR_SYSTEM,
    ORGNR_SYSTEM,
    person_number_kind,
)

SCHEMA_VERSION = 1  # of the stored JSON; from_json refuses others
AGENT_KINDS = frozenset({"system", "personnel", "citizen"})
ACTIONS = frozenset("CRUDE")
OUTCOMES = frozenset({0, 4, 8, 12})
# the codes of http://hl7.org/fhir/restful-interaction (R4)
INTERACTIONS = frozenset({
    "read", "vread", "update", "patch", "delete", "history", "history-instance",
    "history-type", "history-system", "create", "search", "search-type", "search-system",
    "capabilities", "transaction", "batch", "operation",
})  # fmt: skip
# access basis (tilgangsgrunnlag) -> HL7 v3 ActReason purpose of use
ACCESS_BASES = {"SAMTYKKE": "TREAT", "AKUTT": "ETREAT", "UNNTAK": "TREAT"}

OWN = "http://samhandling.no/fhir"
ACCESS_BASIS_SYSTEM = f"{OWN}/CodeSystem/access-basis"
AUDIT_FLAG_SYSTEM = f"{OWN}/CodeSystem/audit-flag"
CLIENT_ID_SYSTEM = f"{OWN}/sid/client-id"  # trust service (HelseID) client ids
ACTING_FOR_URL = f"{OWN}/StructureDefinition/audit-acting-for"
PROFESSION_SYSTEM = "urn:oid:2.16.578.1.12.4.1.1.9060"  # Volven 9060 helsepersonellkategori
DICOM = "http://dicom.nema.org/resources/ontology/DCM"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"
ROLE_CLASS = "http://terminology.hl7.org/CodeSystem/v3-RoleClass"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
BALP_ENTITY_TYPE = "https://profiles.ihe.net/ITI/BALP/CodeSystem/BasicAuditEntityType"

_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "Restful Operation",
}
_SOURCE = {
    "observer": {"display": "samhandling"},
    "type": [{
        "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
        "code": "4",
        "display": "Application Server",
    }],
}  # fmt: skip
_SERVER_AGENT = {
    "type": {"coding": [{"system": DICOM, "code": "110152", "display": "Destination Role ID"}]},
    "who": {"display": "samhandling"},
    "requestor": False,
}
_PERSON_SYSTEMS = {"FNR": FNR_SYSTEM, "DNR": DNR_SYSTEM, "HNR": HNR_SYSTEM, "FHN": FHN_SYSTEM}


@dataclass(frozen=True, slots=True)
class AuditAgent:
    """Who accessed: the client application and, when someone is signed in, that person."""

    kind: str  # "system" | "personnel" | "citizen"
    client_id: str
    client_name: str | None = None
    person_id: str | None = None  # fødselsnummer / D-number of the signed-in person
    name: str | None = None
    hpr_number: str | None = None
    profession: str | None = None  # Volven 9060 code, e.g. "LE"
    profession_name: str | None = None  # e.g. "Lege"
    orgnr: str | None = None  # legal entity (organisation number)
    org_name: str | None = None
    child_orgnr: str | None = None  # sub-unit
    actor_client_id: str | None = None  # token exchange: the API acting for the caller
    acting_for: str | None = None  # a citizen acting for another person (their pid)

    def __post_init__(self) -> None:
        if self.kind not in AGENT_KINDS:
            raise ValueError(f"agent kind {self.kind!r} is not one of {sorted(AGENT_KINDS)}")


_AGENT_FIELDS = tuple(f.name for f in fields(AuditAgent))


@dataclass(frozen=True, slots=True)
class AuditRecord:
    """One access to personal health information (or an attempt at one)."""

    recorded: datetime  # aware UTC
    service: str  # which national service's data: "registries", "fhir", "kjernejournal", ...
    interaction: str  # read, vread, search, history, create, update, patch, delete, operation
    action: str  # AuditEvent.action: C R U D E
    outcome: int  # 0 success, 4 minor failure, 8 serious failure (denied), 12 major failure
    agent: AuditAgent
    patients: tuple[str, ...] = ()  # fnr/dnr of the persons concerned, or "Patient/<id>"
    entities: tuple[str, ...] = ()  # "Type/id" or "Type/id/_history/n" read or written
    query: str | None = None  # the search or operation query string, if any
    outcome_text: str | None = None  # reason code and message of a denial or failure
    access_basis: str | None = None  # SAMTYKKE | AKUTT | UNNTAK (health personnel)
    reason: str | None = None  # free-text reason given (required with AKUTT)
    emergency: bool = False  # AKUTT: flagged for follow-up and citizen notification
    request_id: str | None = None

    def __post_init__(self) -> None:
        if self.recorded.utcoffset() != timedelta(0):
            raise ValueError("recorded must be an aware UTC datetime")
        if self.interaction not in INTERACTIONS:
            raise ValueError(f"unknown interaction {self.interaction!r}")
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of C R U D E, not {self.action!r}")
        if self.outcome not in OUTCOMES:
            raise ValueError(f"outcome must be 0, 4, 8 or 12, not {self.outcome!r}")
        if self.access_basis is not None and self.access_basis not in ACCESS_BASES:
            raise ValueError(f"unknown access basis {self.access_basis!r}")
        # a list passed by mistake would make the record unhashable and unequal to its copy
        object.__setattr__(self, "patients", tuple(self.patients))
        object.__setattr__(self, "entities", tuple(self.entities))

    def to_json(self) -> bytes:
        """Canonical JSON (sorted keys; absent and default fields left out), as stored."""
        document: dict[str, Any] = {
            "schema": SCHEMA_VERSION,
            "recorded": format_instant(self.recorded),
            "service": self.service,
            "interaction": self.interaction,
            "action": self.action,
            "outcome": self.outcome,
            "agent": {
                name: value
                for name in _AGENT_FIELDS
                if (value := getattr(self.agent, name)) is not None
            },
        }
        for name in ("query", "outcome_text", "access_basis", "reason", "request_id"):
            if (value := getattr(self, name)) is not None:
                document[name] = value
        if self.patients:
            document["patients"] = self.patients
        if self.entities:
            document["entities"] = self.entities
        if self.emergency:
            document["emergency"] = True
        return orjson.dumps(document, option=orjson.OPT_SORT_KEYS)

    @classmethod
    def from_json(cls, data: bytes) -> AuditRecord:
        """The record of `to_json`'s bytes; ValueError for anything else."""
        document = orjson.loads(data)
        if not isinstance(document, dict) or document.pop("schema", None) != SCHEMA_VERSION:
            raise ValueError(f"not an audit record of schema version {SCHEMA_VERSION}")
        try:
            agent = AuditAgent(**document.pop("agent"))
            recorded = datetime.fromisoformat(document.pop("recorded"))
            patients = tuple(document.pop("patients", ()))
            entities = tuple(document.pop("entities", ()))
            return cls(recorded, agent=agent, patients=patients, entities=entities, **document)
        except (KeyError, TypeError) as exc:
            raise ValueError(f"not an audit record: {exc}") from None

    def to_fhir(self, id: str) -> dict[str, Any]:
        """This record as a FHIR R4 AuditEvent following IHE Basic Audit Log Patterns."""
        event: dict[str, Any] = {"resourceType": "AuditEvent", "id": id}
        if self.emergency:
            flag = {"system": AUDIT_FLAG_SYSTEM, "code": "emergency", "display": "Akuttilgang"}
            event["meta"] = {"tag": [flag]}
        event |= {
            "type": _REST,
            "subtype": [{"system": "http://hl7.org/fhir/restful-interaction",
                         "code": self.interaction}],
            "action": self.action,
            "recorded": format_instant(self.recorded),
            "outcome": str(self.outcome),
        }  # fmt: skip
        if self.outcome_text:
            event["outcomeDesc"] = self.outcome_text
        if self.access_basis:
            event["purposeOfEvent"] = [_purpose(self.access_basis, self.reason)]
        event["agent"] = _agents(self.agent, self.action)
        event["source"] = _SOURCE
        entities = [_patient_entity(p) for p in self.patients]
        entities += [_data_entity(reference) for reference in self.entities]
        if self.query is not None:
            entities.append(_query_entity(self.query))
        if self.request_id is not None:
            entities.append(_request_entity(self.request_id))
        if entities:
            event["entity"] = entities
        return event


def _purpose(basis: str, reason: str | None) -> dict[str, Any]:
    purpose: dict[str, Any] = {
        "coding": [
            {"system": ACT_REASON, "code": ACCESS_BASES[basis]},
            {"system": ACCESS_BASIS_SYSTEM, "code": basis},
        ]
    }
    if reason:
        purpose["text"] = reason
    return purpose


def _agents(agent: AuditAgent, action: str) -> list[dict[str, Any]]:
    """The user (when someone is signed in), the client application, the server, the API
    acting for the caller (token exchange) and the organisations."""
    agents = []
    if agent.kind != "system":
        agents.append(_user_agent(agent, action))
    client: dict[str, Any] = {
        "type": {"coding": [{"system": DICOM, "code": "110153", "display": "Source Role ID"}]},
        "who": _identified(CLIENT_ID_SYSTEM, agent.client_id, agent.client_name),
        "requestor": agent.kind == "system",
    }
    agents += [client, _SERVER_AGENT]
    if agent.actor_client_id:
        agents.append({
            "type": {"coding": [{"system": DICOM, "code": "110150", "display": "Application"}]},
            "role": [{"text": "acting for the caller (token exchange)"}],
            "who": _identified(CLIENT_ID_SYSTEM, agent.actor_client_id),
            "requestor": False,
        })  # fmt: skip
    for orgnr, name, role in (
        (agent.orgnr, agent.org_name, "legal entity"),
        (agent.child_orgnr, None, "sub-unit"),
    ):
        if orgnr:
            agents.append({
                "type": {"coding": [{"system": ROLE_CLASS, "code": "PROV",
                                     "display": "healthcare provider"}]},
                "role": [{"text": role}],
                "who": _identified(ORGNR_SYSTEM, orgnr, name),
                "requestor": False,
            })  # fmt: skip
    return agents


def _user_agent(agent: AuditAgent, action: str) -> dict[str, Any]:
    """The signed-in person: identified by HPR number (health personnel who have one) or
    national identity number; the requestor."""
    # BALP: the information recipient for reads and queries, an agent for changes
    kind = ("IRCP", "information recipient") if action in "RE" else ("AGNT", "agent")
    system = PARTICIPATION if kind[0] == "IRCP" else ROLE_CLASS
    user: dict[str, Any] = {"type": {"coding": [{"system": system, "code": kind[0],
                                                 "display": kind[1]}]}}  # fmt: skip
    if agent.acting_for:
        user["extension"] = [
            {"url": ACTING_FOR_URL, "valueIdentifier": _person_identifier(agent.acting_for)}
        ]
    if agent.profession:
        coding = {"system": PROFESSION_SYSTEM, "code": agent.profession}
        if agent.profession_name:
            coding["display"] = agent.profession_name
        user["role"] = [{"coding": [coding]}]
    if agent.hpr_number:
        user["who"] = _identified(HPR_SYSTEM, agent.hpr_number, agent.name)
        if agent.person_id:
            user["altId"] = agent.person_id
    elif agent.person_id:
        user["who"] = {"identifier": _person_identifier(agent.person_id)}
        if agent.name:
            user["who"]["display"] = agent.name
    elif agent.name:
        user["who"] = {"display": agent.name}
    if agent.name:
        user["name"] = agent.name
    user["requestor"] = True
    return user


def _identified(system: str, value: str, display: str | None = None) -> dict[str, Any]:
    who: dict[str, Any] = {"identifier": {"system": system, "value": value}}
    if display:
        who["display"] = display
    return who


def _person_identifier(person: str) -> dict[str, str]:
    """A national identity number with its system (fødselsnummer unless it is another kind)."""
    kind = person_number_kind(person, allow_synthetic=True)
    return {"system": _PERSON_SYSTEMS.get(kind or "FNR", FNR_SYSTEM), "value": person}


def _patient_entity(patient: str) -> dict[str, Any]:
    what = {"reference": patient} if "/" in patient else {"identifier": _person_identifier(patient)}
    return {
        "what": what,
        "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
        "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
    }


def _data_entity(reference: str) -> dict[str, Any]:
    return {
        "what": {"reference": reference},
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
    }


def _query_entity(query: str) -> dict[str, Any]:
    return {
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "24", "display": "Query"},
        "query": base64.b64encode(query.encode()).decode(),
    }


def _request_entity(request_id: str) -> dict[str, Any]:
    return {
        "what": {"identifier": {"value": request_id}},
        "type": {"system": BALP_ENTITY_TYPE, "code": "XrequestId", "display": "X-Request-Id"},
    }
