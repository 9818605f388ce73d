"""A compiler for the FHIRPath subset used by R4 search-parameter expressions.

``compile_expression("Patient.name.given")`` returns a plain closure over the resource JSON
(a dict) that returns the matching values, in document order. See `compiler` for the subset.
"""

from samhandling.platform.fhir.fhirpath.compiler import (
    UnsupportedExpression,
    compile_expression,
    compile_relative,
    result_types,
)

__all__ = ["UnsupportedExpression", "compile_expression", "compile_relative", "result_types"]
