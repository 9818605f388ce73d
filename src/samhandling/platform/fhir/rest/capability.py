"""The CapabilityStatement, generated from what the engine actually supports."""

from __future__ import annotations

from samhandling.platform.fhir.definitions import FHIR_VERSION, resource_types

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
)
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system")


def capability_statement(base: str, software_version: str, date: str) -> dict:
    """A CapabilityStatement (kind ``instance``) for the server at ``base``."""
    resources = [
        {
            "type": type_name,
            "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
            "versioning": "versioned-update",
            "readHistory": True,
            "updateCreate": True,
            "conditionalCreate": False,
            "conditionalRead": "full-support",
            "conditionalUpdate": False,
            "conditionalDelete": "not-supported",
        }
        for type_name in sorted(resource_types())
    ]
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": date,
        "publisher": "samhandling",
        "kind": "instance",
        "software": {"name": "samhandling", "version": software_version},
        "implementation": {"description": "samhandling FHIR R4 server", "url": base},
        "fhirVersion": FHIR_VERSION,
        "format": ["application/fhir+json", "json"],
        "patchFormat": ["application/json-patch+json", "application/fhir+json"],
        "rest": [
            {
                "mode": "server",
                "resource": resources,
                "interaction": [{"code": code} for code in SYSTEM_INTERACTIONS],
            }
        ],
    }
