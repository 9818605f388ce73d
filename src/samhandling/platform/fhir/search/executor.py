"""Running a search: plan the query, page it with keyset cursors, count, and include.

Paging is stateless: a cursor carries the sort values and rid of the row a page ends on,
so ``next``/``previous`` links keep working across restarts and worker processes, and
pages never skip or repeat rows when other rows are added meanwhile.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

import orjson

from samhandling.platform.fhir.datetimes import from_micros, to_micros
from samhandling.platform.fhir.search.params import TABLE_OF_TYPE, SearchParam
from samhandling.platform.fhir.search.query import Include, SearchRequest, invalid
from samhandling.platform.fhir.search.sql import (
    POSTGRESQL,
    Fragment,
    Predicate,
    SqlBuilder,
    join,
    numbered,
)
from samhandling.platform.fhir.search.values import MAX_TIME, MIN_TIME, TEXT_MAX

MAX_INCLUDED = 1000  # included resources per page
MAX_INCLUDE_ROUNDS = 8  # :iterate rounds
_ROW = "r.rid, r.type, r.id, r.version, r.last_updated, r.content"
_SORT_COLUMN = {
    "string": "value",
    "token": "code",
    "reference": "target_id",
    "number": "value",
    "quantity": "value",
    "uri": "uri",
}


class Fetcher(Protocol):
    """A store or store transaction: runs a query."""

    async def fetch(self, sql: str, args: list[Any]) -> list[Any]: ...


@dataclass(frozen=True, slots=True)
class Row:
    """A matched or included resource."""

    rid: int
    type: str
    id: str
    version: int
    last_updated: datetime
    content: bytes


@dataclass
class SearchPage:
    """One page of results."""

    matches: list[Row]
    included: list[Row] = field(default_factory=list)
    total: int | None = None
    next_cursor: str | None = None
    previous_cursor: str | None = None
    warnings: list[str] = field(default_factory=list)
    # HTTP response headers the access control adds (e.g. how many matches it withheld)
    headers: dict[str, str] = field(default_factory=dict)


class SearchExecutor:
    """Runs parsed searches against one backend."""

    def __init__(self, backend: str) -> None:
        self.backend = backend

    async def search(self, db: Fetcher, request: SearchRequest, base: str = "") -> SearchPage:
        """The page of ``request`` (its cursor picks the page)."""
        builder = SqlBuilder(self.backend, base)
        predicates = _intersect_weak([builder.predicate(c, "r", request.types)
                                      for c in request.criteria])  # fmt: skip
        page = SearchPage(matches=[], warnings=list(request.warnings))
        if request.total in ("accurate", "estimate") or request.summary == "count":
            page.total = await self._count(
                db, request, predicates, request.total == "estimate", builder.prefix()
            )
        if request.summary == "count" or request.count == 0:
            return page
        direction, position = _decode_cursor(request.cursor, len(request.sort))
        if position is not None:
            _check_cursor_types(request, position)
        rows, more, keys = await self._page(
            db, request, predicates, direction, position, builder.prefix()
        )
        if direction == "previous":
            rows.reverse()
        page.matches = rows
        if rows:
            first, last = rows[0], rows[-1]
            if direction == "next":
                page.next_cursor = _cursor("next", last, keys) if more else None
                page.previous_cursor = _cursor("previous", first, keys) if request.cursor else None
            else:
                page.previous_cursor = _cursor("previous", first, keys) if more else None
                page.next_cursor = _cursor("next", last, keys)
        if request.includes and rows:
            page.included, capped = await self._includes(db, request.includes, rows)
            if capped:
                page.warnings.append(
                    f"_include/_revinclude found more than {MAX_INCLUDED} resources; "
                    f"only the first {MAX_INCLUDED} are in this page"
                )
        return page

    async def ids(self, db: Fetcher, request: SearchRequest, limit: int) -> list[tuple[int, str]]:
        """(rid, id) of up to ``limit`` matches, for conditional interactions."""
        builder = SqlBuilder(self.backend)
        predicates = [builder.predicate(c, "r", request.types) for c in request.criteria]
        where = self._where(request, predicates, drive=True)
        sql = (
            Fragment("SELECT r.rid, r.id FROM resource r WHERE ")
            + where
            + (f" ORDER BY r.rid LIMIT {int(limit)}")
        )
        return [(row[0], row[1]) for row in await self._fetch(db, sql, builder.prefix())]

    # ----------------------------------------------------------------------------------

    def _where(self, request: SearchRequest, predicates: list[Predicate], *, drive: bool,
               skip: Predicate | None = None) -> Fragment:  # fmt: skip
        parts: list[Fragment] = []
        types = request.types
        driver = _driver(predicates) if drive else None
        # with a driver, SQLite must not scan the type index instead ("+" hides the column)
        column = "+r.type" if self.backend != POSTGRESQL and (driver or skip) else "r.type"
        if len(types) == 1:
            parts.append(Fragment(f"{column} = ?", (types[0],)))
        elif types:
            parts.append(Fragment(f"{column} IN ({', '.join('?' * len(types))})", tuple(types)))
        parts.append(Fragment("NOT r.deleted"))
        for predicate in predicates:
            if predicate is skip:
                continue
            if predicate is driver and predicate.drive is not None:
                parts.append(predicate.drive)
            else:
                parts.append(predicate.check)
        return join(parts, " AND ")

    async def _fetch(
        self, db: Fetcher, fragment: Fragment, prefix: Fragment | None = None
    ) -> list[Any]:
        if prefix is not None and prefix.sql:
            fragment = prefix + fragment
        sql = numbered(fragment.sql) if self.backend == POSTGRESQL else fragment.sql
        return await db.fetch(sql, list(fragment.args))

    async def _count(
        self,
        db: Fetcher,
        request: SearchRequest,
        predicates: list[Predicate],
        estimate: bool,
        prefix: Fragment,
    ) -> int:
        where = self._where(request, predicates, drive=True)
        if estimate and self.backend == POSTGRESQL:
            select = Fragment("SELECT r.rid FROM resource r WHERE ") + where
            plan = await self._fetch(db, Fragment("EXPLAIN ") + prefix + select)
            found = re.search(r"rows=(\d+)", plan[0][0]) if plan else None
            if found:
                return int(found.group(1))
        rows = await self._fetch(
            db, Fragment("SELECT COUNT(*) FROM resource r WHERE ") + where, prefix
        )
        return int(rows[0][0])

    async def _page(
        self,
        db: Fetcher,
        request: SearchRequest,
        predicates: list[Predicate],
        direction: str,
        position: list | None,
        prefix: Fragment,
    ) -> tuple[list[Row], bool, dict[int, list]]:
        """Up to ``count`` rows after (or before) ``position``; whether there are more; the
        sort values of each row by rid (for cursors)."""
        limit = request.count + 1
        backwards = direction == "previous"
        if request.sort:
            keys = [self._sort_key(code, param, desc) for code, param, desc in request.sort]
            select = _ROW + "".join(f", {k.sql} AS k{i}" for i, k in enumerate(keys))
            select_args = tuple(a for k in keys for a in k.args)
            where = self._where(request, predicates, drive=True)
            if position is not None:
                where = where + " AND " + self._keyset(request, keys, position, backwards)
            order = ", ".join(
                f"k{i} {'DESC' if desc != backwards else 'ASC'}"
                for i, (_, _, desc) in enumerate(request.sort)
            )
            order += f", r.rid {'DESC' if backwards else 'ASC'}"
            sql = (
                Fragment(f"SELECT {select} FROM resource r WHERE ", select_args)
                + where
                + (f" ORDER BY {order} LIMIT {limit}")
            )
            rows = await self._fetch(db, sql, prefix)
            keys_of = {row[0]: list(row[6:]) for row in rows}
            found = [self._row(row) for row in rows]
            return found[: request.count], len(found) > request.count, keys_of
        driver = _driver(predicates)
        after = position[-1] if position is not None else None
        comparison = "<" if backwards else ">"
        order = "DESC" if backwards else "ASC"
        if driver is not None and driver.join_table is not None:
            assert driver.join_where is not None
            rest = self._where(request, predicates, drive=False, skip=driver)
            # CROSS JOIN: SQLite keeps the index table as the outer loop
            joined = "JOIN" if self.backend == POSTGRESQL else "CROSS JOIN"
            head = (
                Fragment(
                    f"SELECT {_ROW} FROM {driver.join_table} d {joined} resource r"
                    " ON r.rid = d.rid WHERE "
                )
                + driver.join_where
                + " AND "
                + rest
            )
            key = "d.rid"
        else:
            head = Fragment(f"SELECT {_ROW} FROM resource r WHERE ") + self._where(
                request, predicates, drive=True
            )
            key = "r.rid"
        found: list[Row] = []
        while True:
            sql = head
            if after is not None:
                sql = sql + Fragment(f" AND {key} {comparison} ?", (after,))
            sql = sql + f" ORDER BY {key} {order} LIMIT {limit}"
            rows = await self._fetch(db, sql, prefix)
            for row in rows:
                if not found or found[-1].rid != row[0]:  # a resource matching twice
                    found.append(self._row(row))
            if len(found) > request.count or len(rows) < limit:
                break
            after = rows[-1][0]
        return found[: request.count], len(found) > request.count, {}

    def _sort_key(self, code: str, param: SearchParam | None, desc: bool) -> Fragment:
        if code == "_id":
            return Fragment("r.id")
        if code == "_lastUpdated":
            return Fragment("r.last_updated")
        assert param is not None
        table = TABLE_OF_TYPE[param.type]
        if param.type == "date":
            column = "high" if desc else "low"
            sentinel: Any = MIN_TIME if desc else MAX_TIME
        else:
            column = _SORT_COLUMN[param.type]
            if param.type in ("number", "quantity"):
                sentinel = -1e308 if desc else 1e308
            else:
                sentinel = "" if desc else TEXT_MAX
        function = "MAX" if desc else "MIN"
        return Fragment(
            f"COALESCE((SELECT {function}(s.{column}) FROM {table} s"
            f" WHERE s.rid = r.rid AND s.pid = ?), ?)",
            (param.pid, sentinel),
        )

    def _keyset(
        self, request: SearchRequest, keys: list[Fragment], position: list, backwards: bool
    ) -> Fragment:
        values = [self._sort_arg(code, v) for (code, _, _), v in zip(request.sort, position[:-1],
                                                                      strict=True)]  # fmt: skip
        alternatives: list[Fragment] = []
        columns = [*keys, Fragment("r.rid")]
        directions = [desc for _, _, desc in request.sort] + [False]
        all_values = [*values, position[-1]]
        for i in range(len(columns)):
            parts = [
                Fragment(f"{columns[j].sql} = ?", (*columns[j].args, all_values[j]))
                for j in range(i)
            ]
            greater = directions[i] == backwards  # ascending going forward: >
            operator = ">" if greater else "<"
            parts.append(
                Fragment(f"{columns[i].sql} {operator} ?", (*columns[i].args, all_values[i]))
            )
            alternatives.append(Fragment("(") + join(parts, " AND ") + ")")
        return Fragment("(") + join(alternatives, " OR ") + ")"

    def _sort_arg(self, code: str, value: Any) -> Any:
        if code == "_lastUpdated" and self.backend == POSTGRESQL:
            return SqlBuilder(self.backend).time_arg(value)
        return value

    def _row(self, row: Any) -> Row:
        last_updated = row[4]
        if not isinstance(last_updated, datetime):
            last_updated = from_micros(last_updated)
        return Row(row[0], row[1], row[2], row[3], last_updated, bytes(row[5]))

    async def _includes(
        self, db: Fetcher, includes: list[Include], matches: list[Row]
    ) -> tuple[list[Row], bool]:
        seen = {(row.type, row.id) for row in matches}
        included: list[Row] = []
        sources = matches
        for round_number in range(MAX_INCLUDE_ROUNDS):
            wanted = [i for i in includes if round_number == 0 or i.iterate]
            if not wanted or not sources:
                break
            found: list[Row] = []
            for include in wanted:
                budget = MAX_INCLUDED - len(included) - len(found)
                for row in await self._include(db, include, sources, budget + 1):
                    key = (row.type, row.id)
                    if key not in seen:
                        seen.add(key)
                        found.append(row)
                if len(included) + len(found) > MAX_INCLUDED:
                    included.extend(found)
                    return included[:MAX_INCLUDED], True
            included.extend(found)
            sources = found
        return included, False

    async def _include(
        self, db: Fetcher, include: Include, sources: list[Row], limit: int
    ) -> list[Row]:
        if include.reverse:
            return await self._revinclude(db, include, sources, limit)
        rids = [r.rid for r in sources if include.source_type in ("*", r.type)]
        if not rids:
            return []
        conditions = [Fragment(f"x.rid IN ({', '.join('?' * len(rids))})", tuple(rids))]
        if include.param is not None:
            conditions.append(Fragment("x.pid = ?", (include.param.pid,)))
        if include.target_type is not None:
            conditions.append(Fragment("x.target_type = ?", (include.target_type,)))
        sql = (
            Fragment(
                f"SELECT DISTINCT {_ROW} FROM search_reference x JOIN resource r"
                " ON r.type = x.target_type AND r.id = x.target_id WHERE NOT r.deleted AND "
            )
            + join(conditions, " AND ")
            + f" ORDER BY r.rid LIMIT {int(limit)}"
        )
        return [self._row(row) for row in await self._fetch(db, sql)]

    async def _revinclude(
        self, db: Fetcher, include: Include, sources: list[Row], limit: int
    ) -> list[Row]:
        param = include.param
        assert param is not None
        by_type: dict[str, list[str]] = {}
        for row in sources:
            if include.target_type not in (None, row.type):
                continue
            if param.targets and row.type not in param.targets:
                continue
            by_type.setdefault(row.type, []).append(row.id)
        found: list[Row] = []
        for target_type, ids in by_type.items():
            sql = Fragment(
                f"SELECT DISTINCT {_ROW} FROM search_reference x JOIN resource r ON r.rid = x.rid"
                f" WHERE x.pid = ? AND x.target_type = ? AND x.target_id IN"
                f" ({', '.join('?' * len(ids))}) AND r.type = ? AND NOT r.deleted"
                f" ORDER BY r.rid LIMIT {int(limit)}",
                (param.pid, target_type, *ids, include.source_type),
            )
            found.extend(self._row(row) for row in await self._fetch(db, sql))
        return found


def _intersect_weak(predicates: list[Predicate]) -> list[Predicate]:
    """Two string prefixes and nothing more selective: drive with their intersection.

    ``Patient?family=Hansen&given=Kari`` matches thousands of rows on either criterion but
    few on both; intersecting the two index ranges (rids only) is far cheaper than fetching
    every Hansen to check the given name.
    """
    strings = [
        p for p in predicates
        if p.join_table == "search_string" and p.join_where is not None and p.rank >= 3
    ]  # fmt: skip
    stronger = [p for p in predicates if p.drive is not None and p.rank < 3]
    if len(strings) < 2 or stronger:
        return predicates
    first, second = strings[0], strings[1]
    assert first.join_where is not None and second.join_where is not None
    drive = (
        Fragment("r.rid IN (SELECT d.rid FROM search_string d WHERE ")
        + first.join_where
        + " INTERSECT SELECT d.rid FROM search_string d WHERE "
        + second.join_where
        + ")"
    )
    combined = Predicate(first.check + " AND " + second.check, drive, rank=first.rank)
    return [combined, *(p for p in predicates if p is not first and p is not second)]


def _driver(predicates: list[Predicate]) -> Predicate | None:
    candidates = [p for p in predicates if p.drive is not None and p.rank < 9]
    return min(candidates, key=lambda p: p.rank, default=None)


def _cursor(direction: str, row: Row, keys: dict[int, list]) -> str:
    return _encode(direction, [*keys.get(row.rid, []), row.rid])


def _encode(direction: str, position: list) -> str:
    payload = [direction[0]]
    for value in position:
        payload.append(to_micros(value) if isinstance(value, datetime) else value)
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode().rstrip("=")


def _check_cursor_types(request: SearchRequest, position: list) -> None:
    """A cursor's sort values must have the types of the sort keys (it is client input)."""
    for (code, param, _), value in zip(request.sort, position[:-1], strict=True):
        if code == "_lastUpdated" or (param is not None and param.type == "date"):
            wanted: tuple[type, ...] = (int,)
        elif param is not None and param.type in ("number", "quantity"):
            wanted = (int, float)
        else:
            wanted = (str,)
        fits = isinstance(value, wanted) and not isinstance(value, bool)
        if not fits or (isinstance(value, int) and abs(value) > 2**62):
            raise invalid("_cursor does not fit this search (were the parameters changed?)",
                          "_cursor")  # fmt: skip
    if abs(position[-1]) > 2**62:
        raise invalid("_cursor is not a cursor this server made", "_cursor")


def _decode_cursor(cursor: str | None, keys: int) -> tuple[str, list | None]:
    if cursor is None:
        return "next", None
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise invalid("_cursor is not a cursor this server made", "_cursor") from None
    if (
        not isinstance(payload, list)
        or len(payload) != keys + 2
        or payload[0] not in ("n", "p")
        or not isinstance(payload[-1], int)
        or not all(isinstance(v, str | int | float) for v in payload[1:])
    ):
        raise invalid("_cursor does not fit this search (were the parameters changed?)",
                      "_cursor")  # fmt: skip
    return ("next" if payload[0] == "n" else "previous"), payload[1:]
