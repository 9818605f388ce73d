"""Search parameters Kjernejournal needs that R4 does not define: the status of a Flag and
of a DeviceUseStatement (so a retracted entry, entered-in-error, can be left out in the
query, as the health indicator does, and clients can search ``Flag?status=active``), and
the Kjernejournal category of every critical-information type (``kj-category``).

They are stored as SearchParameter resources like any custom parameter, so every worker's
engine loads them and existing entries are reindexed by the background job.
"""

from __future__ import annotations

from typing import Any

import orjson

from samhandling.platform.fhir.engine import FhirEngine
from samhandling.services.registries.model import OWN
from samhandling.services.summary.critical import LAYOUTS
from samhandling.services.summary.model import CATEGORY_EXTENSION, CRITICAL_TYPES

CATEGORY_CODE = "kj-category"


def _category_expression(type_name: str) -> str:
    """Where ``type_name`` keeps its Kjernejournal category (critical.LAYOUTS)."""
    element = LAYOUTS[type_name].category
    if element is not None:
        return f"{type_name}.{element}"
    return f"{type_name}.extension('{CATEGORY_EXTENSION}').value"


_STATUS: tuple[dict[str, Any], ...] = tuple(
    {
        "resourceType": "SearchParameter",
        "id": f"kjernejournal-{type_name.lower()}-status",
        "url": f"{OWN}/SearchParameter/kjernejournal-{type_name.lower()}-status",
        "name": f"{type_name}Status",
        "status": "active",
        "description": f"The status of a {type_name} (Kjernejournal: entered-in-error = retracted)",
        "code": "status",
        "base": [type_name],
        "type": "token",
        "expression": f"{type_name}.status",
    }
    for type_name in ("Flag", "DeviceUseStatement")
)
# the Kjernejournal category of every critical-information type, wherever the type keeps it
# (``AllergyIntolerance?kj-category=<system>|1``), so the health indicator counts critical
# information only, not every entry of the same types
_CATEGORY: tuple[dict[str, Any], ...] = tuple(
    {
        "resourceType": "SearchParameter",
        "id": f"kjernejournal-{type_name.lower()}-category",
        "url": f"{OWN}/SearchParameter/kjernejournal-{type_name.lower()}-category",
        "name": f"{type_name}KjernejournalCategory",
        "status": "active",
        "description": f"The Kjernejournal category of a {type_name} (critical information)",
        "code": CATEGORY_CODE,
        "base": [type_name],
        "type": "token",
        "expression": _category_expression(type_name),
    }
    for type_name in sorted(CRITICAL_TYPES)
)
SEARCH_PARAMETERS = (*_STATUS, *_CATEGORY)


async def install_search_parameters(engine: FhirEngine) -> None:
    """Store the parameters unless they are there already, as they are."""
    for definition in SEARCH_PARAMETERS:
        stored = await engine.store.read("SearchParameter", definition["id"])
        if stored is not None and stored.content is not None:
            current = orjson.loads(stored.content)
            if all(current.get(key) == value for key, value in definition.items()):
                continue
        await engine.update("SearchParameter", definition["id"], definition)
    await engine.refresh_search_parameters()
