"""The engine through a real FHIR client library (fhirpy), as integrators use it."""

from __future__ import annotations

import httpx
import pytest
import requests
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from conftest import Server
from samhandling.services.trust.tokentool import DpopAuth


class RequestsDpopAuth(requests.auth.AuthBase):
    """`DpopAuth` for requests, the HTTP library fhirpy's sync client uses: the token and a
    fresh proof for the prepared request's method and URL, on every request fhirpy makes."""

    def __init__(self, auth: DpopAuth) -> None:
        self.auth = auth

    def __call__(self, prepared: requests.PreparedRequest) -> requests.PreparedRequest:
        assert prepared.method is not None and prepared.url is not None
        signed = next(self.auth.auth_flow(httpx.Request(prepared.method, prepared.url)))
        prepared.headers["Authorization"] = signed.headers["Authorization"]
        prepared.headers["DPoP"] = signed.headers["DPoP"]
        return prepared


@pytest.fixture()
def client(server: Server) -> SyncFHIRClient:
    # fhirpy passes requests_config to requests.request, whose auth hook signs each request
    return SyncFHIRClient(
        server.fhir,
        extra_headers={"Content-Type": "application/fhir+json"},
        requests_config={"auth": RequestsDpopAuth(server.auth)},
    )


def test_create_read_update_delete_with_fhirpy(client: SyncFHIRClient) -> None:
    patient = client.resource(
        "Patient", name=[{"family": "Hansen", "given": ["Per"]}], gender="male"
    )
    patient.save()
    assert patient.id
    assert patient["meta"]["versionId"] == "1"

    fetched = client.reference("Patient", patient.id).to_resource()
    assert fetched["name"][0]["family"] == "Hansen"

    fetched["birthDate"] = "1955-03-04"
    fetched.save()
    assert fetched["meta"]["versionId"] == "2"
    assert client.reference("Patient", patient.id).to_resource()["birthDate"] == "1955-03-04"

    fetched.delete()
    with pytest.raises((ResourceNotFound, OperationOutcome)):
        client.reference("Patient", patient.id).to_resource()


def test_validation_errors_reach_the_client_as_operation_outcome(client: SyncFHIRClient) -> None:
    patient = client.resource("Patient", birthDate="1980-02-30")
    with pytest.raises(OperationOutcome) as caught:
        patient.save()
    assert "1980-02-30" in str(caught.value)
