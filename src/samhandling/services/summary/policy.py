"""Who may read and write Kjernejournal: the platform's health-data rules (security level 4,
HPR, access basis, reservations, blocks, representation), plus Kjernejournal's own: only
health personnel register critical information, and a registration is never deleted (it is
marked entered-in-error, so its history stays).

The write rules (`permit_write`, inside the write's transaction):

- citizens never write critical information (403); health personnel and systems with the
  write scope do;
- a health worker is the recorder of what they write: the contained PractitionerRole names
  their own HPR number and their token's organisation (403 otherwise);
- a correction names the version it corrects in ``meta.versionId``, which must be the stored
  current version (409 otherwise), so nothing is silently overwritten;
- an entry stays with its patient (403);
- DELETE is refused (405): an entry is retracted by marking it entered-in-error, and a
  retracted entry is not changed again (409).
"""

from __future__ import annotations

import orjson

from samhandling.platform.auth.context import AccessContext, Principal
from samhandling.platform.fhir.engine import FhirEngine
from samhandling.platform.fhir.errors import FhirError
from samhandling.platform.policy.service import PermitWrite, ServicePolicy
from samhandling.services.summary.critical import (
    LAYOUTS,
    is_critical_information,
    is_retracted,
    recorder_of,
)
from samhandling.services.summary.document_rules import DocumentRules
from samhandling.services.summary.model import CRITICAL_TYPES, SERVICE_NAME, SUMMARY_TYPES

READ_SCOPE = "samhandling:kjernejournal/read"
WRITE_SCOPE = "samhandling:kjernejournal/write"


def summary_policy(engine: FhirEngine | None) -> ServicePolicy:
    """Kjernejournal's policy over the types it owns: critical information, and shared
    documents (`document_rules`)."""
    narrow, present, annotate, permit_documents = DocumentRules(engine).hooks()
    return ServicePolicy(
        types=SUMMARY_TYPES,
        read_scope=READ_SCOPE,
        write_scope=WRITE_SCOPE,
        service=SERVICE_NAME,
        health=True,
        narrow=narrow,
        present=present,
        annotate=annotate,
        permit_write={
            **{t: critical_write_rule(t) for t in sorted(CRITICAL_TYPES)},
            **permit_documents,
        },
    )


def critical_write_rule(type_name: str) -> PermitWrite:
    """Kjernejournal's rules for writing critical information of ``type_name``."""
    layout = LAYOUTS[type_name]

    async def permit_write(context: AccessContext, new: dict | None, current: bytes | None) -> None:
        stored = orjson.loads(current) if current is not None else None
        was = stored is not None and is_critical_information(type_name, stored)
        if new is not None and was and not is_critical_information(type_name, new):
            raise FhirError.of(
                409,
                "conflict",
                "critical information keeps its Kjernejournal category (retract it by "
                "marking it entered-in-error)",
            )
        if not was and (new is None or not is_critical_information(type_name, new)):
            return  # not critical information: a plain FHIR resource of this type
        if context.principal is Principal.CITIZEN:
            raise FhirError.of(
                403,
                "forbidden",
                "critical information is registered and corrected by health personnel; "
                "citizens read it",
            )
        if new is None:
            raise FhirError.of(
                405,
                "not-supported",
                "critical information is never deleted: retract it by marking it "
                f"entered-in-error ({type_name}.{layout.retraction}), so its history stays",
                f"{type_name}.{layout.retraction}",
            )
        if context.principal is Principal.PERSONNEL:
            _check_recorder(context, type_name, new)
        if stored is None:
            return
        _check_version(type_name, new, stored)
        if is_retracted(type_name, stored):
            raise FhirError.of(
                409,
                "business-rule",
                f"{type_name}/{stored.get('id')} was retracted (entered-in-error) and is not "
                "changed again: register a new entry",
                f"{type_name}.{layout.retraction}",
            )
        if new.get(layout.subject) != stored.get(layout.subject):
            raise FhirError.of(
                403,
                "forbidden",
                "an entry stays with its patient: retract it and register it for the right one",
                f"{type_name}.{layout.subject}",
            )

    return permit_write


def _check_recorder(context: AccessContext, type_name: str, new: dict) -> None:
    """A health worker registers in their own name and for their own organisation."""
    recorder = recorder_of(type_name, new)
    where = f"{type_name}.contained.where(id = 'recorder')"
    if recorder is None or context.hpr_number is None or recorder.hpr_number != context.hpr_number:
        raise FhirError.of(
            403,
            "forbidden",
            "the recorder must be the health worker who writes: their own HPR number "
            f"({context.hpr_number or 'none in the token'})",
            f"{where}.practitioner.identifier",
        )
    own = {o for o in (context.orgnr_parent, context.orgnr_child) if o}
    if recorder.orgnr not in own:
        raise FhirError.of(
            403,
            "forbidden",
            "the recorder's organisation must be the one the health worker's token names "
            f"({', '.join(sorted(own)) or 'none in the token'})",
            f"{where}.organization.identifier",
        )


def _check_version(type_name: str, new: dict, stored: dict) -> None:
    """A correction names the version it corrects, which must be the current one."""
    meta = stored.get("meta")
    have = meta.get("versionId") if isinstance(meta, dict) else None
    given_meta = new.get("meta")
    given = given_meta.get("versionId") if isinstance(given_meta, dict) else None
    if given is None:
        raise FhirError.of(
            409,
            "conflict",
            f"a correction must name the version it corrects in meta.versionId (the current "
            f"version is {have})",
            f"{type_name}.meta.versionId",
        )
    if given != have:
        raise FhirError.of(
            409,
            "conflict",
            f"{type_name}/{stored.get('id')} was changed since version {given} (the current "
            f"version is {have}): read it again and correct that version",
            f"{type_name}.meta.versionId",
        )
