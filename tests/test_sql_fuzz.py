"""A fuzz test of the sandbox's checks: generated queries that hide forbidden sources behind CTE names, nested scopes,
comments and quoting must never reach a table other than the canonical views, a file, or the engine's settings.

The sandbox database here holds a non-canonical table (`secrets`) and the store lists a file that is no view
(`canary.csv`) among its inputs, so the engine itself would let both be read: only the checks stand in the way.
Whatever runs must not show their canary text or a setting's name.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pytest

from incidentlens.analysis.sql_sandbox import SqlRefused, SqlSandbox, check_query

CANARIES = ("CANARY-TABLE", "CANARY-FILE", "allowed_paths", "memory_limit", "enable_external_access")

# (source text, how it may be written): what a query must never read
FORBIDDEN = [
    "secrets", '"secrets"', '"SECRETS"', "Secrets", "main.secrets", "sandbox.main.secrets", "sandbox.secrets",
    "'{canary}'", '"{canary}"', "read_csv('{canary}')", "read_csv_auto(['{canary}'])", "pg_settings",
    "pg_catalog.pg_settings", "duckdb_settings()", "sqlite_master", "information_schema.tables", "duckdb_views()",
    "query_table('secrets')", "query('SELECT * FROM secrets')", "glob('{folder}/*')", "(FROM secrets)",
    "(TABLE secrets)", "(DESCRIBE secrets)", "(SUMMARIZE secrets)", "(SHOW TABLES)",
]
FORBIDDEN_EXPRESSIONS = [
    "current_setting('allowed_paths')", "getvariable('x')", "(SELECT max(x) FROM secrets)",
    "(SELECT string_agg(name, ',') FROM pg_settings)", "read_text('{canary}')", "getenv('HOME')",
    "(SELECT count(*) FROM '{canary}')", "json_execute_serialized_sql(json_serialize_sql('SELECT * FROM secrets'))",
    "query_table('secrets')", "pg_catalog.current_setting('memory_limit')",
]
COMMENTS = ["", " ", "/* secrets */ ", "-- pg_settings\n", "/* ) x, secrets -- */ ", "/**/", "\n"]


@dataclass
class CanaryStore:
    con: duckdb.DuckDBPyConnection
    paths: list[Path]


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> CanaryStore:
    folder = tmp_path_factory.mktemp("fuzz")
    logs = folder / "logs.csv"
    logs.write_text("ts,service,level,message\n2024-05-01T10:00:00Z,api,ERROR,timeout\n")
    canary = folder / "canary.csv"
    canary.write_text("x\nCANARY-FILE\n")
    con = duckdb.connect()
    con.execute(f"CREATE VIEW logs AS SELECT ts::TIMESTAMP AS ts, service, level, message FROM read_csv('{logs}')")
    con.execute("CREATE TABLE secrets AS SELECT 'CANARY-TABLE' AS x")
    return CanaryStore(con=con, paths=[logs, canary])


@pytest.fixture(scope="module")
def sandbox(store: CanaryStore):
    with SqlSandbox(store, timeout_s=5.0) as box:
        yield box


def _fill(text: str, store: CanaryStore) -> str:
    return text.format(canary=store.paths[1], folder=store.paths[1].parent)


def _query(rng: random.Random, store: CanaryStore) -> str:
    """One generated query: a forbidden source or expression placed in one of SQL's scopes, behind comments."""
    source = _fill(rng.choice(FORBIDDEN), store)
    expression = _fill(rng.choice(FORBIDDEN_EXPRESSIONS), store)
    name = rng.choice(["secrets", "pg_settings", "sqlite_master", "x", '"secrets"', "Secrets", "duckdb_settings"])
    c = lambda: rng.choice(COMMENTS)  # noqa: E731
    shapes = [
        f"SELECT * FROM {c()}{source}",
        f"SELECT * FROM (WITH {name} AS (SELECT 1 AS x) SELECT 1) y, {c()}{source}",
        f"SELECT * FROM (WITH {name} AS (SELECT 1 AS x) SELECT * FROM {name}) y, {name}",
        f"WITH a AS (SELECT 1) SELECT * FROM logs WHERE EXISTS (WITH {name} AS (SELECT 1) SELECT 1) "
        f"AND message IN (SELECT * FROM {c()}{source})",
        f"SELECT (WITH {name} AS (SELECT 2 AS x) SELECT max(x) FROM {name}), * FROM {source}",
        f"WITH {name} AS (SELECT * FROM {c()}{source}) SELECT * FROM {name}",
        f"WITH RECURSIVE {name}(x) AS (SELECT 1 UNION ALL SELECT x FROM {source}) SELECT * FROM {name} LIMIT 1",
        f"WITH t AS (SELECT * FROM logs) SELECT * FROM t UNION ALL SELECT * FROM {source}",
        f"(WITH {name} AS (SELECT 1) SELECT * FROM {name}) UNION ALL SELECT * FROM {c()}{name}",
        f"SELECT * FROM logs, LATERAL (SELECT * FROM {source}) l",
        f"SELECT {c()}{expression} AS v FROM logs",
        f"SELECT * FROM logs WHERE message = {expression}",
        f"WITH {name} AS (SELECT 1 AS x) SELECT {expression} FROM {name}",
        f"SELECT * FROM logs {c()}; SELECT * FROM {source}",
        f"SELECT * FROM logs -- x\n, {source}",
        f"SELECT * FROM logs /* ; */ JOIN {source} ON true",
        f"WITH a AS (WITH {name} AS (SELECT 1) SELECT 1), b AS (SELECT * FROM {name}) SELECT * FROM b",
        f"WITH a AS (SELECT * FROM b), b AS (SELECT * FROM {source}) SELECT * FROM a",
    ]
    return rng.choice(shapes)


def _must_not_leak(sandbox: SqlSandbox, sql: str) -> bool:
    """True if the sandbox refused `sql`; if it ran, its result must show no canary. Returns whether it refused."""
    try:
        result = sandbox.run(sql)
    except SqlRefused as refused:
        assert "\n" not in str(refused)
        return True
    text = repr(result.rows) + repr(result.columns)
    assert not any(canary in text for canary in CANARIES), (sql, text)
    return False


def test_generated_queries_never_reach_a_forbidden_source(sandbox: SqlSandbox, store: CanaryStore) -> None:
    rng = random.Random(20261203)
    queries = {_query(rng, store) for _ in range(600)}
    refused = sum(_must_not_leak(sandbox, sql) for sql in sorted(queries))
    assert refused >= 0.9 * len(queries)  # the rest are harmless shapes that read only CTEs and views


@pytest.mark.parametrize("sql", [
    "SELECT name, setting FROM (WITH pg_settings AS (SELECT 1) SELECT 1) x, pg_settings "
    "WHERE name IN ('allowed_paths','temp_directory','memory_limit')",
    "SELECT * FROM (WITH sqlite_master AS (SELECT 1) SELECT 1) x, sqlite_master",
    "SELECT * FROM (WITH duckdb_views AS (SELECT 1) SELECT 1) x, duckdb_views",
    "SELECT * FROM (WITH secrets AS (SELECT 1) SELECT 1) x, secrets",
])
def test_a_cte_in_an_inner_scope_is_no_table_outside_it(sandbox: SqlSandbox, sql: str) -> None:
    with pytest.raises(SqlRefused, match="unknown table"):
        sandbox.run(sql)


def test_ctes_stay_usable_where_sql_makes_them_visible(sandbox: SqlSandbox) -> None:
    assert sandbox.run("WITH secrets AS (SELECT 'cte' AS x) SELECT (SELECT max(x) FROM secrets) AS v").rows == [
        ["cte"]]
    assert sandbox.run("WITH a AS (SELECT 1 AS n), b AS (SELECT n + 1 AS n FROM a) SELECT n FROM b").rows == [[2]]
    assert sandbox.run("WITH RECURSIVE t(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM t WHERE n < 3) "
                       "SELECT count(*) FROM t").rows == [[3]]
    assert sandbox.run("SELECT count(*) FROM logs WHERE level IN (WITH e AS (SELECT 'ERROR' AS l) "
                       "SELECT l FROM e)").rows == [[1]]
    assert check_query("WITH w AS (SELECT * FROM metrics) SELECT * FROM (SELECT * FROM w) q").key == "select"
