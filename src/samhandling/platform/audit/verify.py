"""Checking the audit trail: every chain walked in order, every row's MAC recomputed.

Reads page by page (a chain of millions of rows is never loaded at once), and works while
the platform keeps writing: a chain's head is read before its rows and again after them,
so rows appended meanwhile are not mistaken for tampering.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from samhandling.platform.audit.chain import (
    GENESIS,
    Dialect,
    head_mac,
    persons_of,
    registration_link,
    row_hash,
)
from samhandling.platform.audit.record import AuditRecord
from samhandling.platform.fhir.storage import Store

_CHAINS_WITH_ROWS = """
WITH RECURSIVE c(chain_id) AS (
    SELECT min(chain_id) FROM audit_record
    UNION ALL
    SELECT (SELECT min(chain_id) FROM audit_record WHERE chain_id > c.chain_id)
    FROM c WHERE c.chain_id IS NOT NULL
)
SELECT chain_id FROM c WHERE chain_id IS NOT NULL
"""
_HEADS = "SELECT chain_id, seq, created, link, last_position, last_hash, head_mac FROM audit_chain"


@dataclass(frozen=True, slots=True)
class Problem:
    """Something wrong with one row (id None when the row is gone) or with a chain."""

    id: int | None
    chain: str
    position: int | None
    what: str

    def __str__(self) -> str:
        row = "row" if self.id is None else f"row {self.id}"
        at = "" if self.position is None else f", position {self.position}"
        return f"{row} (chain {self.chain}{at}): {self.what}"


@dataclass(slots=True)
class VerifyReport:
    """What `verify` checked and found."""

    rows: int = 0
    chains: int = 0
    problems: list[Problem] = field(default_factory=list)
    unlisted: int = 0  # problems found beyond the ``max_problems`` listed

    @property
    def ok(self) -> bool:
        """Whether the audit trail is intact."""
        return not self.problems and not self.unlisted


@dataclass(frozen=True, slots=True)
class _Head:
    chain_id: str
    seq: int
    created: Any
    link: bytes
    last_position: int
    last_hash: bytes
    mac: bytes


async def verify(
    store: Store, key: bytes, *, page: int = 2000, max_problems: int = 1000
) -> VerifyReport:
    """Check every chain: each row's MAC, consecutive positions from 1, each row linked to
    the one before, the persons mapped to each record, each chain's head and registration.
    Lists at most ``max_problems`` problems (and counts the rest)."""
    return await _Verifier(store, key, page, max_problems).run()


class _Verifier:
    def __init__(self, store: Store, key: bytes, page: int, max_problems: int) -> None:
        self.store = store
        self.key = key
        self.page = page
        self.max_problems = max_problems
        self.dialect = Dialect(store)
        self.report = VerifyReport()

    def problem(self, id: int | None, chain: str, position: int | None, what: str) -> None:
        if len(self.report.problems) < self.max_problems:
            self.report.problems.append(Problem(id, chain, position, what))
        else:
            self.report.unlisted += 1

    async def run(self) -> VerifyReport:
        # rows imply a committed registration: list the chains with rows before the registry
        with_rows = {r[0] for r in await self.store.fetch(_CHAINS_WITH_ROWS, [])}
        heads = [_head(row) for row in await self.store.fetch(_HEADS + " ORDER BY seq", [])]
        trusted = self.check_registry(heads)
        for head in heads:
            await self.walk(head.chain_id, head if head.chain_id in trusted else None, True)
        unregistered = sorted(with_rows - {head.chain_id for head in heads})
        for chain_id in unregistered:
            await self.walk(chain_id, None, False)
        self.report.chains = len(heads) + len(unregistered)
        return self.report

    def check_registry(self, heads: list[_Head]) -> set[str]:
        """Check the registrations' links and each head's MAC; the chains whose head holds."""
        trusted = set()
        expected, prev = 1, GENESIS
        for head in heads:
            chain = head.chain_id
            if head.seq > expected:
                missing = _span(expected, head.seq - 1)
                self.problem(None, chain, None, f"chain registration {missing} missing before")
            elif head.seq < expected:
                self.problem(None, chain, None, f"chain registration {head.seq} repeated")
            elif head.link != registration_link(
                self.key, prev, head.seq, chain, self.dialect.micros(head.created)
            ):
                self.problem(None, chain, None, "chain registration changed")
            expected, prev = head.seq + 1, head.link
            if head.mac != head_mac(self.key, chain, head.last_position, head.last_hash):
                self.problem(
                    None, chain, head.last_position,
                    "chain head changed (rows after this position may have been removed)",
                )  # fmt: skip
            else:
                trusted.add(chain)
        return trusted

    async def walk(self, chain: str, head: _Head | None, registered: bool) -> None:
        """Check a chain's rows in order up to its head as read before the walk (``head``;
        None when it cannot be trusted: up to its last row now), then the head."""
        if head is not None:
            end = head.last_position
        else:
            found = await self.store.fetch(
                self.dialect.sql("SELECT max(position) FROM audit_record WHERE chain_id = ?"),
                [chain],
            )
            end = found[0][0] or 0
        expected, prev = 1, GENESIS
        after = (0, 0)  # keyset: (position, id), so a repeated position is read too
        at_head: tuple[int, bytes] | None = None  # the row the head names: id, hash
        while after[0] < end:
            rows = await self.store.fetch(
                self.dialect.sql(
                    "SELECT id, position, recorded, service, emergency, record, prev_hash, hash"
                    " FROM audit_record WHERE chain_id = ? AND (position, id) > (?, ?)"
                    " AND position <= ? ORDER BY position, id LIMIT ?"
                ),
                [chain, *after, end, self.page],
            )
            if not rows:
                break
            if after == (0, 0) and not registered:
                self.problem(rows[0][0], chain, rows[0][1], "rows of an unregistered chain")
            persons = await self.persons([row[0] for row in rows])
            for row in rows:
                self.check_row(chain, expected, prev, row, persons.get(row[0], set()))
                self.report.rows += 1
                expected, prev = max(expected, row[1] + 1), bytes(row[7])
                if row[1] == end:
                    at_head = (row[0], prev)
            after = (rows[-1][1], rows[-1][0])
        if head is not None:
            await self.check_head(chain, head, expected - 1, at_head)

    def check_row(
        self, chain: str, expected: int, prev: bytes, row: Any, mapped: set[tuple[str, Any]]
    ) -> None:
        id, position, recorded, service, emergency, document, prev_hash, digest = row
        document, prev_hash = bytes(document), bytes(prev_hash)
        if position > expected:
            self.problem(None, chain, expected, f"row {_span(expected, position - 1)} missing,"
                         f" before row {id}")  # fmt: skip
        wrong = []
        if position < expected:
            wrong.append("position repeated")
        elif position == expected and prev_hash != prev:
            wrong.append("not linked to the row before it")
        try:
            record: AuditRecord | None = AuditRecord.from_json(document)
        except ValueError:
            record = None
        persons = persons_of(record.patients) if record else []
        micros = self.dialect.micros(recorded)
        if record is None or bytes(digest) != row_hash(
            self.key, prev_hash, chain, position, micros, persons, document
        ):
            wrong.append("content changed")
        else:
            if service != record.service:
                wrong.append("service column differs from the record")
            if bool(emergency) != record.emergency:
                wrong.append("emergency column differs from the record")
            if mapped != {(person, micros) for person in persons}:
                wrong.append("persons concerned (audit_patient) differ from the record")
        if wrong:
            self.problem(id, chain, position, "; ".join(wrong))

    async def persons(self, ids: list[int]) -> dict[int, set[tuple[str, Any]]]:
        """The mapped (person, recorded in microseconds) of records, by record id."""
        where, arg = self.dialect.in_list("record_id", ids)
        sql = f"SELECT record_id, person, recorded FROM audit_patient WHERE {where}"
        rows = await self.store.fetch(self.dialect.sql(sql), [arg])
        found: dict[int, set[tuple[str, Any]]] = {}
        for record_id, person, recorded in rows:
            found.setdefault(record_id, set()).add((person, self.dialect.micros(recorded)))
        return found

    async def check_head(
        self, chain: str, before: _Head, last: int, at_head: tuple[int, bytes] | None
    ) -> None:
        """The rows end where the head said before the walk; rows past it were appended
        since (the head has moved over them) or written without moving it."""
        if last < before.last_position:
            self.problem(None, chain, last + 1,
                         f"newest row {_span(last + 1, before.last_position)} missing")  # fmt: skip
        elif at_head is not None and at_head[1] != before.last_hash:
            self.problem(at_head[0], chain, last, "differs from the chain head")
        sql = self.dialect.sql
        newest = await self.store.fetch(
            sql("SELECT max(position) FROM audit_record WHERE chain_id = ?"), [chain]
        )  # before the head: a row seen committed was committed with its head
        if (newest[0][0] or 0) <= before.last_position:
            return
        found = await self.store.fetch(sql(_HEADS + " WHERE chain_id = ?"), [chain])
        now = _head(found[0]) if found else None
        if now is None or now.mac != head_mac(self.key, chain, now.last_position, now.last_hash):
            self.problem(None, chain, None, "chain head changed during the check")
        elif newest[0][0] > now.last_position:
            first = now.last_position + 1
            rows = await self.store.fetch(
                sql("SELECT id FROM audit_record WHERE chain_id = ? AND position = ?"),
                [chain, first],
            )
            self.problem(rows[0][0] if rows else None, chain, first,
                         f"row {_span(first, newest[0][0])} after the chain head")  # fmt: skip


def _head(row: Any) -> _Head:
    return _Head(row[0], row[1], row[2], bytes(row[3]), row[4], bytes(row[5]), bytes(row[6]))


def _span(first: int, last: int) -> str:
    """``5`` or ``5-7``."""
    return str(first) if first == last else f"{first}-{last}"
