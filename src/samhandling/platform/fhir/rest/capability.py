"""The CapabilityStatement, generated from what the engine actually supports."""

from __future__ import annotations

from samhandling.platform.fhir.definitions import FHIR_VERSION, resource_types
from samhandling.platform.fhir.operations import Operation, OperationRegistry
from samhandling.platform.fhir.search.params import SearchParam, SearchRegistry
from samhandling.platform.fhir.search.query import MODIFIERS

TYPE_INTERACTIONS = (
    "read",
    "vread",
    "update",
    "patch",
    "delete",
    "history-instance",
    "history-type",
    "create",
    "search-type",
)
SYSTEM_INTERACTIONS = ("transaction", "batch", "history-system", "search-system")
RESULT_PARAMETERS = (
    "_sort", "_count", "_include", "_revinclude", "_summary", "_total", "_elements",
)  # fmt: skip


def _documentation(param: SearchParam) -> str:
    modifiers = ["missing", *sorted(MODIFIERS.get(param.type, ()))]
    if param.type == "token" and "of-type" not in param.derived:
        modifiers.remove("of-type")
    if param.type == "reference":
        modifiers.append("[type]")
    if param.code in ("_id", "_lastUpdated"):
        modifiers = []
    text = f"modifiers: {', '.join(':' + m for m in modifiers)}" if modifiers else "no modifiers"
    if param.type == "reference":
        text += "; chains (any depth) and _has"
    if param.type in ("date", "number", "quantity") or param.code == "_lastUpdated":
        text += "; prefixes eq, ne, gt, lt, ge, le, sa, eb, ap"
    if param.type == "quantity":
        text += "; UCUM units are compared in canonical form"
    return text


def _search_params(params: list[SearchParam]) -> list[dict]:
    return [
        {
            "name": p.code,
            "definition": p.url,
            "type": p.type,
            "documentation": _documentation(p),
        }
        for p in sorted(params, key=lambda p: p.code)
    ]


def _operations(operations: list[Operation]) -> list[dict]:
    listed = []
    for op in operations:
        entry: dict = {"name": op.name, "definition": op.definition or f"#{op.name}"}
        if op.documentation:
            entry["documentation"] = op.documentation
        listed.append(entry)
    return listed


def capability_statement(
    base: str,
    software_version: str,
    date: str,
    registry: SearchRegistry,
    conditional_delete_max: int = 1,
    operations: OperationRegistry | None = None,
) -> dict:
    """A CapabilityStatement (kind ``instance``) for the server at ``base``.

    Each type lists exactly the search parameters that work (those whose expression the
    engine can index, plus ``_id`` and ``_lastUpdated``), with their modifiers.
    """
    resources = []
    for type_name in sorted(resource_types()):
        params = [p for p in registry.for_type(type_name).values() if p.supported]
        references = sorted(p.code for p in params if p.type == "reference")
        type_operations = operations.for_type(type_name) if operations else []
        resources.append(
            {
                "type": type_name,
                "interaction": [{"code": code} for code in TYPE_INTERACTIONS],
                "versioning": "versioned-update",
                "readHistory": True,
                "updateCreate": True,
                "conditionalCreate": True,
                "conditionalRead": "full-support",
                "conditionalUpdate": True,
                "conditionalDelete": "multiple" if conditional_delete_max > 1 else "single",
                "searchInclude": ["*", *(f"{type_name}:{code}" for code in references)],
                "searchRevInclude": sorted({f"{type_name}:{code}" for code in references}),
                "searchParam": _search_params(params),
                **({"operation": _operations(type_operations)} if type_operations else {}),
            }
        )
    common = [
        p for p in registry.for_type("Patient").values()
        if p.supported and p.key.startswith("Resource.")
    ] + [registry.for_type("Patient")[c] for c in ("_id", "_lastUpdated")]  # fmt: skip
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
                "searchParam": _search_params(common),
                **(
                    {"operation": _operations(operations.system())}
                    if operations and operations.system()
                    else {}
                ),
            }
        ],
    }
