"""Search-parameter extraction cost: the FHIRPath compiler vs fhirpathpy.

For Patient, Observation, Encounter, MedicationRequest and Condition resources of a synthetic
patient bundle, evaluates every applicable search-parameter expression and prints the
microseconds per resource. Run with ``python bench/fhirpath_extract.py``.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import fhirpathpy
import fhirpathpy.models

from samhandling.platform.fhir.definitions import search_parameters_for
from samhandling.platform.fhir.fhirpath import UnsupportedExpression, compile_expression
from samhandling.synth import patient_bundle

TYPES = ("Patient", "Observation", "Encounter", "MedicationRequest", "Condition")
R4 = fhirpathpy.models.models["r4"]


def _expressions(resource_type: str) -> list[str]:
    found = []
    for parameter in search_parameters_for(resource_type).values():
        if parameter.expression is None:
            continue
        try:
            compile_expression(parameter.expression)
        except UnsupportedExpression:
            continue
        found.append(parameter.expression)
    return found


def _per_resource(resources: list[dict], extract: Callable[[dict], object], budget: float) -> float:
    """Microseconds per resource, repeating the whole list for about ``budget`` seconds."""
    rounds = 0
    start = time.perf_counter()
    while True:
        for resource in resources:
            extract(resource)
        rounds += 1
        elapsed = time.perf_counter() - start
        if elapsed >= budget:
            return elapsed / (rounds * len(resources)) * 1e6


def main() -> None:
    resources: dict[str, list[dict]] = {name: [] for name in TYPES}
    for index in range(3):
        for entry in patient_bundle(index)["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] in resources:
                resources[resource["resourceType"]].append(resource)

    print(f"{'type':<18} {'n':>4} {'exprs':>5} {'ours µs':>9} {'fhirpathpy µs':>14} {'speedup':>8}")
    for resource_type in TYPES:
        expressions = _expressions(resource_type)
        ours = [compile_expression(expression) for expression in expressions]
        theirs = [fhirpathpy.compile(expression, model=R4) for expression in expressions]

        def extract_ours(resource: dict, ours: list = ours) -> list:
            return [evaluate(resource) for evaluate in ours]

        def extract_theirs(resource: dict, theirs: list = theirs) -> list:
            out = []
            for evaluate in theirs:
                try:
                    out.append(evaluate(resource))
                except Exception:  # resolve() is not implemented in fhirpathpy
                    out.append(None)
            return out

        items = resources[resource_type]
        ours_us = _per_resource(items, extract_ours, 0.5)
        theirs_us = _per_resource(items, extract_theirs, 1.0)
        print(
            f"{resource_type:<18} {len(items):>4} {len(expressions):>5} {ours_us:>9.1f}"
            f" {theirs_us:>14.1f} {theirs_us / ours_us:>7.0f}x"
        )


if __name__ == "__main__":
    main()
