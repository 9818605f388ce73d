"""Helpers for the access-policy and audit tests (imported as ``policy_helpers``): a small
world of persons, health personnel and health information made fresh for each test, and
HTTP clients signed in as them."""

from __future__ import annotations

import base64
import hashlib
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any
from urllib.parse import quote

import httpx
from registries_helpers import approval, practitioner, put, rng

from conftest import TEST_ORGNR, Server, register_client
from samhandling.platform.identifiers import FNR_SYSTEM, HPR_SYSTEM, ORGNR_SYSTEM, PERSON_SYSTEMS
from samhandling.services.registries.model import (
    ADDRESS_CONFIDENTIALITY,
    FAMILY_RELATION,
    PARENTAL_RESPONSIBILITY,
)
from samhandling.services.summary.documents import (
    COMPREHENSIVE_PROVIDE_BUNDLE,
    CONFIDENTIALITY_SYSTEM,
    DOCUMENT_TYPE_SYSTEM,
    MHD_LIST_TYPES,
    SOURCE_KIND_SYSTEM,
)
from samhandling.services.trust.tokentool import DpopAuth, TokenClient
from samhandling.synth.identifiers import fodselsnummer, hpr_number

REDIRECT_URI = "http://127.0.0.1:9/callback"
USER_SCOPES = (
    "openid profile helseid://scopes/identity/pid helseid://scopes/identity/security_level "
    "helseid://scopes/hpr/hpr_number"
)
CLINICAL_SCOPES = (
    "samhandling:fhir/read",
    "samhandling:fhir/write",
    "samhandling:grunndata/read",
    "samhandling:kjernejournal/read",
    "samhandling:kjernejournal/write",
)
CITIZEN_SCOPES = (
    "samhandling:fhir/read",
    "samhandling:grunndata/read",
    "samhandling:privacy/read",
    "samhandling:privacy/write",
    "samhandling:audit/own",
    "samhandling:kjernejournal/read",
)
PRIVACY_CHOICE = "http://samhandling.no/fhir/CodeSystem/privacy-choice"
SERVICE_SYSTEM = "http://samhandling.no/fhir/CodeSystem/service"
CONSENT_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
ROLE_CODE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
PARTICIPATION = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType"


def born(years: int, days: int | None = None) -> date:
    """A birth date ``years`` and ``days`` (at random up to 300: persons of the same age get
    numbers of their own) before today."""
    if days is None:
        days = rng().randint(1, 300)
    today = date.today()
    try:
        then = today.replace(year=today.year - years)
    except ValueError:  # 29 February
        then = today.replace(year=today.year - years, day=28)
    return then - timedelta(days=days)


def new_person_number(birth: date) -> str:
    """A valid fødselsnummer for someone born on ``birth``."""
    return fodselsnummer(birth, rng(), bool(rng().getrandbits(1)))


@dataclass
class Person:
    """A person in the person register."""

    pid: str
    patient_id: str
    birth: date


@dataclass
class World:
    """What one test needs, written to the server through ``admin``."""

    server: Server
    admin: httpx.Client

    def person(
        self, years: int, *, protected: bool = False, parents: tuple[Person, ...] = ()
    ) -> Person:
        """A person aged ``years``, with parents who hold parental responsibility."""
        birth = born(years)
        pid = new_person_number(birth)
        patient: dict[str, Any] = {
            "resourceType": "Patient",
            "id": f"pp-{uuid.uuid4().hex[:16]}",
            "identifier": [{"use": "official", "system": FNR_SYSTEM, "value": pid}],
            "name": [{"use": "official", "family": "Testesen", "given": ["Tea"]}],
            "birthDate": birth.isoformat(),
        }
        if protected:
            patient["meta"] = {
                "security": [{"system": ADDRESS_CONFIDENTIALITY, "code": "strengtFortrolig"}]
            }
        put(self.admin, patient)
        for parent in parents:
            put(self.admin, {
                "resourceType": "RelatedPerson",
                "id": f"rp-{uuid.uuid4().hex[:16]}",
                "identifier": [{"use": "official", "system": FNR_SYSTEM, "value": parent.pid}],
                "patient": {"reference": f"Patient/{patient['id']}"},
                "relationship": [
                    {"coding": [{"system": FAMILY_RELATION, "code": "mor"}]},
                    {"coding": [{"system": PARENTAL_RESPONSIBILITY, "code": "felles"}]},
                ],
            })  # fmt: skip
        return Person(pid, patient["id"], birth)

    def doctor(self, *, suspended: bool = False) -> tuple[str, str]:
        """A doctor in HPR (suspended from yesterday on, if asked): (pid, HPR number)."""
        pid = new_person_number(born(rng().randint(30, 65)))
        hpr = hpr_number(rng())
        since = (date.today() - timedelta(days=1)).isoformat()
        licence = approval("LE", "1", "2005-01-01", None, (since, None) if suspended else None)
        put(self.admin, practitioner(hpr, pid, [licence]))
        return pid, hpr

    def organisation(self) -> None:
        """The test clients' organisation in the enterprise register."""
        put(self.admin, {
            "resourceType": "Organization",
            "id": f"org-{TEST_ORGNR}",
            "identifier": [{"system": ORGNR_SYSTEM, "value": TEST_ORGNR}],
            "name": "Testbyen sykehus",
        })  # fmt: skip

    def observation(self, person: Person, text: str = "blodtrykk") -> str:
        """A piece of health information about ``person`` (in the FHIR API); its id."""
        response = self.admin.post("/Observation", json={
            "resourceType": "Observation",
            "status": "final",
            "code": {"text": text},
            "subject": {"reference": f"Patient/{person.patient_id}"},
        })  # fmt: skip
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def immunization(self, person: Person) -> str:
        """A vaccination of ``person``; its id."""
        response = self.admin.post("/Immunization", json={
            "resourceType": "Immunization",
            "status": "completed",
            "vaccineCode": {"text": "MMR"},
            "patient": {"reference": f"Patient/{person.patient_id}"},
            "occurrenceDateTime": "2020-01-01",
        })  # fmt: skip
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def document(self, person: Person, content: bytes = b"%PDF-1.4 epikrise") -> tuple[str, str]:
        """A document about ``person`` shared with an ITI-65 submission: (DocumentReference
        id, Binary id)."""
        response = self.admin.post("/", json=submission(person.patient_id, (content, EPICRISIS)))
        assert response.status_code == 200, response.text
        locations = [e["response"]["location"] for e in response.json()["entry"]]
        document = next(loc for loc in locations if loc.startswith("DocumentReference/"))
        binary = next(loc for loc in locations if loc.startswith("Binary/"))
        return document.split("/")[1], binary.split("/")[1]

    def consent(self, person: Person, kind: str, provision: dict[str, Any]) -> str:
        """A privacy choice of ``person`` (through the privacy service); its id."""
        consent = {
            "resourceType": "Consent",
            "status": "active",
            "scope": {"coding": [{"system": CONSENT_SCOPE, "code": "patient-privacy"}]},
            "category": [{"coding": [{"system": PRIVACY_CHOICE, "code": kind}]}],
            "patient": {"identifier": {"system": FNR_SYSTEM, "value": person.pid}},
            "dateTime": date.today().isoformat(),
            "provision": provision,
        }
        response = self.admin.post("/Consent", json=consent)
        assert response.status_code == 201, response.text
        return response.json()["id"]

    def reserve(self, person: Person, service: str = "fhir") -> str:
        """``person`` reserves themself against ``service``."""
        return self.consent(person, "reservation", {
            "type": "deny", "class": [{"system": SERVICE_SYSTEM, "code": service}],
        })  # fmt: skip

    def block_personnel(self, person: Person, hpr: str) -> str:
        """``person`` blocks the health worker ``hpr``."""
        return self.consent(person, "blocked-personnel", {"type": "deny", "actor": [{
            "role": {"coding": [{"system": PARTICIPATION, "code": "PRCP"}]},
            "reference": {"identifier": {"system": HPR_SYSTEM, "value": hpr}},
        }]})  # fmt: skip

    def hide(self, person: Person, reference: str) -> str:
        """``person`` hides one entry from health personnel."""
        entry = {"meaning": "instance", "reference": {"reference": reference}}
        return self.consent(person, "blocked-entries", {"type": "deny", "data": [entry]})

    def mandate(
        self,
        giver: Person,
        receiver: Person,
        services: tuple[str, ...] = (),
        end: str | None = None,
    ) -> str:
        """``giver`` gives ``receiver`` a power of attorney."""
        provision: dict[str, Any] = {"type": "permit", "actor": [{
            "role": {"coding": [{"system": ROLE_CODE, "code": "POWATT"}]},
            "reference": {"identifier": {"system": FNR_SYSTEM, "value": receiver.pid}},
        }]}  # fmt: skip
        if services:
            provision["class"] = [{"system": SERVICE_SYSTEM, "code": s} for s in services]
        if end:
            provision["period"] = {"start": "2020-01-01", "end": end}
        return self.consent(giver, "power-of-attorney", provision)

    def _client(self, kind: str) -> dict:
        key = (self.server.url, kind)
        if key not in _CLIENTS:  # registering runs the CLI: once per server and kind
            if kind == "citizen":
                options = ["--citizen", *_scopes(CITIZEN_SCOPES), "--redirect-uri", REDIRECT_URI]
            else:
                options = [*_scopes(CLINICAL_SCOPES), "--redirect-uri", REDIRECT_URI,
                           "--orgnr", TEST_ORGNR]  # fmt: skip
            _CLIENTS[key] = register_client(self.server, *options)
        return _CLIENTS[key]

    def clinician(self, pid: str, level: int = 4, base: str | None = None) -> httpx.Client:
        """An HTTP client signed in as the health worker ``pid``."""
        config = self._client("personnel")
        tokens = TokenClient(self.server.url, config["client_id"], config["jwk"])
        scope = f"{USER_SCOPES} {' '.join(CLINICAL_SCOPES)}"
        signed_in = tokens.sign_in(
            pid, scope=scope, redirect_uri=REDIRECT_URI, security_level=level
        )
        return httpx.Client(
            base_url=base or self.server.fhir, timeout=30, auth=DpopAuth(signed_in, tokens.dpop)
        )

    def citizen(self, person: Person, base: str | None = None) -> httpx.Client:
        """An HTTP client signed in as the citizen ``person``."""
        config = self._client("citizen")
        tokens = TokenClient(self.server.url, config["client_id"], config["jwk"])
        scope = f"{USER_SCOPES} {' '.join(CITIZEN_SCOPES)}"
        signed_in = tokens.sign_in(person.pid, scope=scope, redirect_uri=REDIRECT_URI)
        return httpx.Client(
            base_url=base or self.server.fhir, timeout=30, auth=DpopAuth(signed_in, tokens.dpop)
        )


_CLIENTS: dict[tuple[str, str], dict] = {}


def _scopes(scopes: tuple[str, ...]) -> list[str]:
    return [option for scope in scopes for option in ("--scope", scope)]


def basis(code: str | None, reason: str | None = None) -> dict[str, str]:
    """The request headers of an access basis (and reason)."""
    headers = {"nhn-access-basis": code} if code else {}
    if reason:
        headers["nhn-access-reason"] = quote(reason)  # percent-encoded UTF-8
    return headers


def reason_of(response: httpx.Response) -> str | None:
    """The refusal's reason code in an OperationOutcome."""
    for issue in response.json().get("issue", []):
        for coding in (issue.get("details") or {}).get("coding", []):
            return coding.get("code")
    return None


def ids(bundle: dict[str, Any]) -> set[str]:
    """The ids of a searchset's matches."""
    return {e["resource"]["id"] for e in bundle.get("entry", []) if e["search"]["mode"] == "match"}


AUDITOR_SCOPE = "samhandling:audit/read"


def auditor(server: Server) -> httpx.Client:
    """A client of the audit API with the auditors' scope."""
    config = register_client(server, "--scope", AUDITOR_SCOPE, "--orgnr", TEST_ORGNR)
    tokens = TokenClient(server.url, config["client_id"], config["jwk"])
    auth = DpopAuth(tokens.client_credentials(AUDITOR_SCOPE), tokens.dpop)
    return httpx.Client(base_url=f"{server.url}/audit", timeout=30, auth=auth)


def records_by(audit: httpx.Client, hpr: str) -> list[dict[str, Any]]:
    """The AuditEvents of the health worker ``hpr`` (newest first), read page by page."""
    found: list[dict[str, Any]] = []
    url: str | None = "/AuditEvent?count=200"
    for _ in range(50):
        if url is None:
            break
        bundle = audit.get(url).json()
        for entry in bundle.get("entry", []):
            event = entry["resource"]
            who = event["agent"][0]["who"].get("identifier", {})
            if who.get("system") == HPR_SYSTEM and who.get("value") == hpr:
                found.append(event)
        url = next((link["url"] for link in bundle["link"] if link["relation"] == "next"), None)
    return found


def summary(event: dict[str, Any]) -> dict[str, Any]:
    """What the tests compare of an AuditEvent."""
    entities = event.get("entity", [])
    patients = sorted(
        e["what"]["identifier"]["value"]
        for e in entities
        if e.get("what", {}).get("identifier", {}).get("system") in PERSON_SYSTEMS
    )
    data = sorted(e["what"]["reference"] for e in entities if "reference" in e.get("what", {}))
    bases = [
        c["code"]
        for p in event.get("purposeOfEvent", [])
        for c in p["coding"]
        if c["system"].endswith("access-basis")
    ]
    return {
        "interaction": event["subtype"][0]["code"],
        "action": event["action"],
        "outcome": event["outcome"],
        "patients": patients,
        "data": data,
        "basis": bases[0] if bases else None,
    }


EPICRISIS = ("A03-2", "A00-1")  # a Volven 9602 document type (Epikrise) and its class
AUTHOR_HPR = "2058756"


def urn() -> str:
    return f"urn:uuid:{uuid.uuid4()}"


def oid() -> str:
    return f"urn:oid:2.25.{uuid.uuid4().int}"


def document_reference(
    patient_id: str, binary_url: str, content: bytes, kind: tuple[str, str] = EPICRISIS
) -> dict[str, Any]:
    """A DocumentReference with Kjernejournal's metadata for ``content`` (a Binary)."""
    return {
        "resourceType": "DocumentReference",
        "masterIdentifier": {"system": "urn:ietf:rfc:3986", "value": oid()},
        "status": "current",
        "type": {"coding": [{"system": DOCUMENT_TYPE_SYSTEM, "code": kind[0]}]},
        "category": [{"coding": [{"system": DOCUMENT_TYPE_SYSTEM, "code": kind[1]}]}],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": "2026-03-01T10:00:00Z",
        "author": [
            {"type": "Organization", "identifier": {"system": ORGNR_SYSTEM, "value": TEST_ORGNR}},
            {"type": "Practitioner", "identifier": {"system": HPR_SYSTEM, "value": AUTHOR_HPR}},
        ],
        "securityLabel": [{"coding": [{"system": CONFIDENTIALITY_SYSTEM, "code": "N"}]}],
        "content": [{"attachment": {
            "contentType": "application/pdf", "url": binary_url, "size": len(content),
            "hash": base64.b64encode(hashlib.sha1(content).digest()).decode(),
            "title": "Epikrise",
        }}],
        "context": {"facilityType": {
            "coding": [{"system": SOURCE_KIND_SYSTEM, "code": "sykehus"}]}},
    }  # fmt: skip


def submission(patient_id: str, *documents: tuple[bytes, tuple[str, str]]) -> dict[str, Any]:
    """An ITI-65 Provide Document Bundle: SubmissionSet, DocumentReferences, Binaries."""
    entries: list[dict] = []
    listed = []
    for content, kind in documents:
        binary_url, document_url = urn(), urn()
        entries.append(
            {
                "fullUrl": document_url,
                "resource": document_reference(patient_id, binary_url, content, kind),
                "request": {"method": "POST", "url": "DocumentReference"},
            }
        )
        entries.append(
            {
                "fullUrl": binary_url,
                "resource": {
                    "resourceType": "Binary",
                    "contentType": "application/pdf",
                    "securityContext": {"reference": document_url},
                    "data": base64.b64encode(content).decode(),
                },
                "request": {"method": "POST", "url": "Binary"},
            }
        )
        listed.append({"item": {"reference": document_url}})
    submission_set = {
        "resourceType": "List",
        "status": "current",
        "mode": "working",
        "code": {"coding": [{"system": MHD_LIST_TYPES, "code": "submissionset"}]},
        "identifier": [
            {
                "use": "usual",
                "system": "urn:ietf:rfc:3986",
                "value": f"urn:oid:2.25.{uuid.uuid4().int}",
            }
        ],
        "subject": {"reference": f"Patient/{patient_id}"},
        "date": "2026-03-01T10:00:00Z",
        "entry": listed,
    }
    entries.insert(
        0,
        {
            "fullUrl": urn(),
            "resource": submission_set,
            "request": {"method": "POST", "url": "List"},
        },
    )
    meta = {"profile": [COMPREHENSIVE_PROVIDE_BUNDLE]}
    return {"resourceType": "Bundle", "type": "transaction", "meta": meta, "entry": entries}
