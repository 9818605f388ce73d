"""The history query, shared by both backends (they differ only in placeholder style)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from samhandling.platform.fhir.storage.base import HistoryQuery

HISTORY_COLUMNS = "h.seq, h.method, h.type, h.id, h.version, h.last_updated, h.content"


def history_sql(
    query: HistoryQuery, placeholder: Callable[[int], str], to_db_time: Callable[[Any], Any]
) -> tuple[str, list[Any]]:
    """SQL and arguments listing versions newest first, one more than asked (for paging)."""
    conditions: list[str] = []
    args: list[Any] = []

    def arg(value: Any) -> str:
        args.append(value)
        return placeholder(len(args))

    if query.type is not None:
        conditions.append(f"h.type = {arg(query.type)}")
    if query.id is not None:
        conditions.append(f"h.id = {arg(query.id)}")
    if query.since is not None:
        conditions.append(f"h.last_updated >= {arg(to_db_time(query.since))}")
    if query.at is not None:
        start, end = query.at
        conditions.append(f"h.last_updated < {arg(to_db_time(end))}")
        conditions.append(
            "NOT EXISTS (SELECT 1 FROM resource_history n WHERE n.type = h.type AND n.id = h.id"
            f" AND n.version > h.version AND n.last_updated <= {arg(to_db_time(start))})"
        )
    if query.before_seq is not None:
        conditions.append(f"h.seq < {arg(query.before_seq)}")
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    sql = (
        f"SELECT {HISTORY_COLUMNS} FROM resource_history h{where}"
        f" ORDER BY h.seq DESC LIMIT {arg(query.count + 1)}"
    )
    return sql, args
