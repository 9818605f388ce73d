"""Bad input over real HTTP, on both backends: the exact status, an OperationOutcome that says
what is wrong (and where), and no change to stored data for any rejected write."""

# ruff: noqa: E501 - the case tables read best one case a line

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Callable, Iterator
from functools import cache

import httpx
import pytest

from conftest import patient

FHIR_JSON = "application/fhir+json"
JSON_PATCH = "application/json-patch+json"
BODY_LIMIT = 16 * 1024 * 1024  # the server default


# ---------------------------------------------------------------------------------------------
# helpers


def assert_outcome(response: httpx.Response, status: int, expression: str | None = None) -> dict:
    """``response`` has ``status`` and an OperationOutcome body with an error issue that has
    diagnostics (and, when given, ``expression`` among the issues' expressions)."""
    assert response.status_code == status, response.text[:2000]
    assert response.headers["content-type"].startswith(FHIR_JSON), response.headers
    outcome = response.json()
    assert outcome["resourceType"] == "OperationOutcome", outcome
    errors = [i for i in outcome["issue"] if i.get("severity") in ("error", "fatal")]
    assert errors, outcome
    assert all(isinstance(i.get("diagnostics"), str) and i["diagnostics"] for i in errors), outcome
    if expression is not None:
        expressions = [e for issue in outcome["issue"] for e in issue.get("expression", [])]
        assert expression in expressions, outcome
    return outcome


def send(
    fhir: httpx.Client,
    method: str,
    url: str,
    body: object = None,
    *,
    content_type: str | None = FHIR_JSON,
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    """A request with ``body`` as raw bytes (bytes) or as JSON (anything else but None)."""
    all_headers = dict(headers or {})
    content = None
    if body is not None:
        content = body if isinstance(body, bytes) else json.dumps(body).encode()
        if content_type is not None:
            all_headers["content-type"] = content_type
    return fhir.request(method, url, content=content, headers=all_headers)


def create(fhir: httpx.Client, resource: dict) -> dict:
    response = fhir.post(f"/{resource['resourceType']}", json=resource)
    assert response.status_code == 201, response.text
    return response.json()


def stored(fhir: httpx.Client, url: str) -> tuple[int, bytes]:
    """Status and exact bytes of a read."""
    response = fhir.get(url)
    return response.status_code, response.content


def newest(fhir: httpx.Client, type_: str | None = None) -> dict | None:
    """The newest entry of the type history (system history without a type)."""
    url = f"/{type_}/_history" if type_ else "/_history"
    response = fhir.get(url, params={"_count": "1"})
    assert response.status_code == 200, response.text
    entries = response.json().get("entry", [])
    return entries[0] if entries else None


def tagged(resource: dict) -> dict:
    """``resource`` with a unique identifier, so an accidental create is recognisable."""
    return {
        **resource,
        "identifier": [{"system": "urn:test:bad-input", "value": str(uuid.uuid4())}],
    }


def observation(**extra: object) -> dict:
    return {"resourceType": "Observation", "status": "final", "code": {"text": "puls"}, **extra}


def parameters(*operations: dict) -> dict:
    return {"resourceType": "Parameters", "parameter": list(operations)}


def fhirpath_op(type_: str, path: str, **parts: dict | str) -> dict:
    """A FHIRPath Patch operation; ``value`` is the value part's value[x] dict."""
    part: list[dict] = [
        {"name": "type", "valueCode": type_},
        {"name": "path", "valueString": path},
    ]
    for name, value in parts.items():
        if isinstance(value, dict):
            part.append({"name": name, **value})
        else:
            part.append({"name": name, "valueString": value})
    return {"name": "operation", "part": part}


@pytest.fixture()
def existing(fhir: httpx.Client) -> dict:
    """A stored Patient to aim bad writes at."""
    return create(fhir, patient(birthDate="1980-01-01", active=True))


@cache
def oversized_body() -> bytes:
    """A syntactically fine Patient one byte over the body limit."""
    head, tail = b'{"resourceType":"Patient","gender":"', b'"}'
    return head + b"a" * (BODY_LIMIT + 1 - len(head) - len(tail)) + tail


def chunks(data: bytes, size: int = 1 << 20) -> Iterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


# ---------------------------------------------------------------------------------------------
# create: POST /{type} with a bad body; nothing may be created

CREATE_CASES = [
    # not JSON / not an object
    pytest.param("Patient", b'{"resourceType": "Patient",', None, 400, None, id="malformed-json"),
    pytest.param("Patient", b'{"resourceType": "Patient"} x', None, 400, None, id="trailing-garbage"),
    pytest.param("Patient", b"", None, 400, None, id="empty-body"),
    pytest.param("Patient", b" \r\n\t", None, 400, None, id="whitespace-body"),
    pytest.param("Patient", b"[]", None, 400, None, id="array"),
    pytest.param("Patient", b'[{"resourceType": "Patient"}]', None, 400, None, id="array-of-resource"),
    pytest.param("Patient", b'"Patient"', None, 400, None, id="string"),
    pytest.param("Patient", b"42", None, 400, None, id="number"),
    pytest.param("Patient", b"null", None, 400, None, id="null"),
    pytest.param("Patient", b"true", None, 400, None, id="boolean"),
    pytest.param("Patient", b'{"resourceType": "Patient", "gender": "\xff"}', None, 400, None, id="not-utf8"),
    pytest.param("Patient", b'{"resourceType": "Patient", "gender": "\\ud800"}', None, 400, None, id="lone-surrogate"),
    pytest.param("Patient", b'{"resourceType": "Patient", "multipleBirthInteger": 1e400}', None, 400, None, id="number-overflow"),
    # resourceType
    pytest.param("Patient", {"resourceType": "Observation"}, None, 400, "resourceType", id="resourceType-mismatch"),
    pytest.param("Patient", {"gender": "female"}, None, 400, "resourceType", id="resourceType-missing"),
    pytest.param("Patient", {"resourceType": 5}, None, 400, "resourceType", id="resourceType-number"),
    pytest.param("Patient", {"resourceType": "patient"}, None, 400, "resourceType", id="resourceType-lower-case"),
    # structure
    pytest.param("Patient", patient(foo=1), None, 400, None, id="unknown-property"),
    pytest.param("Patient", patient(name=[{"family": "N", "foo": 1}]), None, 400, None, id="unknown-nested-property"),
    pytest.param("Patient", patient(birthDate=123), None, 400, "Patient.birthDate", id="birthDate-number"),
    pytest.param("Patient", patient(birthDate=None), None, 400, "Patient.birthDate", id="birthDate-null"),
    pytest.param("Patient", patient(active="yes"), None, 400, "Patient.active", id="active-string"),
    pytest.param("Patient", patient(name={}), None, 400, "Patient.name", id="name-object-not-array"),
    pytest.param("Patient", patient(name=[{"given": "Kari"}]), None, 400, "Patient.name[0].given", id="given-not-array"),
    pytest.param("Patient", patient(gender="x"), None, 400, "Patient.gender", id="gender-unknown-code"),
    pytest.param("Patient", patient(gender=""), None, 400, "Patient.gender", id="gender-empty"),
    pytest.param("Patient", patient(contained=[{"resourceType": "Foo"}]), None, 400, "Patient.contained[0]", id="contained-unknown-type"),
    pytest.param("Observation", {"resourceType": "Observation", "status": "final"}, None, 400, None, id="required-code-missing"),
    pytest.param("Observation", observation(status="done"), None, 400, "Observation.status", id="status-unknown-code"),
    # dates
    pytest.param("Patient", patient(birthDate="1980-02-30"), None, 422, "Patient.birthDate", id="date-feb-30"),
    pytest.param("Patient", patient(birthDate="1980-13-01"), None, 400, "Patient.birthDate", id="date-month-13"),
    pytest.param("Patient", patient(birthDate="2021-02-29"), None, 422, "Patient.birthDate", id="date-feb-29-non-leap"),
    pytest.param("Patient", patient(birthDate="1980-1-1"), None, 400, "Patient.birthDate", id="date-unpadded"),
    pytest.param("Patient", patient(birthDate="0000"), None, 400, "Patient.birthDate", id="date-year-zero"),
    pytest.param("Patient", patient(deceasedDateTime="1980-01-01T25:00:00Z"), None, 400, "Patient.deceasedDateTime", id="dateTime-hour-25"),
    pytest.param("Patient", patient(deceasedDateTime="1980-01-01T10:00:00"), None, 400, "Patient.deceasedDateTime", id="dateTime-time-without-zone"),
    pytest.param("Patient", patient(deceasedDateTime="0001-01-01T00:00:00+14:00"), None, 422, "Patient.deceasedDateTime", id="dateTime-before-year-1-in-utc"),
    pytest.param("Observation", observation(effectiveDateTime="2021-02-29T10:00:00Z"), None, 422, "Observation.effectiveDateTime", id="dateTime-feb-29-non-leap"),
    pytest.param("Observation", observation(issued="2021-01-01"), None, 400, "Observation.issued", id="instant-without-time"),
    pytest.param("Patient", patient(meta={"lastUpdated": "yesterday"}), None, 400, "Patient.meta.lastUpdated", id="meta-lastUpdated-garbage"),
    # references
    pytest.param("Observation", observation(subject={"reference": "Patient"}), None, 422, "Observation.subject.reference", id="reference-type-only"),
    pytest.param("Observation", observation(subject={"reference": "Patient/"}), None, 422, "Observation.subject.reference", id="reference-empty-id"),
    pytest.param("Observation", observation(subject={"reference": "Foo/1"}), None, 422, "Observation.subject.reference", id="reference-unknown-type"),
    pytest.param("Observation", observation(subject={"reference": "Patient/has space"}), None, 422, "Observation.subject.reference", id="reference-id-with-space"),
    pytest.param("Observation", observation(subject={"reference": "Patient/" + "a" * 65}), None, 422, "Observation.subject.reference", id="reference-id-too-long"),
    pytest.param("Observation", observation(subject={"reference": "Medication/1"}), None, 422, "Observation.subject.reference", id="reference-target-type-not-allowed"),
    pytest.param("Observation", observation(subject={"reference": 5}), None, 400, "Observation.subject.reference", id="reference-number"),
    pytest.param("Observation", observation(subject={"reference": ""}), None, 400, "Observation.subject.reference", id="reference-empty"),
    pytest.param("Observation", observation(performer=[{"reference": "Patient/1"}, {"reference": "Specimen/1"}]), None, 422, "Observation.performer[1].reference", id="reference-second-in-array"),
    # media types
    pytest.param("Patient", b'<Patient xmlns="http://hl7.org/fhir"/>', "application/fhir+xml", 415, None, id="content-type-fhir-xml"),
    pytest.param("Patient", b"<Patient/>", "application/xml", 415, None, id="content-type-xml"),
    pytest.param("Patient", b'{"resourceType": "Patient"}', "text/plain", 415, None, id="content-type-text"),
    pytest.param("Patient", b'{"resourceType": "Patient"}', "application/x-www-form-urlencoded", 415, None, id="content-type-form"),
    # unknown resource types
    pytest.param("Foo", {"resourceType": "Foo"}, None, 404, None, id="unknown-type"),
    pytest.param("patient", {"resourceType": "patient"}, None, 404, None, id="type-lower-case"),
    pytest.param("Resource", {"resourceType": "Resource"}, None, 404, None, id="abstract-type"),
]  # fmt: skip


@pytest.mark.parametrize(("type_", "body", "content_type", "status", "expression"), CREATE_CASES)
def test_create_rejects(
    fhir: httpx.Client,
    type_: str,
    body: object,
    content_type: str | None,
    status: int,
    expression: str | None,
) -> None:
    watched = type_ if status != 404 else None
    before = newest(fhir, watched)
    response = send(fhir, "POST", f"/{type_}", body, content_type=content_type or FHIR_JSON)
    assert_outcome(response, status, expression)
    assert newest(fhir, watched) == before, "a rejected create stored something"


# ---------------------------------------------------------------------------------------------
# update: PUT /Patient/{id} of an existing resource with a bad body or header


def _same(resource: dict, **changes: object) -> dict:
    return {**resource, **changes}


UPDATE_CASES = [
    pytest.param(lambda r: _same(r, id="someone-else"), {}, None, 400, "Patient.id", id="id-mismatch"),
    pytest.param(lambda r: {k: v for k, v in r.items() if k != "id"}, {}, None, 400, "Patient.id", id="id-missing"),
    pytest.param(lambda r: _same(r, id=5), {}, None, 400, "Patient.id", id="id-number"),
    pytest.param(lambda r: _same(r, resourceType="Observation"), {}, None, 400, "resourceType", id="resourceType-mismatch"),
    pytest.param(lambda r: {k: v for k, v in r.items() if k != "resourceType"}, {}, None, 400, "resourceType", id="resourceType-missing"),
    pytest.param(lambda r: b'{"resourceType": "Patient", "id": ', {}, None, 400, None, id="malformed-json"),
    pytest.param(lambda r: b"", {}, None, 400, None, id="empty-body"),
    pytest.param(lambda r: [r], {}, None, 400, None, id="array"),
    pytest.param(lambda r: _same(r, foo="bar"), {}, None, 400, None, id="unknown-property"),
    pytest.param(lambda r: _same(r, birthDate="1980-02-30"), {}, None, 422, "Patient.birthDate", id="date-feb-30"),
    pytest.param(lambda r: _same(r, birthDate=19800101), {}, None, 400, "Patient.birthDate", id="birthDate-number"),
    pytest.param(lambda r: _same(r, gender="x"), {}, None, 400, "Patient.gender", id="gender-unknown-code"),
    pytest.param(lambda r: _same(r, managingOrganization={"reference": "Patient/1"}), {}, None, 422, "Patient.managingOrganization.reference", id="reference-target-type-not-allowed"),
    pytest.param(lambda r: _same(r, gender="male"), {"if-match": "garbage"}, None, 400, None, id="if-match-garbage"),
    pytest.param(lambda r: _same(r, gender="male"), {"if-match": 'W/"abc"'}, None, 400, None, id="if-match-not-a-number"),
    pytest.param(lambda r: _same(r, gender="male"), {"if-match": '"1'}, None, 400, None, id="if-match-unterminated"),
    pytest.param(lambda r: _same(r, gender="male"), {"if-match": "W/1"}, None, 400, None, id="if-match-unquoted"),
    pytest.param(lambda r: _same(r, gender="male"), {"if-match": 'W/"99999999999"'}, None, 400, None, id="if-match-huge"),
    pytest.param(lambda r: _same(r, gender="male"), {"if-match": 'W/"7"'}, None, 412, None, id="if-match-stale"),
    pytest.param(lambda r: _same(r, gender="male"), {"if-none-match": "*"}, None, 412, None, id="if-none-match-star"),
    pytest.param(lambda r: b"<Patient/>", {}, "application/fhir+xml", 415, None, id="content-type-xml"),
    pytest.param(lambda r: _same(r, gender="male"), {"accept": "application/fhir+xml"}, None, 406, None, id="accept-xml"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make_body", "headers", "content_type", "status", "expression"), UPDATE_CASES
)
def test_update_rejects_and_changes_nothing(
    fhir: httpx.Client,
    existing: dict,
    make_body: Callable[[dict], object],
    headers: dict[str, str],
    content_type: str | None,
    status: int,
    expression: str | None,
) -> None:
    url = f"/Patient/{existing['id']}"
    before = stored(fhir, url)
    response = send(
        fhir,
        "PUT",
        url,
        make_body(existing),
        content_type=content_type or FHIR_JSON,
        headers=headers,
    )
    assert_outcome(response, status, expression)
    assert stored(fhir, url) == before


# ---------------------------------------------------------------------------------------------
# URLs: bad ids, unknown types, unsupported interactions

LONG_ID = "a" * 65

URL_CASES = [
    pytest.param("GET", "/Patient/a_b", None, 400, id="read-id-underscore"),
    pytest.param("GET", f"/Patient/{LONG_ID}", None, 400, id="read-id-too-long"),
    pytest.param("GET", "/Patient/has space", None, 400, id="read-id-space"),
    pytest.param("GET", "/Patient/æøå", None, 400, id="read-id-non-ascii"),
    pytest.param("GET", f"/Patient/{LONG_ID}/_history", None, 400, id="history-id-too-long"),
    pytest.param("GET", "/Patient/a_b/_history/1", None, 400, id="vread-id-underscore"),
    pytest.param("PUT", "/Patient/has space", patient(id="has space"), 400, id="update-id-space"),
    pytest.param("PUT", f"/Patient/{LONG_ID}", patient(id=LONG_ID), 400, id="update-id-too-long"),
    pytest.param("PUT", "/Patient/a_b", patient(id="a_b"), 400, id="update-id-underscore"),
    pytest.param("DELETE", "/Patient/has space", None, 400, id="delete-id-space"),
    pytest.param("PATCH", f"/Patient/{LONG_ID}", [], 400, id="patch-id-too-long"),
    pytest.param("GET", "/Foo/1", None, 404, id="read-unknown-type"),
    pytest.param("GET", "/Foo/_history", None, 404, id="history-unknown-type"),
    pytest.param("GET", "/Foo/1/_history/1", None, 404, id="vread-unknown-type"),
    pytest.param("POST", "/Foo", {"resourceType": "Foo"}, 404, id="create-unknown-type"),
    pytest.param("PUT", "/Foo/1", {"resourceType": "Foo", "id": "1"}, 404, id="update-unknown-type"),
    pytest.param("DELETE", "/Foo/1", None, 404, id="delete-unknown-type"),
    pytest.param("PATCH", "/Foo/1", [], 404, id="patch-unknown-type"),
    pytest.param("GET", "/Patient/1/_history/1/extra", None, 404, id="too-many-segments"),
    pytest.param("GET", "/Patient/not-there-at-all", None, 404, id="read-unknown-id"),
    pytest.param("GET", "/Patient/not-there-at-all/_history/1", None, 404, id="vread-unknown-id"),
    pytest.param("PATCH", "/Patient/not-there-at-all", [], 404, id="patch-unknown-id"),
    pytest.param("GET", "/Patient/1/_history/abc", None, 404, id="vread-version-not-a-number"),
    pytest.param("GET", "/Patient/1/$everything", None, 501, id="unknown-operation"),
    pytest.param("POST", "/Patient/1", patient(), 405, id="post-to-instance"),
    pytest.param("PUT", "/Patient", patient(), 405, id="put-to-type"),
    pytest.param("DELETE", "/Patient", None, 405, id="delete-type"),
    pytest.param("PATCH", "/Patient", [], 405, id="patch-type"),
    pytest.param("PUT", "/Patient/1/_history/1", patient(id="1"), 405, id="put-to-version"),
    pytest.param("DELETE", "/Patient/1/_history", None, 405, id="delete-history"),
    pytest.param("POST", "/metadata", {"resourceType": "CapabilityStatement"}, 405, id="post-metadata"),
    pytest.param("DELETE", "/", None, 405, id="delete-base"),
    pytest.param("GET", "/?_type=Foo", None, 400, id="system-search-unknown-type"),
    pytest.param("GET", "/Patient?birthdate=1980-13", None, 400, id="search-bad-date"),
    pytest.param("GET", "/Patient?_count=-1", None, 400, id="search-bad-count"),
    pytest.param("GET", "/Group/1/Observation", None, 400, id="search-unsupported-compartment"),
]  # fmt: skip


@pytest.mark.parametrize(("method", "path", "body", "status"), URL_CASES)
def test_bad_urls(fhir: httpx.Client, method: str, path: str, body: object, status: int) -> None:
    content_type = JSON_PATCH if method == "PATCH" else FHIR_JSON
    before = newest(fhir)
    response = send(fhir, method, path, body, content_type=content_type)
    assert_outcome(response, status)
    assert newest(fhir) == before, "a rejected request stored something"


@pytest.mark.parametrize("method", ["OPTIONS", "TRACE"])
def test_unrouted_method_is_405_with_outcome(fhir: httpx.Client, method: str) -> None:
    assert_outcome(fhir.request(method, "/Patient"), 405)


# ---------------------------------------------------------------------------------------------
# content negotiation

NEGOTIATION_CASES = [
    pytest.param({"accept": "application/fhir+xml"}, {}, 406, id="accept-fhir-xml"),
    pytest.param({"accept": "application/xml, text/xml"}, {}, 406, id="accept-xml-list"),
    pytest.param({"accept": "text/html"}, {}, 406, id="accept-html"),
    pytest.param({}, {"_format": "xml"}, 406, id="format-xml"),
    pytest.param({}, {"_format": "application/fhir+xml"}, 406, id="format-fhir-xml"),
    pytest.param({}, {"_format": "turtle"}, 406, id="format-turtle"),
    pytest.param({"accept": "application/fhir+json"}, {"_format": "xml"}, 406, id="format-overrides-accept"),
]  # fmt: skip


@pytest.mark.parametrize(("headers", "params", "status"), NEGOTIATION_CASES)
def test_content_negotiation_read(
    fhir: httpx.Client, existing: dict, headers: dict, params: dict, status: int
) -> None:
    response = fhir.get(f"/Patient/{existing['id']}", headers=headers, params=params)
    assert_outcome(response, status)


@pytest.mark.parametrize(("headers", "params", "status"), NEGOTIATION_CASES)
def test_content_negotiation_create_stores_nothing(
    fhir: httpx.Client, headers: dict, params: dict, status: int
) -> None:
    before = newest(fhir, "Patient")
    response = fhir.post("/Patient", json=tagged(patient()), headers=headers, params=params)
    assert_outcome(response, status)
    assert newest(fhir, "Patient") == before


# ---------------------------------------------------------------------------------------------
# oversized bodies


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_create_is_413(fhir: httpx.Client, chunked: bool) -> None:
    body = oversized_body()
    before = newest(fhir, "Patient")
    content = chunks(body) if chunked else body
    response = fhir.post("/Patient", content=content, headers={"content-type": FHIR_JSON})
    if chunked:
        assert "content-length" not in response.request.headers
        assert response.request.headers["transfer-encoding"] == "chunked"
    else:
        assert response.request.headers["content-length"] == str(BODY_LIMIT + 1)
    assert_outcome(response, 413)
    assert newest(fhir, "Patient") == before


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_oversized_update_is_413_and_changes_nothing(
    fhir: httpx.Client, existing: dict, chunked: bool
) -> None:
    url = f"/Patient/{existing['id']}"
    head = json.dumps({**existing, "gender": "other"})[:-1].encode()
    body = head + b', "text": {"status": "generated", "div": "' + b"a" * BODY_LIMIT + b'"}}'
    before = stored(fhir, url)
    response = fhir.put(
        url, content=chunks(body) if chunked else body, headers={"content-type": FHIR_JSON}
    )
    assert_outcome(response, 413)
    assert stored(fhir, url) == before


def test_body_of_exactly_the_limit_is_read(fhir: httpx.Client) -> None:
    """The limit is inclusive: a body of exactly the limit is parsed (and here refused as JSON)."""
    body = b" " * (BODY_LIMIT - 2) + b"[]"
    assert_outcome(fhir.post("/Patient", content=body, headers={"content-type": FHIR_JSON}), 400)


# ---------------------------------------------------------------------------------------------
# batch and transaction Bundles (POST to the base)


def _entry(method: str, url: str, resource: dict | None = None, **extra: object) -> dict:
    entry: dict = {"request": {"method": method, "url": url}, **extra}
    if resource is not None:
        entry["resource"] = resource
    return entry


def _post(resource: dict | None = None, **extra: object) -> dict:
    resource = resource if resource is not None else patient()
    return _entry("POST", resource["resourceType"], tagged(resource), **extra)


def _transaction(*entries: dict) -> dict:
    return {"resourceType": "Bundle", "type": "transaction", "entry": list(entries)}


def _json_patch_binary(operations: list) -> dict:
    data = base64.b64encode(json.dumps(operations).encode()).decode()
    return {"resourceType": "Binary", "contentType": JSON_PATCH, "data": data}


BundleMaker = Callable[[dict], object]  # the existing Patient -> the Bundle sent

BUNDLE_CASES = [
    pytest.param(lambda p: tagged(patient()), 400, None, id="not-a-bundle"),
    pytest.param(lambda p: [_transaction(_post())], 400, None, id="json-array"),
    pytest.param(lambda p: b"", 400, None, id="empty-body"),
    pytest.param(lambda p: b'{"resourceType": "Bundle", "type": "transaction", "entry": [', 400, None, id="malformed-json"),
    pytest.param(lambda p: {"resourceType": "Bundle", "type": "collection", "entry": [_post()]}, 400, "Bundle.type", id="type-collection"),
    pytest.param(lambda p: {"resourceType": "Bundle", "type": "document", "entry": [_post()]}, 400, "Bundle.type", id="type-document"),
    pytest.param(lambda p: {"resourceType": "Bundle", "entry": [_post()]}, 400, "Bundle.type", id="type-missing"),
    pytest.param(lambda p: {"resourceType": "Bundle", "type": "transaction", "entry": _post()}, 400, "Bundle.entry", id="entry-object"),
    pytest.param(lambda p: {"resourceType": "Bundle", "type": "transaction", "entry": "x"}, 400, "Bundle.entry", id="entry-string"),
    pytest.param(lambda p: _transaction(_post(), "x"), 400, "Bundle.entry[1]", id="entry-not-object"),
    pytest.param(lambda p: _transaction(_post(), {"resource": tagged(patient())}), 400, "Bundle.entry[1].request", id="entry-without-request"),
    pytest.param(lambda p: _transaction(_post(), {"request": "POST Patient", "resource": tagged(patient())}), 400, "Bundle.entry[1].request", id="request-not-object"),
    pytest.param(lambda p: _transaction(_post(), _entry("FETCH", "Patient", tagged(patient()))), 400, "Bundle.entry[1].request.method", id="unknown-method"),
    pytest.param(lambda p: _transaction(_post(), _entry("post", "Patient", tagged(patient()))), 400, "Bundle.entry[1].request.method", id="method-lower-case"),
    pytest.param(lambda p: _transaction(_post(), _entry(None, "Patient", tagged(patient()))), 400, "Bundle.entry[1].request.method", id="method-missing"),
    pytest.param(lambda p: _transaction(_post(), {"request": {"method": "POST"}, "resource": tagged(patient())}), 400, "Bundle.entry[1].request.url", id="url-missing"),
    pytest.param(lambda p: _transaction(_post(), _entry("POST", "", tagged(patient()))), 400, "Bundle.entry[1].request.url", id="url-empty"),
    pytest.param(lambda p: _transaction(_post(), _entry("POST", "http://elsewhere.example/fhir/Patient", tagged(patient()))), 400, "Bundle.entry[1].request.url", id="url-other-server"),
    pytest.param(lambda p: _transaction(_post(), _entry("POST", "Patient")), 400, "Bundle.entry[1].resource", id="post-without-resource"),
    pytest.param(lambda p: _transaction(_post(), _entry("POST", "Patient", "x")), 400, "Bundle.entry[1].resource", id="post-resource-not-object"),
    pytest.param(lambda p: _transaction(_post(), _entry("PUT", f"Patient/{p['id']}")), 400, "Bundle.entry[1].resource", id="put-without-resource"),
    pytest.param(lambda p: _transaction(_post(), _entry("PATCH", f"Patient/{p['id']}", tagged(patient()))), 400, "Bundle.entry[1].resource", id="patch-resource-not-a-patch"),
    pytest.param(lambda p: _transaction(_post(), _entry("PATCH", f"Patient/{p['id']}", {**_json_patch_binary([]), "contentType": "text/plain"})), 415, "Bundle.entry[1].resource", id="patch-binary-wrong-content-type"),
    pytest.param(lambda p: _transaction(_post(), _entry("PATCH", f"Patient/{p['id']}", {**_json_patch_binary([]), "data": "%%%"})), 400, "Bundle.entry[1].resource.data", id="patch-binary-not-base64"),
    pytest.param(lambda p: _transaction(_post(), _entry("PUT", f"Patient/{p['id']}", {**p, "gender": "male"}, fullUrl=5)), 400, "Bundle.entry[1].fullUrl", id="fullUrl-not-string"),
    pytest.param(lambda p: _transaction(_post(), {"request": {"method": "DELETE", "url": f"Patient/{p['id']}", "ifMatch": 1}}), 400, "Bundle.entry[1].request.ifMatch", id="ifMatch-not-string"),
    pytest.param(lambda p: _transaction(_post(), {"request": {"method": "DELETE", "url": f"Patient/{p['id']}", "ifMatch": "garbage"}}), 400, None, id="ifMatch-garbage"),
    pytest.param(lambda p: _transaction(_post(), {"request": {"method": "DELETE", "url": f"Patient/{p['id']}", "ifMatch": 'W/"9"'}}), 412, None, id="ifMatch-stale"),
    pytest.param(lambda p: _transaction(_post(fullUrl="urn:uuid:6f1c37a4-4a0c-4b58-9e7e-0c2f3e0b7a11"), _post(fullUrl="urn:uuid:6f1c37a4-4a0c-4b58-9e7e-0c2f3e0b7a11")), 400, "Bundle.entry[1].fullUrl", id="duplicate-fullUrl"),
    pytest.param(lambda p: _transaction(_post(), _entry("PUT", f"Patient/{p['id']}", {**p, "gender": "male"}), _entry("PUT", f"Patient/{p['id']}", {**p, "gender": "other"})), 400, "Bundle.entry[2].request.url", id="same-resource-put-twice"),
    pytest.param(lambda p: _transaction(_post(), _entry("PUT", f"Patient/{p['id']}", {**p, "gender": "male"}), _entry("DELETE", f"Patient/{p['id']}")), 400, None, id="same-resource-put-and-delete"),
    pytest.param(lambda p: _transaction(_post(), _entry("PATCH", f"Patient/{p['id']}", _json_patch_binary([])), _entry("DELETE", f"Patient/{p['id']}")), 400, None, id="same-resource-patch-and-delete"),
    pytest.param(lambda p: _transaction(_post(), _entry("POST", f"Patient/{p['id']}", tagged(patient()))), 400, None, id="post-with-id"),
    pytest.param(lambda p: _transaction(_post(), _entry("PUT", "Patient", tagged(patient()))), 405, None, id="put-without-id"),
    pytest.param(lambda p: _transaction(_post(), _entry("POST", "Foo", {"resourceType": "Foo"})), 404, None, id="unknown-type"),
    pytest.param(lambda p: _transaction(_post(), _entry("PUT", f"Patient/{p['id']}?active=true", {**p, "gender": "male"})), 400, "Bundle.entry[1].request.url", id="criteria-on-an-instance"),
    pytest.param(lambda p: _transaction(_post(), _post(patient(birthDate="1980-02-30"))), 422, "Bundle.entry[1].resource.birthDate", id="second-create-invalid-date"),
    pytest.param(lambda p: _transaction(_post(), _post(patient(gender="x"))), 400, "Bundle.entry[1].resource.gender", id="second-create-bad-code"),
    pytest.param(lambda p: _transaction(_post(), _post(observation(subject={"reference": "Medication/1"}))), 422, "Bundle.entry[1].resource.subject.reference", id="create-bad-reference-target"),
    pytest.param(lambda p: _transaction(_post(fullUrl="urn:uuid:0c4a1f8e-7d8e-4b7b-a0a5-2f2e3c4d5e6f", resource={"resourceType": "Medication"}), _post(observation(subject={"reference": "urn:uuid:0c4a1f8e-7d8e-4b7b-a0a5-2f2e3c4d5e6f"}))), 422, "Bundle.entry[1].resource.subject.reference", id="create-reference-to-wrong-new-type"),
    pytest.param(lambda p: _transaction(_post(), _entry("PUT", f"Patient/{p['id']}", {**p, "birthDate": "x"})), 400, "Bundle.entry[1].resource.birthDate", id="update-invalid"),
    pytest.param(lambda p: _transaction(_post(), _entry("DELETE", f"Patient/{p['id']}"), _entry("PUT", "Patient/bad-input-other", {**patient(), "id": "different"})), 400, "Bundle.entry[2].resource.id", id="delete-then-bad-update"),
    pytest.param(lambda p: _transaction(_post(), _entry("PATCH", f"Patient/{p['id']}", _json_patch_binary([{"op": "test", "path": "/gender", "value": "male"}]))), 422, None, id="patch-test-fails"),
    pytest.param(lambda p: _transaction(_post(), _entry("PATCH", f"Patient/{p['id']}", parameters(fhirpath_op("replace", "Patient.birthDate", value={"valueString": "x"})))), 422, "Bundle.entry[1].resource.birthDate", id="fhirpath-patch-makes-invalid"),
    pytest.param(lambda p: _transaction(_post(), _entry("PATCH", "Patient/not-there-at-all", _json_patch_binary([])), _entry("DELETE", f"Patient/{p['id']}")), 404, None, id="patch-unknown-resource"),
    pytest.param(lambda p: _transaction(*[_entry("GET", "metadata")] * 10_001), 413, "Bundle.entry", id="too-many-entries"),
]  # fmt: skip


@pytest.mark.parametrize(("make_bundle", "status", "expression"), BUNDLE_CASES)
def test_bundle_rejects_and_changes_nothing(
    fhir: httpx.Client,
    existing: dict,
    make_bundle: BundleMaker,
    status: int,
    expression: str | None,
) -> None:
    url = f"/Patient/{existing['id']}"
    before = (stored(fhir, url), newest(fhir), newest(fhir, "Patient"), newest(fhir, "Observation"))
    response = send(fhir, "POST", "", make_bundle(existing))
    assert_outcome(response, status, expression)
    after = (stored(fhir, url), newest(fhir), newest(fhir, "Patient"), newest(fhir, "Observation"))
    assert after == before, "a rejected Bundle changed stored data"


def test_batch_reports_bad_entries_and_runs_the_good_ones(
    fhir: httpx.Client, existing: dict
) -> None:
    """In a batch the bad entries fail on their own, each with an OperationOutcome."""
    url = f"/Patient/{existing['id']}"
    before = stored(fhir, url)
    bundle = {
        "resourceType": "Bundle",
        "type": "batch",
        "entry": [
            _entry("FETCH", "Patient"),
            {"resource": tagged(patient())},
            _entry("POST", "Patient"),
            _post(patient(birthDate="1980-02-30")),
            _entry("PUT", url[1:], {**existing, "id": "someone-else"}),
            _entry("GET", "Foo/1"),
            _post(),
        ],
    }
    response = fhir.post("", json=bundle)
    assert response.status_code == 200, response.text
    entries = response.json()["entry"]
    assert [e["response"]["status"].split()[0] for e in entries] == [
        "400", "400", "400", "422", "400", "404", "201",
    ]  # fmt: skip
    for entry in entries[:-1]:
        outcome = entry["response"]["outcome"]
        assert outcome["resourceType"] == "OperationOutcome"
        assert any(i["severity"] == "error" and i["diagnostics"] for i in outcome["issue"])
    assert stored(fhir, url) == before


@pytest.mark.parametrize("kind", ["transaction", "batch"])
@pytest.mark.parametrize("method", [["POST"], {"POST": 1}], ids=["list", "object"])
def test_bundle_entry_method_of_wrong_json_type(
    fhir: httpx.Client, kind: str, method: object
) -> None:
    before = newest(fhir)
    bundle = {
        "resourceType": "Bundle",
        "type": kind,
        "entry": [_entry(method, "Patient", tagged(patient()))],
    }  # type: ignore[arg-type]
    response = fhir.post("", json=bundle)
    if kind == "transaction":
        assert_outcome(response, 400, "Bundle.entry[0].request.method")
    else:
        assert response.status_code == 200, response.text
        assert response.json()["entry"][0]["response"]["status"].startswith("400")
    assert newest(fhir) == before


# ---------------------------------------------------------------------------------------------
# PATCH documents


def _fhirpath(*operations: dict) -> dict:
    return parameters(*operations)


PATCH_CASES = [
    # JSON Patch
    pytest.param(JSON_PATCH, {"op": "replace", "path": "/gender", "value": "male"}, {}, 422, None, id="json-not-a-list"),
    pytest.param(JSON_PATCH, "replace", {}, 422, None, id="json-string"),
    pytest.param(JSON_PATCH, [5], {}, 422, "/0", id="json-op-not-object"),
    pytest.param(JSON_PATCH, [{"path": "/gender", "value": "male"}], {}, 422, "/0", id="json-op-missing"),
    pytest.param(JSON_PATCH, [{"op": "frobnicate", "path": "/gender"}], {}, 422, "/0", id="json-unknown-op"),
    pytest.param(JSON_PATCH, [{"op": "replace", "value": "male"}], {}, 422, "/0", id="json-path-missing"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/gender"}], {}, 422, "/0", id="json-value-missing"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/maritalStatus", "value": {"text": "gift"}}], {}, 422, "/0", id="json-replace-missing-element"),
    pytest.param(JSON_PATCH, [{"op": "remove", "path": "/name/5"}], {}, 422, "/0", id="json-remove-missing-index"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/nope/x", "value": 1}], {}, 422, "/0", id="json-add-under-missing-parent"),
    pytest.param(JSON_PATCH, [{"op": "move", "from": "/nope", "path": "/gender"}], {}, 422, "/0", id="json-move-from-missing"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "gender", "value": "male"}], {}, 422, "/0", id="json-pointer-without-slash"),
    pytest.param(JSON_PATCH, [{"op": "test", "path": "/birthDate", "value": "1999-01-01"}], {}, 422, "/0", id="json-test-fails"),
    pytest.param(JSON_PATCH, [{"op": "test", "path": "/active", "value": 1}], {}, 422, "/0", id="json-test-true-is-not-1"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/birthDate", "value": "1990-01-01"}, {"op": "test", "path": "/gender", "value": "male"}], {}, 422, "/1", id="json-second-op-fails"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "", "value": []}], {}, 422, None, id="json-replace-root-with-array"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/birthDate", "value": "x"}], {}, 422, "Patient.birthDate", id="json-result-bad-date"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/birthDate", "value": "1980-02-30"}], {}, 422, "Patient.birthDate", id="json-result-feb-30"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/gender", "value": "x"}], {}, 422, "Patient.gender", id="json-result-bad-code"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/foo", "value": 1}], {}, 422, None, id="json-result-unknown-property"),
    pytest.param(JSON_PATCH, [{"op": "remove", "path": "/resourceType"}], {}, 422, "resourceType", id="json-result-no-resourceType"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/resourceType", "value": "Observation"}], {}, 422, "resourceType", id="json-result-other-resourceType"),
    pytest.param(JSON_PATCH, [{"op": "replace", "path": "/id", "value": "other"}], {}, 422, "Patient.id", id="json-result-other-id"),
    pytest.param(JSON_PATCH, [{"op": "remove", "path": "/id"}], {}, 422, "Patient.id", id="json-result-no-id"),
    pytest.param(JSON_PATCH, [{"op": "add", "path": "/managingOrganization", "value": {"reference": "Patient/1"}}], {}, 422, "Patient.managingOrganization.reference", id="json-result-bad-reference"),
    pytest.param(JSON_PATCH, b"", {}, 400, None, id="json-empty-body"),
    pytest.param(JSON_PATCH, b"[{", {}, 400, None, id="json-malformed"),
    pytest.param(JSON_PATCH, [], {"if-match": "garbage"}, 400, None, id="json-if-match-garbage"),
    pytest.param(JSON_PATCH, [], {"if-match": 'W/"7"'}, 412, None, id="json-if-match-stale"),
    # FHIRPath Patch
    pytest.param(FHIR_JSON, patient(), {}, 422, None, id="fhirpath-not-parameters"),
    pytest.param(FHIR_JSON, [{"op": "remove", "path": "/gender"}], {}, 422, None, id="fhirpath-json-patch-sent-as-fhir-json"),
    pytest.param(FHIR_JSON, {"resourceType": "Parameters", "parameter": {}}, {}, 422, "Parameters.parameter", id="fhirpath-parameter-not-array"),
    pytest.param(FHIR_JSON, _fhirpath({"name": "op", "part": []}), {}, 422, None, id="fhirpath-parameter-not-operation"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("frobnicate", "Patient.gender")), {}, 422, None, id="fhirpath-unknown-type"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("replace", "Patient.birthDate((", value={"valueDate": "1990-01-01"})), {}, 422, None, id="fhirpath-syntax-error"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("replace", "", value={"valueDate": "1990-01-01"})), {}, 422, None, id="fhirpath-empty-path"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("replace", "Patient.maritalStatus", value={"valueCodeableConcept": {"text": "gift"}})), {}, 422, None, id="fhirpath-replace-missing-element"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("replace", "Patient.birthDate")), {}, 422, None, id="fhirpath-replace-without-value"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("delete", "Patient")), {}, 422, None, id="fhirpath-delete-resource"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("insert", "Patient.name", value={"valueHumanName": {"family": "X"}}, index={"valueInteger": 9})), {}, 422, None, id="fhirpath-insert-out-of-range"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("replace", "Patient.birthDate", value={"valueDate": "1990-01-01"}), fhirpath_op("delete", "Patient.nope(")), {}, 422, None, id="fhirpath-second-op-fails"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("replace", "Patient.birthDate", value={"valueString": "x"})), {}, 422, "Patient.birthDate", id="fhirpath-result-bad-date"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("replace", "Patient.birthDate", value={"valueDate": "2021-02-29"})), {}, 422, "Patient.birthDate", id="fhirpath-result-feb-29"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("add", "Patient", name="foo", value={"valueString": "x"})), {}, 422, None, id="fhirpath-result-unknown-property"),
    pytest.param(FHIR_JSON, _fhirpath(fhirpath_op("replace", "Patient.active", value={"valueString": "yes"})), {}, 422, "Patient.active", id="fhirpath-result-bad-boolean"),
    pytest.param(FHIR_JSON, _fhirpath(), {"if-match": 'W/"x"'}, 400, None, id="fhirpath-if-match-garbage"),
    # media types
    pytest.param("application/xml-patch+xml", b'<diff><remove sel="/Patient/gender"/></diff>', {}, 415, None, id="xml-patch"),
    pytest.param("application/fhir+xml", b"<Parameters/>", {}, 415, None, id="fhir-xml"),
    pytest.param("text/plain", b"[]", {}, 415, None, id="text-plain"),
    pytest.param("application/merge-patch+json", b'{"gender": "male"}', {}, 415, None, id="merge-patch"),
    pytest.param(JSON_PATCH, [], {"accept": "application/fhir+xml"}, 406, None, id="accept-xml"),
]  # fmt: skip


@pytest.mark.parametrize(("content_type", "body", "headers", "status", "expression"), PATCH_CASES)
def test_patch_rejects_and_changes_nothing(
    fhir: httpx.Client,
    existing: dict,
    content_type: str,
    body: object,
    headers: dict[str, str],
    status: int,
    expression: str | None,
) -> None:
    url = f"/Patient/{existing['id']}"
    before = stored(fhir, url)
    response = send(fhir, "PATCH", url, body, content_type=content_type, headers=headers)
    assert_outcome(response, status, expression)
    assert stored(fhir, url) == before


def test_patch_of_deleted_resource_is_410(fhir: httpx.Client, existing: dict) -> None:
    url = f"/Patient/{existing['id']}"
    assert fhir.delete(url).status_code == 204
    before = stored(fhir, url)
    response = send(
        fhir,
        "PATCH",
        url,
        [{"op": "add", "path": "/gender", "value": "male"}],
        content_type=JSON_PATCH,
    )
    assert_outcome(response, 410)
    assert stored(fhir, url) == before
    assert fhir.get(f"{url}/_history").json()["entry"][0]["request"]["method"] == "DELETE"


def test_patch_may_not_blow_up_the_resource(fhir: httpx.Client, existing: dict) -> None:
    url = f"/Patient/{existing['id']}"
    leaf = {"url": "urn:leaf", "valueString": "a" * 600_000}
    operations: list[dict] = [
        {"op": "add", "path": "/extension", "value": [{"url": "urn:node", "extension": [leaf]}]}
    ]
    # each copy puts the whole extension tree into itself: 2**5 copies of the 600 kB string
    operations += [{"op": "copy", "from": "/extension/0", "path": "/extension/0/extension/-"}] * 5
    body = json.dumps(operations).encode()
    assert len(body) < 700_000
    before = stored(fhir, url)
    response = send(fhir, "PATCH", url, body, content_type=JSON_PATCH)
    assert response.status_code in (413, 422), (response.status_code, len(response.content))
    assert_outcome(response, response.status_code)
    assert stored(fhir, url) == before


def test_fhirpath_patch_path_cannot_stall_the_server(fhir: httpx.Client, existing: dict) -> None:
    url = f"/Patient/{existing['id']}"
    path = "'" + "a" * 34 + "!'.matches('(a|aa)+$')"  # each extra 'a' costs about 1.6x
    before = stored(fhir, url)
    response = send(fhir, "PATCH", url, _fhirpath(fhirpath_op("delete", path)))
    assert response.elapsed.total_seconds() < 1.0, response.elapsed
    assert_outcome(response, 422)
    assert stored(fhir, url) == before


# ---------------------------------------------------------------------------------------------
# DELETE and If-Match

IF_MATCH_GARBAGE = ["garbage", 'W/"abc"', '"1', "W/1", 'W/"-1"', 'W/"99999999999"', 'W/"1" junk']


@pytest.mark.parametrize("value", IF_MATCH_GARBAGE)
@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE"])
def test_if_match_garbage_is_400_and_changes_nothing(
    fhir: httpx.Client, existing: dict, method: str, value: str
) -> None:
    url = f"/Patient/{existing['id']}"
    bodies = {"PUT": {**existing, "gender": "male"}, "PATCH": [], "DELETE": None}
    content_type = JSON_PATCH if method == "PATCH" else FHIR_JSON
    before = stored(fhir, url)
    response = send(
        fhir, method, url, bodies[method], content_type=content_type, headers={"if-match": value}
    )
    assert_outcome(response, 400)
    assert stored(fhir, url) == before


def test_delete_with_stale_if_match_is_412_and_changes_nothing(
    fhir: httpx.Client, existing: dict
) -> None:
    url = f"/Patient/{existing['id']}"
    before = stored(fhir, url)
    assert_outcome(fhir.delete(url, headers={"if-match": 'W/"2"'}), 412)
    assert stored(fhir, url) == before


# ---------------------------------------------------------------------------------------------
# history and read parameters

HISTORY_PARAM_CASES = [
    pytest.param("_count", "-1", id="count-negative"),
    pytest.param("_count", "abc", id="count-text"),
    pytest.param("_count", "1.5", id="count-fraction"),
    pytest.param("_count", "", id="count-empty"),
    pytest.param("_count", "99999999999999", id="count-huge"),
    pytest.param("_since", "yesterday", id="since-text"),
    pytest.param("_since", "2020-13-01", id="since-month-13"),
    pytest.param("_since", "2021-02-29", id="since-feb-29"),
    pytest.param("_since", "2020-01-01T25:00:00Z", id="since-hour-25"),
    pytest.param("_since", "2020-01-01T10:00:00+15:00", id="since-zone-out-of-range"),
    pytest.param("_since", "9999-12-31T23:59:59-14:00", id="since-after-year-9999-in-utc"),
    pytest.param("_since", "", id="since-empty"),
    pytest.param("_at", "nope", id="at-text"),
    pytest.param("_at", "2021-02-29", id="at-feb-29"),
    pytest.param("_at", "2020-01-01T10:61:00Z", id="at-minute-61"),
    pytest.param("_cursor", "0", id="cursor-zero"),
    pytest.param("_cursor", "x", id="cursor-text"),
]


@pytest.mark.parametrize(("name", "value"), HISTORY_PARAM_CASES)
@pytest.mark.parametrize("level", ["system", "type", "instance"])
def test_bad_history_parameters(
    fhir: httpx.Client, existing: dict, level: str, name: str, value: str
) -> None:
    url = {
        "system": "/_history",
        "type": "/Patient/_history",
        "instance": f"/Patient/{existing['id']}/_history",
    }[level]
    assert_outcome(fhir.get(url, params={name: value}), 400, name)


@pytest.mark.parametrize(
    ("path", "params", "status"),
    [
        pytest.param("/Patient/_history", {"_count": "²"}, 400, id="count"),
        pytest.param("/_history", {"_cursor": "²"}, 400, id="cursor"),
        pytest.param("/Patient/{id}/_history/²", {}, 404, id="vread-version"),
    ],
)
def test_superscript_digits_are_not_numbers(
    fhir: httpx.Client, existing: dict, path: str, params: dict, status: int
) -> None:
    response = fhir.get(path.format(id=existing["id"]), params=params)
    assert_outcome(response, status, next(iter(params), None))


@pytest.mark.parametrize(
    ("params", "expression"),
    [
        pytest.param({"_summary": "bogus"}, "_summary", id="summary-bogus"),
        pytest.param({"_summary": "count"}, "_summary", id="summary-count-on-read"),
        pytest.param({"_summary": "TRUE"}, "_summary", id="summary-upper-case"),
    ],
)
def test_bad_read_parameters(
    fhir: httpx.Client, existing: dict, params: dict, expression: str
) -> None:
    assert_outcome(fhir.get(f"/Patient/{existing['id']}", params=params), 400, expression)


# ---------------------------------------------------------------------------------------------
# known bugs: invalid resources accepted, issues pointing at the wrong element

ACCEPTED_INVALID = [
    pytest.param("Patient", patient(name=[5]), "Patient.name[0]", id="complex-element-is-a-number"),
    pytest.param("Patient", patient(name=[None]), "Patient.name[0]", id="null-in-array"),
    pytest.param("Patient", patient(managingOrganization=None), "Patient.managingOrganization", id="null-complex-element"),
    pytest.param("Patient", patient(meta="x"), "Patient.meta", id="meta-is-a-string"),
    pytest.param("Observation", observation(code="puls"), "Observation.code", id="codeable-concept-is-a-string"),
    pytest.param("Patient", patient(multipleBirthInteger=1.5), "Patient.multipleBirthInteger", id="integer-with-fraction"),
    pytest.param("Patient", patient(multipleBirthInteger=2**31), "Patient.multipleBirthInteger", id="integer-above-32-bit"),
    pytest.param("Patient", patient(photo=[{"size": -1}]), "Patient.photo[0].size", id="unsignedInt-negative"),
]  # fmt: skip


@pytest.mark.parametrize(("type_", "body", "expression"), ACCEPTED_INVALID)
def test_invalid_resource_is_rejected(
    fhir: httpx.Client, type_: str, body: dict, expression: str
) -> None:
    before = newest(fhir, type_)
    response = fhir.post(f"/{type_}", json=body)
    assert_outcome(response, 400, expression)
    assert newest(fhir, type_) == before


def test_huge_integer_is_rejected_not_rounded(fhir: httpx.Client) -> None:
    body = b'{"resourceType": "Patient", "multipleBirthInteger": 12345678901234567890123}'
    response = fhir.post("/Patient", content=body, headers={"content-type": FHIR_JSON})
    if response.status_code == 201:
        assert response.json()["multipleBirthInteger"] == 12345678901234567890123
    else:
        assert_outcome(response, 400, "Patient.multipleBirthInteger")


DECIMAL_PATH_500 = [
    pytest.param(b'{"resourceType": "Patient", "gender": 1.0}', "Patient.gender", id="decimal-as-code"),
    pytest.param(b'{"resourceType": "Patient", "name": [{"family": 1.50}]}', "Patient.name[0].family", id="decimal-as-string"),
    pytest.param(b'{"resourceType": "Patient", "birthDate": 1E3}', "Patient.birthDate", id="exponent-as-date"),
    pytest.param(b'{"resourceType": "Patient", "multipleBirthBoolean": 1.0}', "Patient.multipleBirthBoolean", id="decimal-as-boolean"),
    pytest.param(b'{"resourceType": "Patient", "multipleBirthInteger": 2.0}', "Patient.multipleBirthInteger", id="decimal-as-integer"),
    # a body that takes the decimal path (here only because a *string* looks like one) parses
    # integers with the standard library, and a huge one then fails to serialise
    pytest.param(b'{"resourceType": "Patient", "multipleBirthInteger": 100000000000000000000, "name": [{"text": "a,1.0"}]}', "Patient.multipleBirthInteger", id="huge-integer-on-decimal-path"),
]  # fmt: skip


@pytest.mark.parametrize(("body", "expression"), DECIMAL_PATH_500)
def test_number_in_the_wrong_place_is_400_not_500(
    fhir: httpx.Client, body: bytes, expression: str
) -> None:
    before = newest(fhir, "Patient")
    response = fhir.post("/Patient", content=body, headers={"content-type": FHIR_JSON})
    assert_outcome(response, 400, expression)
    assert newest(fhir, "Patient") == before


def test_patch_with_decimal_in_the_wrong_place_is_422_not_500(
    fhir: httpx.Client, existing: dict
) -> None:
    url = f"/Patient/{existing['id']}"
    before = stored(fhir, url)
    body = b'[{"op": "add", "path": "/gender", "value": 1.0}]'
    assert_outcome(send(fhir, "PATCH", url, body, content_type=JSON_PATCH), 422, "Patient.gender")
    assert stored(fhir, url) == before


MISPLACED_EXPRESSIONS = [
    pytest.param(lambda p: ("POST", "/Patient", patient(foo=1)), "Patient.foo", id="unknown-property"),
    pytest.param(lambda p: ("POST", "/Patient", patient(name=[{"family": "N", "foo": 1}])), "Patient.name[0].foo", id="unknown-nested-property"),
    pytest.param(lambda p: ("POST", "/Observation", {"resourceType": "Observation", "status": "final"}), "Observation.code", id="missing-required-element"),
    pytest.param(lambda p: ("POST", "", _transaction(_post(fullUrl="urn:uuid:6f1c37a4-4a0c-4b58-9e7e-0c2f3e0b7a12"), _post(fullUrl="urn:uuid:6f1c37a4-4a0c-4b58-9e7e-0c2f3e0b7a12"))), "Bundle.entry[1].fullUrl", id="duplicate-fullUrl"),
    pytest.param(lambda p: ("POST", "", _transaction(_entry("DELETE", f"Patient/{p['id']}"), _entry("DELETE", f"Patient/{p['id']}"))), "Bundle.entry[1].request.url", id="same-resource-twice"),
    pytest.param(lambda p: ("POST", "", _transaction(_post(), _post(patient(gender="x")))), "Bundle.entry[1].resource.gender", id="entry-resource-issue"),
]  # fmt: skip


@pytest.mark.parametrize(("make_request", "expression"), MISPLACED_EXPRESSIONS)
def test_issue_expression_names_the_offending_element(
    fhir: httpx.Client,
    existing: dict,
    make_request: Callable[[dict], tuple[str, str, object]],
    expression: str,
) -> None:
    method, url, body = make_request(existing)
    response = send(fhir, method, url, body)
    assert_outcome(response, 400, expression)
