"""Tests for the generated FHIR R4 definitions and their loader."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import jsonschema_rs
import orjson
import pytest

from samhandling.platform.fhir import definitions as fd

REPO_ROOT = Path(__file__).resolve().parents[3]
GENERATOR = REPO_ROOT / "scripts" / "generate_fhir_definitions.py"
SHARED_SOURCE = REPO_ROOT.parent / "shared" / "fhir-r4"
DATA_DIR = Path(fd.__file__).parent / "data"


def element(type_name: str, json_name: str) -> fd.ElementDef:
    td = fd.type_def(type_name)
    assert td is not None, type_name
    return td.elements[json_name]


# --------------------------------------------------------------------------- types


def test_version() -> None:
    assert fd.FHIR_VERSION == "4.0.1"
    version = orjson.loads((DATA_DIR / "version.json").read_bytes())
    assert version == {"fhirVersion": fd.FHIR_VERSION, "build": "9346c8cc45"}


def test_resource_types() -> None:
    types = fd.resource_types()
    assert len(types) == 146
    assert {"Patient", "Observation", "Bundle", "Questionnaire", "Binary"} <= types
    assert "Resource" not in types
    assert "DomainResource" not in types
    assert "MetadataResource" not in types
    assert fd.is_resource_type("Patient")
    assert not fd.is_resource_type("DomainResource")
    assert not fd.is_resource_type("HumanName")
    assert not fd.is_resource_type("patient")


def test_abstract_resources_and_kinds() -> None:
    resource = fd.type_def("Resource")
    assert resource is not None
    assert (resource.kind, resource.abstract) == ("resource", True)
    assert list(resource.elements) == ["id", "meta", "implicitRules", "language"]
    domain = fd.type_def("DomainResource")
    assert domain is not None and domain.abstract
    element_type = fd.type_def("Element")
    assert element_type is not None
    assert (element_type.kind, element_type.abstract) == ("complex-type", True)
    human_name = fd.type_def("HumanName")
    assert human_name is not None
    assert (human_name.kind, human_name.abstract) == ("complex-type", False)
    contact = fd.type_def("Patient.contact")
    assert contact is not None
    assert (contact.kind, contact.abstract) == ("backbone", False)
    assert fd.type_def("MetadataResource") is None
    assert fd.type_def("NoSuchType") is None


def test_primitive_types() -> None:
    primitives = fd.primitive_types()
    assert len(primitives) == 20
    assert {"string", "boolean", "date", "dateTime", "positiveInt", "xhtml", "canonical"} <= (
        primitives
    )
    assert "Quantity" not in primitives
    string = fd.type_def("string")
    assert string is not None and string.kind == "primitive-type"
    assert list(string.elements) == ["id", "extension", "value"]
    # The value of a primitive is typed with the primitive itself, not the R4 "string" errata.
    assert element("positiveInt", "value").type == "positiveInt"
    # xhtml.extension is prohibited (max 0) and therefore left out.
    assert "extension" not in fd.type_def("xhtml").elements  # type: ignore[union-attr]


def test_patient_birth_date() -> None:
    birth_date = element("Patient", "birthDate")
    assert birth_date == fd.ElementDef(
        name="birthDate",
        path="Patient.birthDate",
        type="date",
        array=False,
        min=0,
        summary=True,
        modifier=False,
        choice=None,
        targets=(),
    )


def test_inherited_elements() -> None:
    patient = fd.type_def("Patient")
    assert patient is not None
    inherited = ["id", "meta", "implicitRules", "language", "text", "contained", "extension"]
    assert list(patient.elements)[:8] == [*inherited, "modifierExtension"]
    assert patient.elements["id"].type == "string"
    assert patient.elements["contained"].type == "Resource"
    assert patient.elements["contained"].array
    assert patient.elements["modifierExtension"].modifier
    assert patient.elements["implicitRules"].path == "Patient.implicitRules"
    bundle = fd.type_def("Bundle")
    assert bundle is not None
    assert "text" not in bundle.elements  # Bundle derives from Resource, not DomainResource
    quantity = fd.type_def("Quantity")
    assert quantity is not None
    assert list(quantity.elements)[:2] == ["id", "extension"]
    assert element("Extension", "url").type == "uri"


def test_choice_elements() -> None:
    value_quantity = element("Observation", "valueQuantity")
    assert value_quantity.type == "Quantity"
    assert value_quantity.choice == "value"
    assert value_quantity.path == "Observation.value[x]"
    assert not value_quantity.array
    observation = fd.type_def("Observation")
    assert observation is not None
    assert "value[x]" not in observation.elements
    assert "value" not in observation.elements
    value_names = [name for name, el in observation.elements.items() if el.choice == "value"]
    assert value_names == [
        "valueQuantity",
        "valueCodeableConcept",
        "valueString",
        "valueBoolean",
        "valueInteger",
        "valueRange",
        "valueRatio",
        "valueSampledData",
        "valueTime",
        "valueDateTime",
        "valuePeriod",
    ]
    assert element("Patient", "deceasedDateTime").type == "dateTime"
    assert element("Patient", "deceasedBoolean").modifier
    assert element("Extension", "valueBase64Binary").type == "base64Binary"
    subject = element("Observation", "subject")
    assert subject.choice is None


def test_backbone_and_content_reference() -> None:
    item = fd.type_def("Questionnaire.item")
    assert item is not None
    nested = item.elements["item"]
    assert nested.type == "Questionnaire.item"
    assert nested.path == "Questionnaire.item.item"
    assert nested.array
    assert element("Questionnaire", "item").type == "Questionnaire.item"
    contact_name = element("Patient.contact", "name")
    assert contact_name.path == "Patient.contact.name"
    assert contact_name.type == "HumanName"
    assert list(item.elements)[:3] == ["id", "extension", "modifierExtension"]
    # Backbones inside data types (typed Element in the spec).
    assert element("Timing", "repeat").type == "Timing.repeat"
    assert element("Timing.repeat", "boundsDuration").choice == "bounds"
    # A contentReference to a backbone of another branch.
    assert element("ClaimResponse", "adjudication").type == "ClaimResponse.item.adjudication"


def test_reference_targets() -> None:
    gp = element("Patient", "generalPractitioner")
    assert gp.type == "Reference"
    assert {"Organization", "Practitioner"} <= set(gp.targets)
    assert gp.targets == ("Organization", "Practitioner", "PractitionerRole")
    assert element("Observation", "focus").targets == ()  # Reference(Any)
    assert element("Questionnaire", "derivedFrom").targets == ("Questionnaire",)  # canonical
    assert element("Patient", "birthDate").targets == ()


def test_every_element_type_is_defined() -> None:
    names = set(fd.resource_types()) | {"Resource", "DomainResource"}
    seen: set[str] = set()
    while names:
        name = names.pop()
        seen.add(name)
        td = fd.type_def(name)
        assert td is not None, name
        assert td.name == name
        for json_name, el in td.elements.items():
            assert el.name == json_name
            assert el.path.startswith(name + ".")
            assert fd.type_def(el.type) is not None, (name, json_name, el.type)
            for target in el.targets:
                assert fd.is_resource_type(target) or fd.type_def(target) is not None, target
            if el.type not in seen:
                names.add(el.type)
    assert {"Patient.contact", "Questionnaire.item", "HumanName", "Extension", "xhtml"} <= seen


def test_type_def_is_cached_and_immutable() -> None:
    assert fd.type_def("Patient") is fd.type_def("Patient")
    patient = fd.type_def("Patient")
    assert patient is not None
    with pytest.raises(TypeError):
        patient.elements["x"] = patient.elements["id"]  # type: ignore[index]
    assert hash(patient) == hash(fd.type_def("Patient"))


# --------------------------------------------------------------------------- search


def test_search_parameters() -> None:
    params = fd.search_parameters()
    assert len(params) == 1375
    assert len({sp.url for sp in params}) == 1375
    by_url = {sp.url: sp for sp in params}
    clinical_patient = by_url["http://hl7.org/fhir/SearchParameter/clinical-patient"]
    assert clinical_patient.code == "patient"
    assert clinical_patient.type == "reference"
    assert len(clinical_patient.base) == 32
    assert "Patient" in clinical_patient.target
    last_updated = by_url["http://hl7.org/fhir/SearchParameter/Resource-lastUpdated"]
    assert last_updated.expression == "Resource.meta.lastUpdated"
    assert "ge" in last_updated.comparator
    text = by_url["http://hl7.org/fhir/SearchParameter/DomainResource-text"]
    assert text.expression is None
    assert text.xpath_usage == "normal"
    composite = by_url["http://hl7.org/fhir/SearchParameter/Observation-code-value-quantity"]
    assert composite.type == "composite"
    assert composite.component == (
        fd.SearchParamComponent(
            definition="http://hl7.org/fhir/SearchParameter/clinical-code", expression="code"
        ),
        fd.SearchParamComponent(
            definition="http://hl7.org/fhir/SearchParameter/Observation-value-quantity",
            expression="value.as(Quantity)",
        ),
    )
    assert composite.multiple_or is None or isinstance(composite.multiple_or, bool)
    assert sum(sp.multiple_or is not None for sp in params) == 46
    near = by_url["http://hl7.org/fhir/SearchParameter/Location-near"]
    assert (near.type, near.xpath_usage) == ("special", "nearby")


def test_search_parameters_for() -> None:
    observation = fd.search_parameters_for("Observation")
    assert {"code", "subject", "patient", "_id", "_lastUpdated", "_text"} <= set(observation)
    assert observation["subject"].type == "reference"
    assert observation["_id"].base == ("Resource",)
    assert len([c for c in observation if not c.startswith("_")]) == 38
    bundle = fd.search_parameters_for("Bundle")
    assert "_id" in bundle
    assert "_text" not in bundle  # Bundle is not a DomainResource
    assert fd.search_parameters_for("NoSuchType") == {}
    assert fd.search_parameters_for("HumanName") == {}
    assert fd.search_parameters_for("Observation") is observation


def test_patient_compartment() -> None:
    compartment = fd.patient_compartment()
    assert len(compartment) == 66
    assert "subject" in compartment["Observation"]
    assert compartment["Patient"] == ("link",)
    assert "ActivityDefinition" not in compartment
    for resource_type, codes in compartment.items():
        assert fd.is_resource_type(resource_type)
        params = fd.search_parameters_for(resource_type)
        for code in codes:
            assert code in params, (resource_type, code)


# --------------------------------------------------------------------------- schema


def test_json_schema() -> None:
    schema = fd.json_schema()
    assert "discriminator" in schema
    assert set(schema["discriminator"]["mapping"]) == fd.resource_types()
    assert len(schema["oneOf"]) == 146
    assert "description" not in schema
    assert "description" not in schema["definitions"]["Patient"]
    # Properties named "description" are elements, not annotations: they must stay.
    assert "description" in schema["definitions"]["Questionnaire"]["properties"]


def test_json_schema_validates() -> None:
    validator = jsonschema_rs.Draft6Validator(fd.json_schema())
    patient = {
        "resourceType": "Patient",
        "id": "p1",
        "name": [{"family": "Nordmann", "given": ["Ola"]}],
        "gender": "male",
        "birthDate": "1974-12-25",
    }
    assert validator.is_valid(patient)
    assert not validator.is_valid({**patient, "gender": "x"})
    assert not validator.is_valid({**patient, "unknown": 1})
    assert not validator.is_valid({**patient, "birthDate": "1974-13-45x"})
    assert not validator.is_valid({"resourceType": "SubscriptionStatus"})


# --------------------------------------------------------------------------- generated data


@pytest.mark.skipif(
    not SHARED_SOURCE.is_dir(),
    reason=f"FHIR R4 source definitions not available at {SHARED_SOURCE}",
)
def test_generated_data_is_up_to_date(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(GENERATOR), "--source", str(SHARED_SOURCE), "--output", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    generated = {p.name for p in tmp_path.iterdir()}
    committed = {p.name for p in DATA_DIR.iterdir() if p.is_file()}
    assert generated == committed
    stale = [
        name
        for name in sorted(generated)
        if (tmp_path / name).read_bytes() != (DATA_DIR / name).read_bytes()
    ]
    assert not stale, f"re-run scripts/generate_fhir_definitions.py: {stale} are out of date"
