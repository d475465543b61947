"""What an executed plan read, for the tests that prove PostgreSQL answers by index probes and
ranges (``EXPLAIN (ANALYZE, FORMAT JSON)``), not by a plan's shape alone."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ClauseElement, Executable, text
from sqlalchemy.ext.compiler import compiles

from webhookapp.infra.extensions import db


class _Analyze(Executable, ClauseElement):
    """``EXPLAIN (ANALYZE, FORMAT JSON)`` of a statement: run it, and say what each node read."""

    inherit_cache = False

    def __init__(self, statement: Any):
        self.statement = statement


@compiles(_Analyze, "postgresql")
def _analyze_postgresql(element: _Analyze, compiler: Any, **kw: Any) -> str:
    return "EXPLAIN (ANALYZE, FORMAT JSON) " + compiler.process(element.statement, **kw)


def scans(statement: Any) -> list[dict[str, Any]]:
    """The executed plan's scans of tables and indexes, each with ``read``: the rows it read,
    those its filters then dropped included, over all its loops."""
    found: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        if "Relation Name" in node or "Index Name" in node:
            per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
            per_loop += node.get("Rows Removed by Index Recheck", 0)
            found.append({**node, "read": per_loop * node["Actual Loops"]})
        for child in node.get("Plans", ()):
            walk(child)

    walk(db.session.execute(_Analyze(statement)).scalar()[0]["Plan"])
    return found


def analyze(table: str) -> None:
    with db.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        connection.execute(text(f"VACUUM ANALYZE {table}"))  # as autovacuum would
