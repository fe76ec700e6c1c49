"""A read-only SQL sandbox over the canonical views, for models and for people.

Two independent walls stand between a query and harm:

1. **Parsing** (sqlglot): exactly one SELECT/WITH statement; every table it reads is a canonical view (or one of its
   own CTEs); no table functions, no file or settings functions, no DML/DDL anywhere in the tree.
2. **The engine**: the query runs in its own DuckDB database (the store's view definitions copied into a file that
   is re-opened read-only), with external access disabled except for the store's own input files, extension
   auto-loading off and the configuration locked, so even a query that slipped past the parser cannot write,
   attach, install, load, copy, or read any other file.

Each call gets its own cursor (tools run in threads), a row cap, and a timer that interrupts a query running past
the time limit.
"""

from __future__ import annotations

import re
import shutil
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp

from incidentlens.errors import InputError

DEFAULT_ROW_CAP = 200
DEFAULT_TIMEOUT_S = 5.0
CANONICAL_VIEWS = ("metrics", "logs", "spans", "events")

# Statement nodes that change something or reach outside the database; refused wherever they appear in the tree
# (a DELETE hidden in a CTE is still a DELETE).
_FORBIDDEN_NODES: tuple[type[exp.Expression], ...] = tuple(
    node
    for node in (
        getattr(exp, name, None)
        for name in (
            "Insert", "Update", "Delete", "Merge", "Create", "Drop", "Alter", "AlterTable", "Copy", "Attach",
            "Detach", "Install", "Pragma", "Set", "Use", "Command", "Describe", "Summarize", "Transaction",
            "Commit", "Rollback", "Export", "LoadData", "TruncateTable", "Grant", "Revoke", "Analyze",
        )
    )
    if isinstance(node, type)
)
_FILE_READER_NODES: tuple[type[exp.Expression], ...] = tuple(
    node for node in (getattr(exp, name, None) for name in ("ReadCSV", "ReadParquet")) if isinstance(node, type)
)
# Scalar functions that read files, the environment or the engine's own configuration.
_FORBIDDEN_FUNCTION = re.compile(
    r"^(read_\w*|glob|getenv|query|query_table|sniff_csv|parquet_\w*|duckdb_\w*|pragma_\w*|current_setting|"
    r"which_secret|load_\w*|install_\w*|\w*_scan|system|shell|enable_\w*|disable_\w*)$",
    re.IGNORECASE,
)


class SqlRefused(InputError):
    """The sandbox refused a query; the message is one line saying why."""


@dataclass(frozen=True)
class SandboxResult:
    """A query's result, capped: JSON-safe rows, and whether the cap cut any."""

    sql: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float
    row_cap: int = field(default=DEFAULT_ROW_CAP)

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"columns": self.columns, "rows": self.rows, "row_count": len(self.rows)}
        if self.truncated:
            data["truncated"] = f"only the first {self.row_cap} rows are shown"
        return data


def check_query(sql: str, known_tables: Iterable[str] = CANONICAL_VIEWS) -> exp.Expression:
    """Parse `sql` and return its tree if it is one read-only query over `known_tables`; else raise SqlRefused."""
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise SqlRefused("sql: empty query")
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SqlRefused(f"sql: cannot parse the query: {first_line}") from err
    if len(statements) != 1:
        raise SqlRefused(f"sql: exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if not isinstance(tree, exp.Query):
        raise SqlRefused(f"sql: only SELECT/WITH queries are allowed, not {_statement_name(tree)}")
    _refuse_forbidden_nodes(tree)
    _refuse_unknown_tables(tree, {name.lower() for name in known_tables})
    _refuse_forbidden_functions(tree)
    return tree


def _statement_name(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    return tree.key.upper()


def _cte_names(tree: exp.Expression) -> set[str]:
    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def _refuse_forbidden_nodes(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise SqlRefused(f"sql: {_statement_name(node)} is not allowed (read-only sandbox)")
        if isinstance(node, _FILE_READER_NODES):
            raise SqlRefused(f"sql: {node.key} is not allowed: the sandbox reads only the canonical views")


def _refuse_unknown_tables(tree: exp.Expression, known: set[str]) -> None:
    allowed = known | _cte_names(tree)
    for table in tree.find_all(exp.Table):
        if not isinstance(table.this, exp.Identifier):
            name = table.this.sql(dialect="duckdb") if table.this is not None else "?"
            raise SqlRefused(f"sql: table function {name} is not allowed: query the views {', '.join(sorted(known))}")
        if table.args.get("db") or table.args.get("catalog"):
            raise SqlRefused(f"sql: qualified table {table.sql(dialect='duckdb')} is not allowed")
        if table.name.lower() not in allowed:
            raise SqlRefused(f"sql: unknown table {table.name!r}: query the views {', '.join(sorted(known))}")


def _refuse_forbidden_functions(tree: exp.Expression) -> None:
    for func in tree.find_all(exp.Func):
        name = func.name if isinstance(func, exp.Anonymous) else func.sql_name()
        if _FORBIDDEN_FUNCTION.match(name or ""):
            raise SqlRefused(f"sql: function {name.lower()}() is not allowed in the sandbox")


class SqlSandbox:
    """Runs checked read-only queries over a copy of a store's views, locked down; see the module docstring.

    `store` needs `con` (the DuckDB connection owning the views) and `paths` (the input files the views read).
    """

    def __init__(self, store: Any, *, row_cap: int = DEFAULT_ROW_CAP, timeout_s: float = DEFAULT_TIMEOUT_S) -> None:
        self.row_cap = row_cap
        self.timeout_s = timeout_s
        self._dir = Path(tempfile.mkdtemp(prefix="incidentlens-sql-"))
        self._backend = getattr(store, "logs_backend", None)
        try:
            copied = _copy_catalog(store.con, self._dir / "sandbox.duckdb")
            self._con = _open_locked(self._dir / "sandbox.duckdb", _input_paths(store))
            remote = set(getattr(self._backend, "views", ()) or ())
            self.tables = [view for view in CANONICAL_VIEWS if view in copied or view in remote]
        except BaseException:
            shutil.rmtree(self._dir, ignore_errors=True)
            raise

    def run(self, sql: str) -> SandboxResult:
        """Check and run one query; raise SqlRefused (one line) for anything not allowed or failing."""
        tree = check_query(sql, self.tables)
        remote = set(getattr(self._backend, "views", ()) or ())
        read = {t.name.lower() for t in tree.find_all(exp.Table)} - _cte_names(tree)
        if remote and read and read <= remote:
            return self._run_remote(sql)
        if read & remote:
            names = ", ".join(sorted(read & remote))
            raise SqlRefused(f"sql: {names} live in a remote store: query them on their own, without local views")
        cursor = self._con.cursor()
        timer = threading.Timer(self.timeout_s, cursor.interrupt)
        started = time.perf_counter()
        timer.start()
        try:
            cursor.execute(sql)
            rows = cursor.fetchmany(self.row_cap + 1)
            columns = [d[0] for d in cursor.description or []]
        except duckdb.InterruptException as err:
            raise SqlRefused(f"sql: query interrupted after the {self.timeout_s:g} s time limit") from err
        except duckdb.Error as err:
            raise SqlRefused(f"sql: {_one_line(err)}") from err
        finally:
            timer.cancel()
            cursor.close()
        elapsed_ms = (time.perf_counter() - started) * 1000
        return SandboxResult(
            sql=sql.strip(),
            columns=columns,
            rows=[[_json_safe(v) for v in row] for row in rows[: self.row_cap]],
            truncated=len(rows) > self.row_cap,
            elapsed_ms=round(elapsed_ms, 1),
            row_cap=self.row_cap,
        )

    def _run_remote(self, sql: str) -> SandboxResult:
        """Logs kept in a remote backend (ClickHouse): the checked query is pushed down, capped by an outer LIMIT."""
        started = time.perf_counter()
        try:
            table = self._backend.fetch(f"SELECT * FROM ({sql.strip().rstrip(';')}) AS q LIMIT {self.row_cap + 1}")
        except Exception as err:
            raise SqlRefused(f"sql: {_one_line(err)}") from err
        rows = [list(row.values()) for row in table.to_pylist()]
        return SandboxResult(
            sql=sql.strip(),
            columns=table.column_names,
            rows=[[_json_safe(v) for v in row] for row in rows[: self.row_cap]],
            truncated=len(rows) > self.row_cap,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1),
            row_cap=self.row_cap,
        )

    def close(self) -> None:
        self._con.close()
        shutil.rmtree(self._dir, ignore_errors=True)

    def __enter__(self) -> SqlSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _input_paths(store: Any) -> list[Path]:
    paths = getattr(store, "paths", None) or []
    values = paths.values() if isinstance(paths, dict) else paths
    found: list[Path] = []
    for value in values:
        items = value if isinstance(value, list | tuple) else [value]
        found.extend(Path(str(item)) for item in items if item is not None and "://" not in str(item))
    return found


def _copy_catalog(source: duckdb.DuckDBPyConnection, target: Path) -> list[str]:
    """Copy the store's tables (data) and views (definitions) into a new database file; return their names."""
    cursor = source.cursor()
    try:
        tables = cursor.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT internal ORDER BY table_oid"
        ).fetchall()
        views = cursor.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY view_oid"
        ).fetchall()
        sandbox = duckdb.connect(str(target))
        try:
            for (name,) in tables:
                sandbox.register("_source_table", cursor.sql(f'SELECT * FROM "{name}"').to_arrow_table())
                sandbox.execute(f'CREATE TABLE "{name}" AS SELECT * FROM _source_table')
                sandbox.unregister("_source_table")
            for _name, view_sql in views:
                sandbox.execute(re.sub(r"^\s*CREATE\s+(TEMP|TEMPORARY)\s+VIEW", "CREATE VIEW", view_sql, flags=re.I))
        finally:
            sandbox.close()
    finally:
        cursor.close()
    return [name for (name,) in tables] + [name for name, _ in views]


def _open_locked(database: Path, input_paths: list[Path]) -> duckdb.DuckDBPyConnection:
    """Open the sandbox database read-only, then fence it in: order matters, the lock comes last."""
    con = duckdb.connect(
        str(database),
        read_only=True,
        config={"autoinstall_known_extensions": False, "autoload_known_extensions": False},
    )
    files = sorted({str(p) for p in input_paths} | {str(p.resolve()) for p in input_paths if not p.is_dir()})
    directories = sorted({str(p.resolve()) + "/" for p in input_paths if p.is_dir()})
    if files:
        con.execute("SET allowed_paths = ?", [files])
    if directories:
        con.execute("SET allowed_directories = ?", [directories])
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    return con


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def _json_safe(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, date | dtime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, list | tuple):
        return [_json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _json_safe(v) for k, v in value.items()}
    return value
