"""Document sharing in Kjernejournal (pasientens journaldokumenter) with IHE MHD: the
Norwegian document metadata on DocumentReference, the SubmissionSet List, the Binary that
holds a document's bytes, and the rules of an ITI-65 Provide Document Bundle.

- ``check_document_reference``, ``check_submission_set``, ``check_binary``: write checks
  (every create, update, patch and Bundle entry of those types);
- ``provide_bundle_check``: the transaction check of ITI-65, the rules of a submission as a
  whole (one SubmissionSet, one patient, attachments that match their Binaries, ...);
- ``configure_documents(engine)``: adds them to the engine.

ITI-66 (Find Lists), ITI-67 (Find Document References) and ITI-68 (Retrieve Document) are
the engine's ordinary searches and reads. docs/services/kjernejournal.md (Documents) says
what is stored where, with examples.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from samhandling.platform.fhir.bindings import Binding
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import Issue
from samhandling.platform.identifiers import HPR_SYSTEM, ORGNR_SYSTEMS, identifier_error

DOCUMENT_TYPES: Final = frozenset({"DocumentReference", "List", "Binary"})

# Volven 9602 "Dokumenttype": XDS classCode (DocumentReference.category) and typeCode
# (DocumentReference.type). A class is a letter, "00" and "-1" ("A00-1" Epikriser og
# sammenfatninger); its types have the same letter and "-2" ("A03-2" Epikrise). The shape
# and the pairing are checked here; the codes themselves by the terminology service, which
# holds HL7 Norway's no-basis-documentreference-type value set (`DOCUMENT_TYPE_BINDINGS`).
DOCUMENT_TYPE_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.1.9602"
DOCUMENT_TYPE_VALUESET: Final = "http://hl7.no/fhir/ValueSet/no-basis-documentreference-type"
CLASS_CODE: Final = re.compile(r"^[A-Z]00-1$")
TYPE_CODE: Final = re.compile(r"^[A-Z][0-9]{2}-2$")
DOCUMENT_TYPE_BINDINGS: Final = (
    Binding("DocumentReference.type", "required", DOCUMENT_TYPE_VALUESET, DOCUMENT_TYPE_SYSTEM),
    Binding("DocumentReference.category", "required", DOCUMENT_TYPE_VALUESET, DOCUMENT_TYPE_SYSTEM),
)

# Volven 9603: the confidentiality of a document (XDS confidentialityCode)
CONFIDENTIALITY_SYSTEM: Final = "urn:oid:2.16.578.1.12.4.1.1.9603"
CONFIDENTIALITY_CODES: Final = {
    "N": "Normal",
    "NORN_FFL": "Nektet, fare for liv",
    "NORN_KUT": "Nektet, klart utilrådelig",
    "NORN_EPO": "Nektet, eget ønske",
    "NORN_ALL": "Nektet, alle",
    "NORN_FOR": "Nektet, foreldet",
    "NORN_FORANS": "Nektet, foreldreansvarlig",
    "NORN_UNGDOM": "Nektet, ungdom",
    "NORN_FFH": "Nektet, fare for helsepersonell",
    "NORN_FPB": "Nektet, forsvarlig pasientbehandling",
    "NORN_DUP": "Nektet, duplikat",
    "NORN_ANG": "Nektet – andre grunner",
    "NORU": "Utsatt innsyn for innbygger",
    "NORS": "Sperret",
}
BLOCKED: Final = "NORS"  # sperret: not shown to anyone but (to come) the patient

# The kind of place a document comes from (DocumentReference.context.facilityType). Volven
# 1303/1305 (the XDS facilityType codes) are not in the repository, so samhandling's own
# small code system names the kinds Kjernejournal distinguishes.
SOURCE_KIND_SYSTEM: Final = "http://samhandling.no/fhir/CodeSystem/document-source-kind"
SOURCE_KINDS: Final = {
    "sykehus": "Sykehus (helseforetak)",
    "avtalespesialist": "Avtalespesialist",
    "legevakt": "Legevakt",
    "kad": "Kommunal akutt døgnenhet (KAD)",
}

MHD_LIST_TYPES: Final = "https://profiles.ihe.net/ITI/MHD/CodeSystem/MHDlistTypes"
SUBMISSION_SET: Final = "submissionset"

DEFAULT_MAX_DOCUMENT_BYTES: Final = 64 * 1024 * 1024  # the engine's Binary limit by default
STATUSES: Final = frozenset({"current", "superseded", "entered-in-error"})
SHA1_BYTES: Final = 20
PATIENT_REFERENCE: Final = re.compile(r"^Patient/[A-Za-z0-9\-.]{1,64}$")
DOCUMENT_REFERENCE: Final = re.compile(r"^DocumentReference/[A-Za-z0-9\-.]{1,64}$")

Check = Callable[[dict], list[Issue]]


def _error(code: str, message: str, path: str) -> Issue:
    return Issue("error", code, message, (path,))


def _codes(concept: object, system: str) -> list[object]:
    """The codes of ``system`` in a CodeableConcept (or a Coding)."""
    if not isinstance(concept, dict):
        return []
    codings = concept.get("coding") if "coding" in concept else [concept]
    if not isinstance(codings, list):
        return []
    return [c.get("code") for c in codings if isinstance(c, dict) and c.get("system") == system]


def check_document_reference(
    body: dict, *, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES, allow_synthetic: bool = False
) -> list[Issue]:
    """Every breach of Kjernejournal's document metadata in a DocumentReference."""
    issues: list[Issue] = []
    issues += _status(body)
    issues += _master_identifier(body)
    issues += _subject(body, "DocumentReference.subject")
    issues += _type_and_class(body)
    issues += _authors(body, allow_synthetic)
    issues += _confidentiality(body)
    issues += _source_kind(body)
    issues += _content(body, max_bytes)
    issues += _relates_to(body)
    return issues


def _status(body: dict) -> list[Issue]:
    status = body.get("status")
    if status not in STATUSES:
        shown = ", ".join(sorted(STATUSES))
        return [_error("value", f"status must be one of {shown}", "DocumentReference.status")]
    return []


def _master_identifier(body: dict) -> list[Issue]:
    master = body.get("masterIdentifier")
    if not isinstance(master, dict) or not master.get("value"):
        return [
            _error(
                "required",
                "masterIdentifier (the document's unique id, XDS uniqueId) is required",
                "DocumentReference.masterIdentifier",
            )
        ]
    return []


def _subject(body: dict, path: str) -> list[Issue]:
    subject = body.get("subject")
    reference = subject.get("reference") if isinstance(subject, dict) else None
    if not isinstance(reference, str):
        return [_error("required", "the patient is required (a reference to a Patient)", path)]
    if not PATIENT_REFERENCE.match(reference) and not reference.startswith("urn:uuid:"):
        return [_error("invalid", "the patient must be a reference Patient/<id>", path)]
    return []


def _type_and_class(body: dict) -> list[Issue]:
    issues: list[Issue] = []
    types = _codes(body.get("type"), DOCUMENT_TYPE_SYSTEM)
    if not types:
        issues.append(
            _error(
                "required",
                f"the document type (Volven 9602, {DOCUMENT_TYPE_SYSTEM}) is required",
                "DocumentReference.type",
            )
        )
    for code in types:
        if not isinstance(code, str) or not TYPE_CODE.match(code):
            issues.append(
                _error(
                    "code-invalid",
                    f"{code!r} is not a Volven 9602 document type (e.g. 'A03-2' Epikrise)",
                    "DocumentReference.type",
                )
            )
    category = body.get("category")
    classes = [c for concept in category or [] for c in _codes(concept, DOCUMENT_TYPE_SYSTEM)]
    if not isinstance(category, list) or not classes:
        issues.append(
            _error(
                "required",
                f"the document class (Volven 9602, {DOCUMENT_TYPE_SYSTEM}) is required",
                "DocumentReference.category",
            )
        )
    for code in classes:
        if not isinstance(code, str) or not CLASS_CODE.match(code):
            issues.append(
                _error(
                    "code-invalid",
                    f"{code!r} is not a Volven 9602 document class (e.g. 'A00-1')",
                    "DocumentReference.category",
                )
            )
    letters = {c[0] for c in classes if isinstance(c, str) and CLASS_CODE.match(c)}
    for code in types:
        if isinstance(code, str) and TYPE_CODE.match(code) and letters and code[0] not in letters:
            issues.append(
                _error(
                    "business-rule",
                    f"the document type {code} is not of the class "
                    f"{', '.join(sorted(c + '00-1' for c in letters))}",
                    "DocumentReference.type",
                )
            )
    return issues


def _authors(body: dict, allow_synthetic: bool) -> list[Issue]:
    authors = body.get("author")
    if not isinstance(authors, list) or not authors:
        return [
            _error(
                "required",
                "an author is required: the organisation (organisation number) and, "
                "when known, the health worker (HPR number)",
                "DocumentReference.author",
            )
        ]
    issues: list[Issue] = []
    organisations = 0
    for index, author in enumerate(authors):
        path = f"DocumentReference.author[{index}]"
        identifier = author.get("identifier") if isinstance(author, dict) else None
        system = identifier.get("system") if isinstance(identifier, dict) else None
        if system not in ORGNR_SYSTEMS and system != HPR_SYSTEM:
            issues.append(
                _error(
                    "invalid",
                    "an author is named by its identifier: an organisation number "
                    f"({' or '.join(sorted(ORGNR_SYSTEMS))}) or an HPR number ({HPR_SYSTEM})",
                    f"{path}.identifier",
                )
            )
            continue
        assert isinstance(identifier, dict)
        expected = "Organization" if system in ORGNR_SYSTEMS else "Practitioner"
        organisations += system in ORGNR_SYSTEMS
        if author.get("type", expected) not in (expected, "PractitionerRole"):
            issues.append(
                _error("invalid", f"an author with this identifier is a {expected}", path)
            )
        problem = identifier_error(system, identifier.get("value"), allow_synthetic=allow_synthetic)
        if problem is None and system == HPR_SYSTEM:
            value = identifier.get("value")
            if not (isinstance(value, str) and value.isdigit() and 6 <= len(value) <= 9):
                problem = f"{value!r} is not a valid HPR number"
        if problem is not None:
            issues.append(_error("value", problem, f"{path}.identifier.value"))
    if not issues and not organisations:
        issues.append(
            _error(
                "required",
                "the author organisation (by organisation number) is required",
                "DocumentReference.author",
            )
        )
    return issues


def _confidentiality(body: dict) -> list[Issue]:
    labels = body.get("securityLabel")
    found = [c for label in labels or [] for c in _codes(label, CONFIDENTIALITY_SYSTEM)]
    path = "DocumentReference.securityLabel"
    if not isinstance(labels, list) or not found:
        return [
            _error(
                "required",
                f"the confidentiality (Volven 9603, {CONFIDENTIALITY_SYSTEM}) is required",
                path,
            )
        ]
    if len(found) > 1:
        return [_error("invalid", "a document has one Volven 9603 confidentiality code", path)]
    if found[0] not in CONFIDENTIALITY_CODES:
        shown = ", ".join(CONFIDENTIALITY_CODES)
        return [_error("code-invalid", f"{found[0]!r} is not a Volven 9603 code ({shown})", path)]
    return []


def _source_kind(body: dict) -> list[Issue]:
    context = body.get("context")
    facility = context.get("facilityType") if isinstance(context, dict) else None
    kinds = _codes(facility, SOURCE_KIND_SYSTEM)
    path = "DocumentReference.context.facilityType"
    shown = ", ".join(SOURCE_KINDS)
    if not kinds:
        return [
            _error(
                "required", f"the kind of source ({SOURCE_KIND_SYSTEM}: {shown}) is required", path
            )
        ]
    if any(kind not in SOURCE_KINDS for kind in kinds):
        return [_error("code-invalid", f"the kind of source is one of {shown}", path)]
    return []


def _content(body: dict, max_bytes: int) -> list[Issue]:
    content = body.get("content")
    if not isinstance(content, list) or not content:
        return [_error("required", "content is required", "DocumentReference.content")]
    issues: list[Issue] = []
    for index, item in enumerate(content):
        path = f"DocumentReference.content[{index}].attachment"
        attachment = item.get("attachment") if isinstance(item, dict) else None
        if not isinstance(attachment, dict):
            issues.append(_error("required", "an attachment is required", path))
            continue
        for element in ("contentType", "url", "size", "hash"):
            if attachment.get(element) in (None, ""):
                issues.append(
                    _error("required", f"attachment.{element} is required", f"{path}.{element}")
                )
        if "data" in attachment:
            issues.append(
                _error(
                    "invalid",
                    "a shared document's bytes are in a Binary that attachment.url names, "
                    "not in attachment.data",
                    f"{path}.data",
                )
            )
        size = attachment.get("size")
        if isinstance(size, int) and size > max_bytes:
            issues.append(
                _error(
                    "too-costly",
                    f"the document is {size} bytes; at most {max_bytes} are accepted",
                    f"{path}.size",
                )
            )
        digest = attachment.get("hash")
        if isinstance(digest, str) and sha1_bytes(digest) is None:
            issues.append(
                _error("value", "attachment.hash must be a base64 SHA-1 (20 bytes)", f"{path}.hash")
            )
    return issues


def sha1_bytes(value: str) -> bytes | None:
    """The 20 bytes of a base64 SHA-1 digest; None when ``value`` is not one."""
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    return raw if len(raw) == SHA1_BYTES else None


def replaced(body: dict) -> list[str]:
    """The ``DocumentReference/<id>`` references a DocumentReference replaces."""
    found = []
    for relation in body.get("relatesTo") or []:
        if isinstance(relation, dict) and relation.get("code") == "replaces":
            target = relation.get("target")
            reference = target.get("reference") if isinstance(target, dict) else None
            if isinstance(reference, str):
                found.append(reference)
    return found


def _relates_to(body: dict) -> list[Issue]:
    issues = []
    for index, relation in enumerate(body.get("relatesTo") or []):
        if not isinstance(relation, dict) or relation.get("code") != "replaces":
            continue
        target = relation.get("target")
        reference = target.get("reference") if isinstance(target, dict) else None
        if not isinstance(reference, str) or not DOCUMENT_REFERENCE.match(reference):
            issues.append(
                _error(
                    "invalid",
                    "a replaced document is named as DocumentReference/<id>",
                    f"DocumentReference.relatesTo[{index}].target",
                )
            )
    return issues


def is_submission_set(resource: object) -> bool:
    """Whether ``resource`` is an MHD SubmissionSet List."""
    return (
        isinstance(resource, dict)
        and resource.get("resourceType") == "List"
        and SUBMISSION_SET in _codes(resource.get("code"), MHD_LIST_TYPES)
    )


def check_submission_set(body: dict) -> list[Issue]:
    """Every breach of the MHD SubmissionSet rules in a List (other Lists pass)."""
    if SUBMISSION_SET not in _codes(body.get("code"), MHD_LIST_TYPES):
        return []
    issues: list[Issue] = []
    if body.get("mode") != "working":
        issues.append(_error("value", "a SubmissionSet has mode working", "List.mode"))
    if body.get("status") != "current":
        issues.append(_error("value", "a SubmissionSet has status current", "List.status"))
    identifiers = body.get("identifier")
    if not isinstance(identifiers, list) or not identifiers:
        issues.append(
            _error(
                "required", "a SubmissionSet has an identifier (its uniqueId)", "List.identifier"
            )
        )
    issues += _subject(body, "List.subject")
    entries = body.get("entry")
    if not isinstance(entries, list) or not entries:
        return [*issues, _error("required", "a SubmissionSet lists its documents", "List.entry")]
    for index, entry in enumerate(entries):
        item = entry.get("item") if isinstance(entry, dict) else None
        reference = item.get("reference") if isinstance(item, dict) else None
        if not isinstance(reference, str) or not (
            reference.startswith(("DocumentReference/", "urn:uuid:", "urn:oid:"))
        ):
            issues.append(
                _error(
                    "invalid",
                    "a SubmissionSet entry names a DocumentReference",
                    f"List.entry[{index}].item",
                )
            )
    return issues


def binary_size(body: dict) -> int | None:
    """How many bytes ``Binary.data`` holds; None when it holds none or is not base64."""
    data = body.get("data")
    if not isinstance(data, str):
        return None
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None


def check_binary(body: dict, *, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> list[Issue]:
    """The size limit of a Binary, and the form of its securityContext."""
    issues: list[Issue] = []
    data = body.get("data")
    if isinstance(data, str) and len(data) > (max_bytes + 2) // 3 * 4:
        issues.append(
            _error(
                "too-costly",
                f"the document is larger than the {max_bytes} bytes accepted",
                "Binary.data",
            )
        )
    context = body.get("securityContext")
    if context is not None:
        reference = context.get("reference") if isinstance(context, dict) else None
        if not isinstance(reference, str):
            issues.append(
                _error("invalid", "securityContext must be a reference", "Binary.securityContext")
            )
    return issues


def configure_documents(
    engine: FhirEngine,
    *,
    max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    allow_synthetic: bool = False,
) -> None:
    """Add document sharing's write checks and the ITI-65 transaction check to ``engine``."""
    engine.add_write_check(
        "DocumentReference",
        lambda body: check_document_reference(
            body, max_bytes=max_bytes, allow_synthetic=allow_synthetic
        ),
    )
    engine.add_write_check("List", check_submission_set)
    engine.add_write_check("Binary", lambda body: check_binary(body, max_bytes=max_bytes))
    engine.add_transaction_check(provide_bundle_check(max_bytes=max_bytes))
    for binding in DOCUMENT_TYPE_BINDINGS:
        engine.bindings.add(binding)


# ITI-65 Provide Document Bundle

MHD_PROFILES: Final = "https://profiles.ihe.net/ITI/MHD/StructureDefinition"
COMPREHENSIVE_PROVIDE_BUNDLE: Final = f"{MHD_PROFILES}/IHE.MHD.Comprehensive.ProvideBundle"
PROVIDE_BUNDLE_PROFILES: Final = frozenset(
    {COMPREHENSIVE_PROVIDE_BUNDLE, f"{MHD_PROFILES}/IHE.MHD.Minimal.ProvideBundle"}
)


@dataclass(frozen=True, slots=True)
class _Entry:
    index: int
    resource: dict
    full_url: str | None
    method: str | None
    url: str | None

    @property
    def where(self) -> str:
        return f"Bundle.entry[{self.index}]"

    def names(self) -> set[str]:
        """What a reference to this entry may say: its fullUrl, or Type/id of a PUT."""
        found = {self.full_url} if self.full_url else set()
        if self.method == "PUT" and self.url:
            path = self.url.partition("?")[0].rstrip("/")
            found.add("/".join(path.split("/")[-2:]))  # Type/id, also of an absolute url
        return found

    def issue(self, code: str, message: str, element: str = "") -> Issue:
        type_name = self.resource.get("resourceType")
        expression = f"{self.where}.resource{element}" if element else self.where
        return Issue("error", code, f"{self.where} ({type_name}): {message}", (expression,))


def is_provide_bundle(bundle: dict) -> bool:
    """Whether a transaction is an MHD ITI-65 submission: it carries an ITI-65 profile, or
    holds a SubmissionSet List."""
    meta = bundle.get("meta")
    profiles = meta.get("profile") if isinstance(meta, dict) else None
    if isinstance(profiles, list) and PROVIDE_BUNDLE_PROFILES & {
        p for p in profiles if isinstance(p, str)
    }:
        return True
    return any(
        isinstance(raw, dict) and is_submission_set(raw.get("resource"))
        for raw in bundle.get("entry") or []
    )


def provide_bundle_check(*, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES) -> Check:
    """The engine's transaction check for ITI-65 (other transactions pass untouched)."""

    def check(bundle: dict) -> list[Issue]:
        if not is_provide_bundle(bundle):
            return []
        return provide_bundle_issues(bundle, max_bytes=max_bytes)

    return check


def _entries(bundle: dict) -> list[_Entry]:
    found = []
    for index, raw in enumerate(bundle.get("entry") or []):
        if not isinstance(raw, dict) or not isinstance(raw.get("resource"), dict):
            continue
        request = raw.get("request") if isinstance(raw.get("request"), dict) else {}
        full_url = raw.get("fullUrl") if isinstance(raw.get("fullUrl"), str) else None
        method = request.get("method") if isinstance(request.get("method"), str) else None
        url = request.get("url") if isinstance(request.get("url"), str) else None
        found.append(_Entry(index, raw["resource"], full_url, method, url))
    return found


def _reference(value: object) -> str | None:
    reference = value.get("reference") if isinstance(value, dict) else None
    return reference if isinstance(reference, str) else None


def provide_bundle_issues(
    bundle: dict, *, max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES
) -> list[Issue]:
    """Every breach of the ITI-65 rules in a submission, each naming its entry."""
    entries = _entries(bundle)
    lists = [e for e in entries if is_submission_set(e.resource)]
    documents = [
        e
        for e in entries
        if e.resource.get("resourceType") == "DocumentReference" and e.method == "POST"
    ]
    updates = {
        e.url.partition("?")[0]: e
        for e in entries
        if e.resource.get("resourceType") == "DocumentReference" and e.method == "PUT" and e.url
    }
    binaries = [e for e in entries if e.resource.get("resourceType") == "Binary"]
    issues: list[Issue] = []
    if len(lists) != 1:
        issues.append(
            Issue(
                "error",
                "invalid",
                f"an ITI-65 submission holds exactly one SubmissionSet List ({MHD_LIST_TYPES}"
                f"#{SUBMISSION_SET}); this one holds {len(lists)}",
                ("Bundle.entry",),
            )
        )
    if not documents:
        issues.append(
            Issue(
                "error",
                "required",
                "an ITI-65 submission holds a DocumentReference",
                ("Bundle.entry",),
            )
        )
    issues += _one_patient(lists + documents + list(updates.values()))
    issues += _attachments(documents, binaries, max_bytes)
    if len(lists) == 1:
        issues += _listed(lists[0], documents)
    issues += _replacements(documents, updates)
    return issues


def _one_patient(entries: list[_Entry]) -> list[Issue]:
    issues: list[Issue] = []
    patient: str | None = None
    for entry in entries:
        subject = _reference(entry.resource.get("subject"))
        if subject is None:
            continue  # the write check names a missing subject
        if patient is None:
            patient = subject
        elif subject != patient:
            issues.append(
                entry.issue(
                    "invalid",
                    f"concerns {subject}, but the submission concerns {patient}: "
                    "all its entries concern the same patient",
                    ".subject",
                )
            )
    return issues


def _attachments(documents: list[_Entry], binaries: list[_Entry], max_bytes: int) -> list[Issue]:
    issues: list[Issue] = []
    by_name = {name: binary for binary in binaries for name in binary.names()}
    used: set[int] = set()
    for document in documents:
        names = document.names()
        for index, item in enumerate(document.resource.get("content") or []):
            element = f".content[{index}].attachment"
            attachment = item.get("attachment") if isinstance(item, dict) else None
            if not isinstance(attachment, dict):
                continue
            url = attachment.get("url")
            binary = by_name.get(url) if isinstance(url, str) else None
            if binary is None:
                issues.append(
                    document.issue(
                        "not-found",
                        f"attachment.url {url!r} names no Binary in this Bundle (by its fullUrl)",
                        f"{element}.url",
                    )
                )
                continue
            used.add(binary.index)
            issues += _matches(document, element, attachment, binary, max_bytes)
            context = _reference(binary.resource.get("securityContext"))
            if context not in names:
                issues.append(
                    binary.issue(
                        "invalid",
                        f"securityContext must name the DocumentReference of entry "
                        f"{document.index} (by its fullUrl), not {context!r}",
                        ".securityContext",
                    )
                )
    for binary in binaries:
        if binary.index not in used:
            issues.append(
                binary.issue("invalid", "no DocumentReference in this Bundle names this Binary")
            )
    return issues


def _matches(
    document: _Entry, element: str, attachment: dict, binary: _Entry, max_bytes: int
) -> list[Issue]:
    data = binary.resource.get("data")
    raw = None
    if isinstance(data, str):
        try:
            raw = base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raw = None
    if raw is None:
        return [binary.issue("required", "Binary.data must hold the document, base64", ".data")]
    issues: list[Issue] = []
    if len(raw) > max_bytes:
        issues.append(
            binary.issue(
                "too-costly",
                f"the document is {len(raw)} bytes; at most {max_bytes} are accepted",
                ".data",
            )
        )
    if attachment.get("size") != len(raw):
        issues.append(
            document.issue(
                "value",
                f"attachment.size is {attachment.get('size')!r}, but the Binary of entry "
                f"{binary.index} holds {len(raw)} bytes",
                f"{element}.size",
            )
        )
    digest = base64.b64encode(hashlib.sha1(raw).digest()).decode()  # MHD's hash is SHA-1
    if attachment.get("hash") != digest:
        issues.append(
            document.issue(
                "value",
                f"attachment.hash is not the SHA-1 of the Binary of entry {binary.index} "
                f"({digest})",
                f"{element}.hash",
            )
        )
    if attachment.get("contentType") != binary.resource.get("contentType"):
        issues.append(
            document.issue(
                "value",
                f"attachment.contentType differs from that of the Binary of entry {binary.index}",
                f"{element}.contentType",
            )
        )
    return issues


def _listed(submission: _Entry, documents: list[_Entry]) -> list[Issue]:
    listed = {
        _reference(entry.get("item"))
        for entry in submission.resource.get("entry") or []
        if isinstance(entry, dict)
    }
    issues = [
        document.issue(
            "invalid",
            f"the SubmissionSet (entry {submission.index}) does not list this DocumentReference "
            "(List.entry.item by its fullUrl)",
        )
        for document in documents
        if not (document.names() & listed)
    ]
    known = {name for document in documents for name in document.names()}
    for index, reference in enumerate(sorted(r for r in listed if r is not None)):
        if reference not in known:
            issues.append(
                submission.issue(
                    "invalid",
                    f"lists {reference!r}, which is no DocumentReference of this submission",
                    f".entry[{index}].item",
                )
            )
    return issues


def _replacements(documents: list[_Entry], updates: dict[str, _Entry]) -> list[Issue]:
    """A document that replaces another comes with the update of the other to superseded
    (PUT DocumentReference/<old> with status superseded) in the same transaction."""
    issues: list[Issue] = []
    for document in documents:
        for old in replaced(document.resource):
            update = updates.get(old)
            if update is None or update.resource.get("status") != "superseded":
                issues.append(
                    document.issue(
                        "invalid",
                        f"replaces {old}: the submission must also update it to status "
                        f"superseded (an entry PUT {old})",
                        ".relatesTo",
                    )
                )
    return issues
