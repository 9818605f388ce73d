"""The search index tables as both backends write them (columns after ``rid, pid, grp``)."""

from __future__ import annotations

import functools

# table -> (column, PostgreSQL array type) of the values after rid, pid, grp
INDEX_TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "search_string": (("value", "text"), ("exact", "text")),
    "search_token": (("system", "text"), ("code", "text"), ("text", "text")),
    "search_reference": (("target_type", "text"), ("target_id", "text"), ("url", "text")),
    "search_date": (("low", "bigint"), ("high", "bigint")),
    "search_number": (("value", "float8"),),
    "search_quantity": (
        ("value", "float8"),
        ("system", "text"),
        ("code", "text"),
        ("canon_value", "float8"),
        ("canon_code", "text"),
    ),
    "search_uri": (("uri", "text"),),
}


def _columns(table: str) -> list[str]:
    return ["rid", "pid", "grp", *(name for name, _ in INDEX_TABLES[table])]


@functools.cache
def sqlite_insert(table: str) -> str:
    """INSERT of one row (rid first) for executemany."""
    columns = _columns(table)
    marks = ", ".join("?" * len(columns))
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"


SQLITE_DELETES = tuple(f"DELETE FROM {table} WHERE rid = ?" for table in INDEX_TABLES)


@functools.cache
def postgres_write(tables: tuple[str, ...], delete: bool) -> str:
    """One statement that (optionally) deletes the rows of ``$1`` rids and inserts new rows.

    Arguments: ``$1`` the rids to clear (bigint[]), then for each table in ``tables`` one
    array per column (rid, pid, grp, values...). Data-modifying CTEs all run, and the
    DELETEs do not see the rows the INSERTs add.
    """
    parts: list[str] = []
    n = 1
    if delete:
        parts.extend(
            f"d_{table} AS (DELETE FROM {table} WHERE rid = ANY($1::bigint[]))"
            for table in INDEX_TABLES
        )
    for table in tables:
        types = ["bigint", "bigint", "integer", *(kind for _, kind in INDEX_TABLES[table])]
        arrays = []
        for kind in types:
            n += 1
            arrays.append(f"${n}::{kind}[]")
        parts.append(
            f"i_{table} AS (INSERT INTO {table} ({', '.join(_columns(table))})"
            f" SELECT * FROM unnest({', '.join(arrays)}))"
        )
    if not parts:
        return "SELECT $1::bigint[]"
    return f"WITH {', '.join(parts)} SELECT 1 WHERE $1::bigint[] IS NOT NULL"


def postgres_arguments(
    rids: list[int], indexes: list[dict[str, list[tuple]]]
) -> tuple[tuple[str, ...], list[list]]:
    """The tables with rows, and per table its column arrays (for `postgres_write`)."""
    tables = tuple(t for t in INDEX_TABLES if any(index.get(t) for index in indexes))
    arguments: list[list] = []
    for table in tables:
        width = 3 + len(INDEX_TABLES[table])
        columns: list[list] = [[] for _ in range(width)]
        for rid, index in zip(rids, indexes, strict=True):
            for row in index.get(table, ()):
                columns[0].append(rid)
                for position, value in enumerate(row, start=1):
                    columns[position].append(value)
        arguments.extend(columns)
    return tables, arguments
