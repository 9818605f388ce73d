"""Resource ids: validation of client-chosen ids and time-ordered server-assigned ids."""

from __future__ import annotations

import re

import uuid_utils

ID_PATTERN = re.compile(r"[A-Za-z0-9\-.]{1,64}")


def new_id() -> str:
    """A new server-assigned id: a UUIDv7, so B-tree inserts stay local (time-ordered)."""
    return str(uuid_utils.uuid7())


def is_valid_id(value: object) -> bool:
    """Whether ``value`` is a valid FHIR id ([A-Za-z0-9-.]{1,64})."""
    return isinstance(value, str) and ID_PATTERN.fullmatch(value) is not None
