"""FHIR decimals keep their precision: 1.50 is stored and served as 1.50, not 1.5."""

from __future__ import annotations

import uuid

import httpx

OBSERVATION = (
    b'{"resourceType": "Observation", "status": "final", "code": {"text": "kalium"},'
    b' "valueQuantity": {"value": 4.50, "unit": "mmol/L"},'
    b' "referenceRange": [{"low": {"value": 3.60}, "high": {"value": 4.6e0}}]}'
)
HEADERS = {"content-type": "application/fhir+json"}


def test_create_read_and_history_keep_decimal_text(fhir: httpx.Client) -> None:
    created = fhir.post("/Observation", content=OBSERVATION, headers=HEADERS)
    assert created.status_code == 201, created.text
    for body in (created.content, fhir.get(created.headers["location"]).content):
        assert b'"value":4.50' in body
        assert b'"value":3.60' in body
        assert b'"value":4.6e0' in body
    history = fhir.get(f"/Observation/{created.json()['id']}/_history").content
    assert b'"value":4.50' in history


def test_patch_keeps_untouched_decimals_and_adds_precise_ones(fhir: httpx.Client) -> None:
    created = fhir.post("/Observation", content=OBSERVATION, headers=HEADERS).json()
    patched = fhir.patch(
        f"/Observation/{created['id']}",
        content=b'[{"op": "add", "path": "/valueQuantity/code", "value": "mmol/L"},'
        b' {"op": "replace", "path": "/referenceRange/0/low/value", "value": 3.50}]',
        headers={"content-type": "application/json-patch+json"},
    )
    assert patched.status_code == 200, patched.text
    assert b'"value":4.50' in patched.content
    assert b'"value":3.50' in patched.content


def test_transaction_keeps_decimal_text(fhir: httpx.Client) -> None:
    bundle = (
        b'{"resourceType": "Bundle", "type": "transaction", "entry": [{"fullUrl": "urn:uuid:'
        + str(uuid.uuid4()).encode()
        + b'", "request": {"method": "POST", "url": "Observation"}, "resource": '
        + OBSERVATION
        + b"}]}"
    )
    response = fhir.post("", content=bundle, headers=HEADERS)
    assert response.status_code == 200, response.text
    location = response.json()["entry"][0]["response"]["location"]
    assert b'"value":4.50' in fhir.get(f"/{location}").content


def test_invalid_numbers_are_still_rejected(fhir: httpx.Client) -> None:
    bad = OBSERVATION.replace(b"4.50", b'"4.50"')
    assert fhir.post("/Observation", content=bad, headers=HEADERS).status_code == 400
    nan = OBSERVATION.replace(b"4.50", b"NaN")
    assert fhir.post("/Observation", content=nan, headers=HEADERS).status_code == 400
