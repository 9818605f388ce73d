"""Errors the FHIR engine raises, and their OperationOutcome form."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class Issue:
    """One OperationOutcome issue."""

    severity: str  # fatal | error | warning | information
    code: str  # IssueType code: invalid, structure, required, value, not-found, conflict, ...
    diagnostics: str
    expression: tuple[str, ...] = ()
    details: tuple[str, str] | None = None  # a coded reason: (system, code)

    def to_json(self) -> dict:
        """The issue as an OperationOutcome.issue element."""
        issue: dict = {
            "severity": self.severity,
            "code": self.code,
        }
        if self.details is not None:
            system, code = self.details
            issue["details"] = {"coding": [{"system": system, "code": code}]}
        issue["diagnostics"] = self.diagnostics
        if self.expression:
            issue["expression"] = list(self.expression)
        return issue


@dataclass(eq=False)
class FhirError(Exception):
    """A request the engine refuses: an HTTP status and the issues explaining why."""

    status: int
    issues: list[Issue] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return "; ".join(issue.diagnostics for issue in self.issues) or f"HTTP {self.status}"

    @classmethod
    def of(
        cls,
        status: int,
        code: str,
        diagnostics: str,
        expression: str | None = None,
        *,
        severity: str = "error",
    ) -> FhirError:
        """An error with a single issue."""
        expr = (expression,) if expression else ()
        return cls(status, [Issue(severity, code, diagnostics, expr)])

    def outcome(self) -> dict:
        """The error as an OperationOutcome resource."""
        return operation_outcome(self.issues)


def operation_outcome(issues: list[Issue]) -> dict:
    """An OperationOutcome resource for ``issues``."""
    return {"resourceType": "OperationOutcome", "issue": [issue.to_json() for issue in issues]}


def information(message: str) -> dict:
    """An informational OperationOutcome (for ``Prefer: return=OperationOutcome``)."""
    return operation_outcome([Issue("information", "informational", message)])


def not_found(type: str, id: str) -> FhirError:
    """The resource was never there."""
    return FhirError.of(404, "not-found", f"{type}/{id} is not known")


def gone(type: str, id: str, version: int) -> FhirError:
    """The resource was deleted."""
    return FhirError.of(410, "deleted", f"{type}/{id} was deleted (version {version})")
