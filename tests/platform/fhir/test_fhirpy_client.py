"""The engine through a real FHIR client library (fhirpy), as integrators use it."""

from __future__ import annotations

import pytest
from fhirpy import SyncFHIRClient
from fhirpy.base.exceptions import OperationOutcome, ResourceNotFound

from conftest import Server


@pytest.fixture()
def client(server: Server) -> SyncFHIRClient:
    return SyncFHIRClient(server.fhir, extra_headers={"Content-Type": "application/fhir+json"})


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
