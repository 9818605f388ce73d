"""Who sees and writes Kjernejournal's shared documents, on top of the platform's
health-data rules.

Confidentiality (Volven 9603, ``DocumentReference.securityLabel``; a Binary follows the
document its ``securityContext`` names):

- ``N`` (normal): everyone the health-data rules let in;
- ``NORS`` (sperret, blocked at the patient's request): hidden from everyone but the patient;
  a search by health personnel says in ``NHN-SecurityLabel-Nors-Count`` how many it withheld;
- ``NORN_*`` (innsyn nektet) and ``NORU`` (utsatt innsyn): hidden from citizens (the patient
  and representatives), shown to health personnel.

Hidden documents are left out in the query (so totals and paging stay right) and by
``present`` (reads: 404, as for any hidden entry).

Writes: only health personnel and systems share documents, for their own organisation (an
author organisation of the document is the one in their token). A document is never
changed or deleted: a newer one replaces it (the old one becomes ``superseded``), or it is
deprecated (``entered-in-error``) by its author organisation; both are a change of
``status`` only. A document's content (Binary) and its SubmissionSet never change.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Final

import orjson

from samhandling.platform.auth.context import AccessContext, Principal
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.fhir.search.executor import SearchPage
from samhandling.platform.fhir.search.query import Leaf, SearchRequest
from samhandling.platform.identifiers import ORGNR_SYSTEMS
from samhandling.platform.policy.service import Annotate, Narrow, PermitWrite, Present
from samhandling.services.summary.documents import (
    BLOCKED,
    CONFIDENTIALITY_CODES,
    CONFIDENTIALITY_SYSTEM,
    is_submission_set,
)

NORS_COUNT_HEADER: Final = "NHN-SecurityLabel-Nors-Count"
# codes hidden from citizens (the patient and representatives): innsyn nektet or utsatt
WITHHELD_FROM_CITIZENS: Final = frozenset(
    code for code in CONFIDENTIALITY_CODES if code.startswith("NORN_") or code == "NORU"
)
# a document's status may only move forward: current -> superseded | entered-in-error
STATUS_CHANGES: Final = {"current": frozenset({"superseded", "entered-in-error"})}


def hidden_codes(context: AccessContext) -> frozenset[str]:
    """The Volven 9603 codes of documents hidden from this caller."""
    if context.principal is not Principal.CITIZEN:
        return frozenset({BLOCKED})
    own = context.acting_for is None or context.acting_for == context.person_id
    return WITHHELD_FROM_CITIZENS if own else WITHHELD_FROM_CITIZENS | {BLOCKED}


def confidentiality(document: dict) -> str | None:
    """A DocumentReference's Volven 9603 code."""
    for label in document.get("securityLabel") or []:
        for coding in label.get("coding") or [] if isinstance(label, dict) else []:
            if isinstance(coding, dict) and coding.get("system") == CONFIDENTIALITY_SYSTEM:
                return coding.get("code")
    return None


class DocumentRules:
    """The hooks of Kjernejournal's policy for DocumentReference, List and Binary."""

    def __init__(self, engine: FhirEngine | None) -> None:
        self._engine = engine

    # reading

    async def narrow(self, context: AccessContext, request: SearchRequest) -> None:
        """Leave the documents hidden from the caller out of the query."""
        request.criteria.append(self._label_leaf("not", hidden_codes(context)))

    async def annotate(
        self, context: AccessContext, request: SearchRequest, page: SearchPage
    ) -> None:
        """Tell health personnel how many documents of their search are blocked (NORS)."""
        if context.principal is Principal.CITIZEN or self._engine is None:
            return
        criteria = [c for c in request.criteria if not _is_label_leaf(c)]
        counting = dataclasses.replace(
            request,
            types=("DocumentReference",),  # of a search of several types, its documents
            criteria=[*criteria, self._label_leaf(None, (BLOCKED,))],
            includes=[],
            sort=[],
            summary="count",
            total="accurate",
            cursor=None,
            used=[],
            warnings=[],
        )
        blocked = await self._engine.search(counting)
        page.headers[NORS_COUNT_HEADER] = str(blocked.total or 0)

    async def present_document(
        self, context: AccessContext, content: bytes, current: bool
    ) -> bytes | None:
        """A DocumentReference, unless its confidentiality hides it from the caller."""
        document = orjson.loads(content)
        return None if confidentiality(document) in hidden_codes(context) else content

    async def present_binary(
        self, context: AccessContext, content: bytes, current: bool
    ) -> bytes | None:
        """A Binary, unless the document it holds is hidden from the caller."""
        reference = _security_context(orjson.loads(content))
        if reference is None or not reference.startswith("DocumentReference/"):
            return content
        if self._engine is None:
            return None
        stored = await self._engine.store.read("DocumentReference", reference.split("/", 1)[1])
        if stored is None:
            return content  # its document is gone: the health-data rules still judge it
        document = orjson.loads(stored.content)
        return None if confidentiality(document) in hidden_codes(context) else content

    def _label_leaf(self, modifier: str | None, codes: Iterable[str]) -> Leaf:
        assert self._engine is not None
        param = self._engine.registry.get("DocumentReference", "security-label")
        values = tuple(f"{CONFIDENTIALITY_SYSTEM}|{code}" for code in sorted(codes))
        return Leaf(param, "security-label", modifier, values)

    # writing

    async def permit_document(
        self, context: AccessContext, new: dict | None, current: bytes | None
    ) -> None:
        """Share for one's own organisation; afterwards, only the status moves on."""
        _not_citizen(context, "DocumentReference")
        if new is None:
            raise FhirError.of(
                405,
                "not-supported",
                "a shared document is never deleted: deprecate it (status entered-in-error) "
                "or replace it with a newer document",
                "DocumentReference.status",
            )
        stored = orjson.loads(current) if current is not None else None
        _own_organisation(context, stored or new)
        if stored is not None:
            _status_change_only(stored, new)

    async def permit_unchanging(
        self, context: AccessContext, new: dict | None, current: bytes | None
    ) -> None:
        """A document's content (a Binary whose securityContext is a DocumentReference) and
        a SubmissionSet are written once; other Lists and Binaries are plain resources."""
        stored = orjson.loads(current) if current is not None else None
        shared = [r for r in (new, stored) if r is not None and _is_sharing(r)]
        if not shared:
            return
        _not_citizen(context, str(shared[0].get("resourceType")))
        if current is not None:
            raise FhirError.of(
                405,
                "not-supported",
                "a shared document's content and its SubmissionSet never change: share a new "
                "document that replaces it",
            )

    def hooks(
        self,
    ) -> tuple[dict[str, Narrow], dict[str, Present], dict[str, Annotate], dict[str, PermitWrite]]:
        """(narrow, present, annotate, permit_write) hooks by resource type."""
        return (
            {"DocumentReference": self.narrow},
            {"DocumentReference": self.present_document, "Binary": self.present_binary},
            {"DocumentReference": self.annotate},
            {
                "DocumentReference": self.permit_document,
                "Binary": self.permit_unchanging,
                "List": self.permit_unchanging,
            },
        )


def _is_sharing(resource: dict) -> bool:
    """Whether a List or Binary belongs to a shared document: a SubmissionSet, or a
    document's content."""
    if resource.get("resourceType") == "List":
        return is_submission_set(resource)
    reference = _security_context(resource)
    return reference is not None and reference.startswith(("DocumentReference/", "urn:uuid:"))


def _is_label_leaf(criterion: object) -> bool:
    return isinstance(criterion, Leaf) and criterion.code == "security-label"


def _security_context(resource: dict) -> str | None:
    context = resource.get("securityContext")
    reference = context.get("reference") if isinstance(context, dict) else None
    return reference if isinstance(reference, str) else None


def _not_citizen(context: AccessContext, type_name: str) -> None:
    if context.principal is Principal.CITIZEN:
        raise FhirError.of(
            403,
            "forbidden",
            f"documents are shared by health personnel and their systems; citizens read them "
            f"({type_name})",
        )


def author_organisations(document: dict) -> set[str]:
    """The organisation numbers of a document's authors."""
    found = set()
    for author in document.get("author") or []:
        identifier = author.get("identifier") if isinstance(author, dict) else None
        if isinstance(identifier, dict) and identifier.get("system") in ORGNR_SYSTEMS:
            value = identifier.get("value")
            if isinstance(value, str):
                found.add(value)
    return found


def _own_organisation(context: AccessContext, document: dict) -> None:
    own = {o for o in (context.orgnr_parent, context.orgnr_child) if o}
    if not own & author_organisations(document):
        raise FhirError.of(
            403,
            "forbidden",
            "a document is shared, replaced and deprecated by its author organisation: the "
            f"one in the token ({', '.join(sorted(own)) or 'none'}) is not among its authors",
            "DocumentReference.author",
        )


def _status_change_only(stored: dict, new: dict) -> None:
    """An update of a shared document changes its status forward, nothing else."""
    before, after = stored.get("status"), new.get("status")
    if after != before and after not in STATUS_CHANGES.get(str(before), frozenset()):
        raise FhirError.of(
            409,
            "business-rule",
            f"a document with status {before} cannot become {after} (current documents are "
            "superseded or deprecated; nothing else changes)",
            "DocumentReference.status",
        )

    def rest(resource: dict) -> dict:
        return {k: v for k, v in resource.items() if k not in ("meta", "status", "id", "text")}

    if rest(stored) != rest(new):
        raise FhirError.of(
            409,
            "business-rule",
            "a shared document's metadata is not changed: share a new document that replaces "
            "it (relatesTo replaces), or change only its status",
            "DocumentReference",
        )
