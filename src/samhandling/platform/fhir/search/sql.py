"""SQL for search criteria, shared by SQLite and PostgreSQL.

Every criterion becomes a `Predicate` on the resource row ``r``: a correlated ``check``
(``EXISTS (... a.rid = r.rid ...)``) and, when the criterion can produce its matches on its
own, a ``drive`` form (``r.rid IN (SELECT a.rid ...)``) and a ``join`` form (the index table
itself, scanned in rid order). The executor (`samhandling.platform.fhir.search.executor`)
lets the most selective predicate drive and checks the others per candidate row, so a query
never materialises the matches of an unselective criterion.

Placeholders are written as ``?`` and numbered for PostgreSQL at the end (`numbered`).
"""

from __future__ import annotations

import functools
import itertools
import math
import re
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation

from samhandling.platform.fhir.datetimes import DateTimeFormatError, from_micros, to_micros
from samhandling.platform.fhir.search.extract import UCUM
from samhandling.platform.fhir.search.params import TABLE_OF_TYPE, SearchParam
from samhandling.platform.fhir.search.query import (
    PREFIXES,
    Chain,
    Compartment,
    Criterion,
    Has,
    Leaf,
    invalid,
    split_values,
    unescape,
)
from samhandling.platform.fhir.search.ucum import canonical
from samhandling.platform.fhir.search.values import TEXT_MAX, date_range, fold

POSTGRESQL = "postgresql"
_FIRST_MICROS = -62_135_596_800_000_000  # 0001-01-01T00:00:00Z
_LAST_MICROS = 253_402_300_799_999_999  # 9999-12-31T23:59:59.999999Z


@dataclass(frozen=True, slots=True)
class Fragment:
    """SQL text with ``?`` placeholders and their arguments, in order."""

    sql: str
    args: tuple = ()

    def __add__(self, other: Fragment | str) -> Fragment:
        if isinstance(other, str):
            return Fragment(self.sql + other, self.args)
        return Fragment(self.sql + other.sql, self.args + other.args)


def join(fragments: list[Fragment], separator: str) -> Fragment:
    """Fragments joined by ``separator`` (e.g. `` AND ``)."""
    return Fragment(
        separator.join(f.sql for f in fragments),
        tuple(itertools.chain.from_iterable(f.args for f in fragments)),
    )


def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, ...``."""
    counter = itertools.count(1)
    return "".join(f"${next(counter)}" if part == "?" else part for part in _split_marks(sql))


def _split_marks(sql: str) -> list[str]:
    pieces = sql.split("?")
    out: list[str] = []
    for index, piece in enumerate(pieces):
        if index:
            out.append("?")
        out.append(piece)
    return out


@dataclass(frozen=True)
class Predicate:
    """One criterion as SQL on the resource row alias ``r`` (see the module docstring)."""

    check: Fragment
    drive: Fragment | None = None  # uncorrelated: r.rid IN (...) or r.id IN (...)
    join_table: str | None = None  # the index table, for a join on its rows in rid order
    join_where: Fragment | None = None  # condition on alias "d" of join_table
    rank: int = 9  # lower is more selective; 9 = never drives


class SqlBuilder:
    """Builds predicates for one backend (``sqlite`` or ``postgresql``)."""

    def __init__(self, backend: str, base: str = "") -> None:
        self.backend = backend
        self.base = base.rstrip("/")
        self.now = datetime.now(UTC)
        self.ctes: list[Fragment] = []  # nested sets, as WITH clauses (see `_named`)
        self._aliases = itertools.count()

    def alias(self, prefix: str) -> str:
        """A fresh table alias; numbered per query, so the same query shape gives the same
        SQL text and the drivers' prepared-statement caches hit."""
        return f"{prefix}{next(self._aliases)}"

    def prefix(self) -> Fragment:
        """The ``WITH ...`` clause of the sets named while building (empty if none)."""
        if not self.ctes:
            return Fragment("")
        return Fragment("WITH ") + join(self.ctes, ", ") + " "

    def _named(self, column: str, query: Fragment) -> Fragment:
        """``SELECT column FROM mN``, with ``query`` as the common table expression mN.

        Chains and ``_has`` nest sets in sets; written inline, four levels exceed SQLite's
        parser stack. As CTEs they are parsed one after the other (both databases inline
        them again when planning).
        """
        name = f"m{len(self.ctes)}"
        self.ctes.append(Fragment(f"{name} AS (") + query + ")")
        return Fragment(f"SELECT {column} FROM {name}")

    def time_arg(self, value: int) -> object:
        """A microsecond instant as the backend stores ``last_updated`` (clamped to years
        1-9999, which is all PostgreSQL and Python can represent)."""
        if self.backend == POSTGRESQL:
            return from_micros(min(max(value, _FIRST_MICROS), _LAST_MICROS))
        return value

    # ----------------------------------------------------------------------------------
    # criteria -> predicates

    def predicate(
        self, criterion: Criterion, r: str = "r", types: tuple[str, ...] = ()
    ) -> Predicate:
        """The predicate of one criterion on resource alias ``r`` (of one of ``types``)."""
        pin = _pinned if self.backend != POSTGRESQL else _unchanged
        if isinstance(criterion, Leaf):
            if criterion.param is None:
                return self._column(criterion, r, types)
            return pin(self._leaf(criterion, r))
        if isinstance(criterion, Chain):
            return pin(self._chain(criterion, r))
        if isinstance(criterion, Has):
            return self._has(criterion, r)
        return pin(self._compartment(criterion, r))

    def rid_set(self, resource_type: str, criterion: Criterion) -> Fragment:
        """``SELECT <rid> ...`` of resources of ``resource_type`` matching ``criterion``."""
        s = self.alias("s")
        p = self.predicate(criterion, s)  # nested: the plain forms nest least
        if isinstance(criterion, Leaf) and p.join_table and _type_specific(criterion.param):
            d = "d"
            where = p.join_where
            assert where is not None
            return self._named(
                "rid", Fragment(f"SELECT {d}.rid FROM {p.join_table} {d} WHERE ") + where
            )
        return self._named("rid", self._matching(s, "rid", resource_type, p))

    def id_set(self, resource_type: str, criterion: Criterion) -> Fragment:
        """``SELECT id ...`` of resources of ``resource_type`` matching ``criterion``."""
        s = self.alias("s")
        p = self.predicate(criterion, s)  # nested: the plain forms nest least
        return self._named("id", self._matching(s, "id", resource_type, p))

    @staticmethod
    def _matching(s: str, column: str, resource_type: str, p: Predicate) -> Fragment:
        condition = p.drive if p.drive is not None else p.check
        head = f"SELECT {s}.{column} FROM resource {s} WHERE {s}.type = ? AND NOT {s}.deleted AND "
        return Fragment(head, (resource_type,)) + condition

    def _column(self, leaf: Leaf, r: str, types: tuple[str, ...]) -> Predicate:
        if leaf.code == "_id":
            ids = tuple(unescape(v) for v in leaf.values)
            marks = ", ".join("?" * len(ids))
            if leaf.modifier == "not":  # filters what other criteria drive; never drives
                return Predicate(Fragment(f"{r}.id NOT IN ({marks})", ids), None, rank=9)
            check = Fragment(f"{r}.id IN ({marks})", ids)
            return Predicate(check, _by_id(r, types, check.sql.replace(f"{r}.id", "x.id"), ids),
                             rank=0)  # fmt: skip
        parts = [self._date_condition(f"{r}.last_updated", f"{r}.last_updated", v, point=True)
                 for v in leaf.values]  # fmt: skip
        fragment = Fragment("(") + join(parts, " OR ") + ")"
        return Predicate(fragment, None, rank=9)

    def _leaf(self, leaf: Leaf, r: str) -> Predicate:
        param = leaf.param
        assert param is not None
        if param.type == "composite":
            return self._composite(leaf, r)
        table = TABLE_OF_TYPE[param.type]
        a = self.alias("a")
        if leaf.modifier == "missing":
            exists = Fragment(
                f"EXISTS (SELECT 1 FROM {table} {a} WHERE {a}.rid = {r}.rid AND {a}.pid = ?)",
                (param.pid,),
            )
            if "identifier" in param.derived:  # a logical reference (identifier only) counts
                b = self.alias("a")
                exists = (
                    Fragment("(")
                    + exists
                    + Fragment(
                        f" OR EXISTS (SELECT 1 FROM search_token {b} WHERE {b}.rid = {r}.rid"
                        f" AND {b}.pid = ?))",
                        (param.derived["identifier"],),
                    )
                )
            if leaf.values[0] == "true":
                return Predicate(Fragment("NOT ") + exists)
            return Predicate(exists)
        negate = leaf.modifier == "not"
        pid = param.pid
        if leaf.modifier == "identifier":
            table, pid = "search_token", param.derived["identifier"]
        elif leaf.modifier == "of-type":
            pid = param.derived["of-type"]
        grouped = _token_sets(leaf) if param.type == "token" else None
        conditions = grouped or [
            self._value(param, leaf.modifier, value, "{a}") for value in leaf.values
        ]
        where_template = join(conditions, " OR ")
        where_sql = where_template.sql
        rank = _rank(param, leaf)

        single = len(conditions) == 1  # SQLite's parser stack is shallow: no needless parens

        def where(name: str) -> Fragment:
            values = Fragment(where_sql.replace("{a}", name), where_template.args)
            if single:
                return Fragment(f"{name}.pid = ? AND ", (pid,)) + values
            return Fragment(f"{name}.pid = ? AND (", (pid,)) + values + ")"

        check, drive = _correlated(r, f"{table} {a}", a, where(a))
        if negate:
            return Predicate(Fragment("NOT ") + check)
        return Predicate(check, drive, table, where("d"), rank)

    def _value(self, param: SearchParam, modifier: str | None, raw: str, a: str) -> Fragment:
        kind = "token" if modifier == "identifier" else param.type
        if kind == "string":
            text = unescape(raw)
            if modifier == "exact":
                return Fragment(f"{a}.exact = ?", (text,))
            folded = fold(text)
            if modifier == "contains":
                return Fragment(f"{a}.value LIKE ? ESCAPE '\\'", (f"%{_like(folded)}%",))
            return Fragment(f"({a}.value >= ? AND {a}.value < ?)", (folded, folded + TEXT_MAX))
        if kind == "token":
            return self._token(modifier, raw, a)
        if kind == "reference":
            return self._reference(param, modifier, raw, a)
        if kind == "date":
            return self._date_condition(f"{a}.low", f"{a}.high", raw)
        if kind == "number":
            prefix, number = _prefixed(raw)
            return _number_condition(f"{a}.value", prefix, number, raw)
        if kind == "quantity":
            return self._quantity(raw, a)
        if kind == "uri":
            uri = unescape(raw)
            if modifier == "below":
                return Fragment(f"({a}.uri >= ? AND {a}.uri < ?)", (uri, uri + TEXT_MAX))
            if modifier == "above":
                prefixes = _uri_prefixes(uri)
                marks = ", ".join("?" * len(prefixes))
                return Fragment(f"{a}.uri IN ({marks})", tuple(prefixes))
            return Fragment(f"{a}.uri = ?", (uri,))
        raise invalid(f"{param.code}: parameters of type {kind} are not supported")

    def _token(self, modifier: str | None, raw: str, a: str) -> Fragment:
        if modifier == "text":
            folded = fold(unescape(raw))
            return Fragment(f"({a}.text >= ? AND {a}.text < ?)", (folded, folded + TEXT_MAX))
        if modifier == "of-type":
            parts = split_values(raw, "|")
            if len(parts) != 3 or not all(parts):
                raise invalid(f":of-type takes system|code|value, not {raw!r}")
            system, code, value = (unescape(p) for p in parts)
            return Fragment(f"({a}.code = ? AND {a}.system = ?)", (f"{code}|{value}", system))
        parts = split_values(raw, "|")
        if len(parts) == 1:
            return Fragment(f"{a}.code = ?", (unescape(parts[0]),))
        if len(parts) != 2:
            raise invalid(f"a token is code, system|code, |code or system|; not {raw!r}")
        system, code = unescape(parts[0]), unescape(parts[1])
        if not system and not code:
            raise invalid(f"a token is code, system|code, |code or system|; not {raw!r}")
        if not system:
            return Fragment(f"({a}.code = ? AND {a}.system IS NULL)", (code,))
        if not code:
            return Fragment(f"{a}.system = ?", (system,))
        return Fragment(f"({a}.code = ? AND {a}.system = ?)", (code, system))

    def _reference(self, param: SearchParam, modifier: str | None, raw: str, a: str) -> Fragment:
        value = unescape(raw)
        if self.base and value.startswith(self.base + "/"):
            value = value[len(self.base) + 1 :]
        if "://" in value or value.startswith("urn:"):
            return Fragment(f"{a}.url = ?", (value.partition("|")[0],))
        segments = value.split("/")
        if len(segments) == 4 and segments[2] == "_history":
            segments = segments[:2]
        if len(segments) == 2 and all(segments):
            ref_type, ref_id = segments
            if modifier not in (None, ref_type):
                raise invalid(f"{param.code}:{modifier}={raw}: the type does not match")
            return Fragment(f"({a}.target_id = ? AND {a}.target_type = ?)", (ref_id, ref_type))
        if len(segments) != 1 or not value:
            raise invalid(f"{param.code}={raw}: not a reference (Type/id, id or a URL)")
        if modifier is not None:
            return Fragment(f"({a}.target_id = ? AND {a}.target_type = ?)", (value, modifier))
        return Fragment(f"{a}.target_id = ?", (value,))

    def _date_condition(self, low: str, high: str, raw: str, *, point: bool = False) -> Fragment:
        prefix, text = _prefix(raw)
        try:
            sl, sh = date_range(text)
        except DateTimeFormatError as exc:
            raise invalid(f"date search value {raw!r}: {exc}") from None
        arg = self.time_arg if point else (lambda v: v)
        if prefix == "eq":
            return Fragment(f"({low} >= ? AND {high} <= ?)", (arg(sl), arg(sh)))
        if prefix == "ne":
            return Fragment(f"({low} < ? OR {high} > ?)", (arg(sl), arg(sh)))
        if prefix == "gt":
            return Fragment(f"{high} > ?", (arg(sh),))
        if prefix == "lt":
            return Fragment(f"{low} < ?", (arg(sl),))
        # ge and le lead with a condition every match meets, so an index range can serve them
        if prefix == "ge":
            return Fragment(
                f"({high} >= ? AND ({high} > ? OR ({low} >= ? AND {high} <= ?)))",
                (arg(sl), arg(sh), arg(sl), arg(sh)),
            )
        if prefix == "le":
            return Fragment(
                f"({low} <= ? AND ({low} < ? OR ({low} >= ? AND {high} <= ?)))",
                (arg(sh), arg(sl), arg(sl), arg(sh)),
            )
        if prefix == "sa":
            return Fragment(f"{low} > ?", (arg(sh),))
        if prefix == "eb":
            return Fragment(f"{high} < ?", (arg(sl),))
        # ap: overlaps the value widened by 10% of its distance from now (at least its own span)
        distance = abs(to_micros(self.now) - sl)
        gap = max(distance // 10, sh - sl)
        return Fragment(f"({low} <= ? AND {high} >= ?)", (arg(sh + gap), arg(sl - gap)))

    def _quantity(self, raw: str, a: str) -> Fragment:
        parts = [unescape(p) for p in split_values(raw, "|")]
        if len(parts) not in (1, 3):
            raise invalid(f"a quantity is [prefix]number or [prefix]number|system|code: {raw!r}")
        prefix, number = _prefixed(parts[0])
        system, code = (parts[1], parts[2]) if len(parts) == 3 else ("", "")
        if system == UCUM and code:
            unit = canonical(1.0, code)  # the factor to base units, and the canonical unit
            if unit is not None:
                factor = Decimal(repr(unit[0]))
                condition = _number_condition(
                    f"{a}.canon_value", prefix, number * factor, raw, half=_half(number) * factor
                )
                return Fragment(f"({a}.canon_code = ? AND ", (unit[1],)) + condition + ")"
        fragments = [_number_condition(f"{a}.value", prefix, number, raw)]
        if system:
            fragments.append(Fragment(f"{a}.system = ?", (system,)))
        if code:
            fragments.append(Fragment(f"{a}.code = ?", (code,)))
        return Fragment("(") + join(fragments, " AND ") + ")"

    def _composite(self, leaf: Leaf, r: str) -> Predicate:
        param = leaf.param
        assert param is not None
        components = param.components
        alternatives: list[Fragment] = []
        aliases = [self.alias("c") for _ in components]
        for raw in leaf.values:
            parts = split_values(raw, "$")
            if len(parts) != len(components):
                raise invalid(
                    f"{param.code}={raw}: a composite value has {len(components)} parts joined by $"
                )
            conditions = []
            for component, name, part in zip(components, aliases, parts, strict=True):
                fake = _component_param(param, component.type)
                conditions.append(
                    Fragment(f"{name}.pid = ? AND ", (component.pid,))
                    + self._value(fake, None, part, name)
                )
            alternatives.append(Fragment("(") + join(conditions, " AND ") + ")")
        first = aliases[0]
        tables = [TABLE_OF_TYPE[c.type] for c in components]
        from_sql = f"{tables[0]} {first}" + "".join(
            f" JOIN {table} {name} ON {name}.rid = {first}.rid AND {name}.grp = {first}.grp"
            for table, name in zip(tables[1:], aliases[1:], strict=True)
        )
        where = Fragment("(") + join(alternatives, " OR ") + ")"
        check, drive = _correlated(r, from_sql, first, where)
        return Predicate(check, drive, rank=3)

    def _chain(self, chain: Chain, r: str) -> Predicate:
        a = self.alias("a")
        alternatives = [
            Fragment(f"({a}.target_type = ? AND {a}.target_id IN (", (target,))
            + self.id_set(target, inner)
            + "))"
            for target, inner in chain.inner.items()
        ]
        where = (
            Fragment(f"{a}.pid = ? AND (", (chain.param.pid,)) + join(alternatives, " OR ") + ")"
        )
        check, drive = _correlated(r, f"search_reference {a}", a, where)
        return Predicate(check, drive, rank=2)

    def _has(self, has: Has, r: str) -> Predicate:
        a = self.alias("a")
        referenced = (
            Fragment(
                f"(SELECT {a}.target_id FROM search_reference {a} WHERE {a}.pid = ?"
                f" AND {a}.target_type = ? AND {a}.rid IN (",
                (has.reference.pid, has.target_type),
            )
            + self.rid_set(has.source_type, has.inner)
            + "))"
        )
        check = Fragment(f"{r}.id IN ") + referenced
        drive = _by_id(r, (has.target_type,), "x.id IN " + referenced.sql, referenced.args)
        return Predicate(check, drive, rank=2)

    def _compartment(self, compartment: Compartment, r: str) -> Predicate:
        pids = tuple(p.pid for p in compartment.params)
        marks = ", ".join("?" * len(pids))
        a = self.alias("a")
        where_sql = f"{{a}}.pid IN ({marks}) AND {{a}}.target_id = ? AND {{a}}.target_type = ?"
        args = (*pids, compartment.owner_id, compartment.owner_type)

        def where(name: str) -> Fragment:
            return Fragment(where_sql.replace("{a}", name), args)

        check, drive = _correlated(r, f"search_reference {a}", a, where(a))
        return Predicate(check, drive, "search_reference", where("d"), rank=1)


_GROUP_FROM = 8  # token values from which codes of one system are matched with one IN


def _token_sets(leaf: Leaf) -> list[Fragment] | None:
    """Many ``system|code`` values as one ``code IN (...)`` per system (a value set
    expanded for ``:in``), so the SQL stays flat however many codes there are; and one code
    in several systems (a person's number as fødselsnummer or D-number) as one
    ``code = ? AND system IN (...)``, which SQLite looks up by index where it would scan
    for ``(code AND system) OR (code AND system)``."""
    if leaf.modifier not in (None, "not") or len(leaf.values) < 2:
        return None
    by_system: dict[str, list[str]] = {}
    for raw in leaf.values:
        parts = split_values(raw, "|")
        if len(parts) != 2 or not parts[0] or not parts[1]:
            return None
        by_system.setdefault(unescape(parts[0]), []).append(unescape(parts[1]))
    codes = {code for found in by_system.values() for code in found}
    if len(codes) == 1 and len(by_system) == len(leaf.values):
        marks = ", ".join("?" * len(by_system))
        return [Fragment(f"({{a}}.code = ? AND {{a}}.system IN ({marks}))",
                         (codes.pop(), *by_system))]  # fmt: skip
    if len(leaf.values) < _GROUP_FROM:
        return None
    return [
        Fragment(f"({{a}}.system = ? AND {{a}}.code IN ({', '.join('?' * len(codes))}))",
                 (system, *codes))
        for system, codes in by_system.items()
    ]  # fmt: skip


def _correlated(r: str, source: str, a: str, where: Fragment) -> tuple[Fragment, Fragment]:
    """Rows of ``source`` (alias ``a`` leads it) meeting ``where``, as the two forms of a
    predicate: ``EXISTS (...)`` for the row ``r``, and ``r.rid IN (...)``."""
    check = Fragment(f"EXISTS (SELECT 1 FROM {source} WHERE {a}.rid = {r}.rid AND ") + where + ")"
    drive = Fragment(f"{r}.rid IN (SELECT {a}.rid FROM {source} WHERE ") + where + ")"
    return check, drive


def _by_id(r: str, types: tuple[str, ...], condition: str, args: tuple) -> Fragment:
    """``r.rid IN (resources of types with condition on x.id)``: a driver that looks ids up
    through the (type, id) key, so no planner is tempted to scan the type instead."""
    if not types:
        return Fragment(condition.replace("x.id", f"{r}.id"), args)
    marks = ", ".join("?" * len(types))
    return Fragment(
        f"{r}.rid IN (SELECT x.rid FROM resource x WHERE x.type IN ({marks}) AND {condition})",
        (*types, *args),
    )


def _unchanged(predicate: Predicate) -> Predicate:
    return predicate


def _pinned(predicate: Predicate) -> Predicate:
    """The predicate with its correlated check steered to the ``(rid, pid)`` index.

    In ``EXISTS (... a.rid = r.rid AND a.pid = ? AND a.low < ?)`` SQLite may otherwise pick
    the ``(pid, low)`` index and scan every value; ``+a.pid`` keeps ``pid`` from leading an
    index there. Only the check's own alias is pinned, never those of nested subqueries.
    SQLite only: PostgreSQL plans by statistics, and ``+pid`` would hide the column from it.
    """
    pinned = _pin(predicate.check.sql)
    return replace(predicate, check=Fragment(pinned, predicate.check.args))


@functools.lru_cache(maxsize=4096)
def _pin(sql: str) -> str:
    found = re.search(r"WHERE (\w+)\.rid = ", sql)
    if found is None:
        return sql
    name = found.group(1)
    return re.sub(rf"(?<![\w.+]){name}\.pid\b", f"+{name}.pid", sql)


def _type_specific(param: SearchParam | None) -> bool:
    """Whether the parameter's index rows belong to one resource type only."""
    return param is not None and not param.key.startswith(("Resource.", "DomainResource."))


def _component_param(param: SearchParam, kind: str) -> SearchParam:
    return replace(param, type=kind)


def _rank(param: SearchParam, leaf: Leaf) -> int:
    if leaf.modifier in ("not", "missing"):
        return 9
    if param.type == "reference":
        return 1
    if param.type in ("token", "uri"):
        return 2 if leaf.modifier != "text" else 5
    if param.type == "string":
        return 3 if leaf.modifier == "exact" else 4
    return 6


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _uri_prefixes(uri: str) -> list[str]:
    """``http://a/b/c`` -> ``http://a/b/c``, ``http://a/b``, ``http://a`` (for :above)."""
    scheme, sep, rest = uri.partition("://")
    if not sep:
        return [uri]
    segments = rest.split("/")
    return [f"{scheme}://{'/'.join(segments[:n])}" for n in range(len(segments), 0, -1)]


def _prefix(raw: str) -> tuple[str, str]:
    head = raw[:2]
    if head in PREFIXES and len(raw) > 2 and not raw[2].isalpha():
        return head, raw[2:]
    if raw[:1].isalpha():
        raise invalid(f"{raw!r}: unknown prefix (use one of {', '.join(PREFIXES)})")
    return "eq", raw


def _prefixed(raw: str) -> tuple[str, Decimal]:
    prefix, text = _prefix(raw)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise invalid(f"{raw!r} is not a number") from None
    if not number.is_finite() or abs(number.adjusted()) > 300:
        raise invalid(f"{raw!r} is not a usable number")
    return prefix, number


def _half(number: Decimal) -> Decimal:
    """Half the last written digit: ``100`` -> 0.5, ``5.40`` -> 0.005."""
    return Decimal(5).scaleb(number.as_tuple().exponent - 1)


def _number_condition(
    column: str, prefix: str, number: Decimal, raw: str, half: Decimal | None = None
) -> Fragment:
    """Number semantics: ``eq``/``ne`` use the implicit precision of the value as written
    (``half``, when the number was converted from other units)."""
    if half is None:
        half = _half(number)
    value = float(number)
    low, high = float(number - half), float(number + half)
    if prefix == "eq":
        return Fragment(f"({column} >= ? AND {column} < ?)", (low, high))
    if prefix == "ne":
        return Fragment(f"({column} < ? OR {column} >= ?)", (low, high))
    if prefix in ("gt", "sa"):
        return Fragment(f"{column} > ?", (value,))
    if prefix in ("lt", "eb"):
        return Fragment(f"{column} < ?", (value,))
    if prefix == "ge":
        return Fragment(f"{column} >= ?", (value,))
    if prefix == "le":
        return Fragment(f"{column} <= ?", (value,))
    margin = abs(value) * 0.1 if value else float(half)  # ap: within 10%
    if not math.isfinite(margin):
        raise invalid(f"{raw!r} is not a usable number")
    return Fragment(f"({column} >= ? AND {column} <= ?)", (value - margin, value + margin))
