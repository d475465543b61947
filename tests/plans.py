"""What an executed plan read, for the tests that prove PostgreSQL answers by index probes and
ranges (``EXPLAIN (ANALYZE, FORMAT JSON)``), not by a plan's shape alone."""

from __future__ import annotations

import re
from typing import Any

from psycopg import sql
from sqlalchemy import ClauseElement, Executable, text
from sqlalchemy.ext.compiler import compiles

from webhookapp.infra.database import KEYED_SETTINGS
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


def walk_plan(plan: dict[str, Any]) -> list[dict[str, Any]]:
    """Every node of an executed plan, each with ``read``: the rows it produced and those its
    filters and join filters dropped, over all its loops."""
    found: list[dict[str, Any]] = []

    def walk(node: dict[str, Any]) -> None:
        per_loop = node["Actual Rows"] + node.get("Rows Removed by Filter", 0)
        per_loop += node.get("Rows Removed by Join Filter", 0) + node.get("Rows Removed by Index Recheck", 0)
        found.append({**node, "read": per_loop * node["Actual Loops"]})
        for child in node.get("Plans", ()):
            walk(child)

    walk(plan)
    return found


def keyed_nodes(driver_sql: str, values: dict[str, Any]) -> list[dict[str, Any]]:
    """:func:`walk_plan` of ``driver_sql`` (psycopg's ``%(name)s`` placeholders) as the
    :data:`.GENERIC_PLANS` connections run it: prepared, with their settings
    (:data:`.database.KEYED_SETTINGS`), so with the generic plan, which knows no parameter's
    value. The statement's writes are rolled back."""
    names: list[str] = []

    def placeholder(match: re.Match[str]) -> str:
        if match.group(1) not in names:
            names.append(match.group(1))
        return f"${names.index(match.group(1)) + 1}"

    body = re.sub(r"%\((\w+)\)s", placeholder, driver_sql)
    with db.engine.connect() as connection:  # one connection: a prepared statement is the session's
        driver = connection.connection.driver_connection
        arguments = sql.SQL(", ").join(sql.Literal(values[name]) for name in names).as_string(driver)
        arguments = arguments.replace("%", "%%")  # a literal's, not a placeholder (a LIKE pattern)
        for name, value in KEYED_SETTINGS.items():
            connection.exec_driver_sql(f"SET LOCAL {name} = {value}")
        connection.exec_driver_sql(f"PREPARE keyed_statement AS {body}")
        explained = connection.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE keyed_statement({arguments})")
        plan = explained.scalar()[0]["Plan"]
        connection.rollback()  # the statement's writes, the settings
        connection.exec_driver_sql("DEALLOCATE keyed_statement")
        connection.rollback()
    return walk_plan(plan)
