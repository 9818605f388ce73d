"""The hash chains' MACs, and the little SQL the two backends spell differently.

Every MAC is HMAC-SHA256 under the audit key over length-prefixed fields, led by a label
naming what it authenticates, so no field can bleed into its neighbour and no MAC of one
kind can pass for another.
"""

from __future__ import annotations

import hmac
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

import orjson

from samhandling.infrastructure.database import POSTGRESQL
from samhandling.platform.fhir.datetimes import from_micros, to_micros
from samhandling.platform.fhir.search.sql import numbered
from samhandling.platform.fhir.storage import Store

GENESIS = bytes(32)  # the "previous hash" of a chain's first row and first registration


def _mac(key: bytes, label: bytes, *fields: bytes) -> bytes:
    message = b"".join(len(f).to_bytes(4, "big") + f for f in (label, *fields))
    return hmac.digest(key, message, "sha256")


def _int(value: int) -> bytes:
    return value.to_bytes(8, "big", signed=True)


def row_hash(
    key: bytes,
    prev_hash: bytes,
    chain_id: str,
    position: int,
    recorded: int,
    persons: Iterable[str],
    record: bytes,
) -> bytes:
    """A row's hash: ``recorded`` in microseconds, ``persons`` as from `persons_of`."""
    listed = b"".join(len(p).to_bytes(4, "big") + p for p in (p.encode() for p in persons))
    return _mac(
        key, b"audit-row/1", prev_hash, chain_id.encode(), _int(position), _int(recorded),
        listed, record,
    )  # fmt: skip


def head_mac(key: bytes, chain_id: str, last_position: int, last_hash: bytes) -> bytes:
    """The MAC of a chain's head (so it cannot be moved back without the key)."""
    return _mac(key, b"audit-head/1", chain_id.encode(), _int(last_position), last_hash)


def registration_link(key: bytes, prev_link: bytes, seq: int, chain_id: str, created: int) -> bytes:
    """The link of a chain's registration to the one registered before it."""
    return _mac(key, b"audit-chain/1", prev_link, _int(seq), chain_id.encode(), _int(created))


def persons_of(patients: Iterable[str]) -> list[str]:
    """The distinct persons of a record's ``patients``: its rows in ``audit_patient``."""
    return sorted(set(patients))


class Dialect:
    """What differs between the backends: placeholders, times, booleans, lists."""

    def __init__(self, store: Store) -> None:
        self.pg = store.backend == POSTGRESQL

    def sql(self, text: str) -> str:
        """``?`` placeholders in the backend's style."""
        return numbered(text) if self.pg else text

    def time(self, moment: datetime) -> Any:
        """A time as stored (SQLite: microseconds)."""
        return moment if self.pg else to_micros(moment)

    def micros(self, stored: Any) -> int:
        """A stored time in microseconds since the epoch."""
        return to_micros(stored) if self.pg else stored

    def moment(self, stored: Any) -> datetime:
        """A stored time as an aware datetime."""
        return stored if self.pg else from_micros(stored)

    def is_true(self, column: str) -> str:
        """A condition on a boolean column, as its partial index spells it."""
        return column if self.pg else f"{column} = 1"

    def in_list(self, column: str, values: Collection[Any]) -> tuple[str, Any]:
        """``column`` is one of ``values``: SQL with one ``?`` and its argument."""
        if self.pg:
            return f"{column} = ANY(?)", list(values)
        return f"{column} IN (SELECT value FROM json_each(?))", orjson.dumps(list(values)).decode()
