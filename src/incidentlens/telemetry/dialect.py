"""Portable SQL over the canonical views, rewritten for ClickHouse with sqlglot.

Analysis writes DuckDB SQL over `logs`; `to_clickhouse` swaps the `logs` table for a ClickHouse subquery that
exposes the canonical columns, transpiles (read="duckdb", write="clickhouse") and fixes what sqlglot leaves in a
form ClickHouse rejects or reads differently: UTC timestamps, global regex replacement, time buckets, epoch,
exact quantiles and substrings counted in characters, not bytes.
"""

from __future__ import annotations

import re

import sqlglot
from sqlglot import exp
from sqlglot.errors import SqlglotError

from incidentlens.errors import InputError

_TIMESTAMP_TYPES = {exp.DataType.Type.TIMESTAMP, exp.DataType.Type.DATETIME, exp.DataType.Type.TIMESTAMPNTZ}
_INTERVAL_TEXT = re.compile(r"^\s*(\d+)\s*([a-z]+?)s?\s*$", re.IGNORECASE)
_CLICKHOUSE_UNITS = {
    "second": "Second", "minute": "Minute", "hour": "Hour", "day": "Day", "week": "Week", "month": "Month",
    "year": "Year",
}


def referenced_tables(sql: str) -> set[str]:
    """Names of the tables and views a query reads (CTE names excluded), lower-cased."""
    tree = _parse(sql)
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    return {table.name.lower() for table in tree.find_all(exp.Table) if table.name.lower() not in ctes}


def to_clickhouse(sql: str, views: dict[str, str]) -> str:
    """Rewrite DuckDB SQL for ClickHouse, replacing each view name in `views` by its ClickHouse subquery."""
    tree = _rewrite_bottom_up(_parse(sql))
    ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
    # The view becomes a placeholder table, swapped for its subquery text after generation: the subquery is
    # ClickHouse SQL already and must not go through a parse/generate round trip.
    for table in list(tree.find_all(exp.Table)):
        name = table.name.lower()
        if name in views and name not in ctes and not table.args.get("db"):
            table.replace(exp.alias_(exp.to_table(_placeholder(name)), table.alias_or_name, table=True))
    clickhouse_sql = tree.sql(dialect="clickhouse")
    for name, subquery in views.items():
        clickhouse_sql = clickhouse_sql.replace(_placeholder(name), f"({subquery})")
    return clickhouse_sql


def _rewrite_bottom_up(tree: exp.Expression) -> exp.Expression:
    """Apply `_clickhouse_node` children first, so nested calls (a replace inside a replace) are all rewritten."""
    for node in reversed(list(tree.walk())):
        rewritten = _clickhouse_node(node)
        if rewritten is not node:
            if node is tree:
                tree = rewritten
            else:
                node.replace(rewritten)
    return tree


def _placeholder(view: str) -> str:
    return f"__incidentlens_view_{view}__"


def _parse(sql: str) -> exp.Expression:
    try:
        return sqlglot.parse_one(sql, read="duckdb")
    except SqlglotError as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise InputError(f"query is not valid DuckDB SQL: {first_line}") from None


def _clickhouse_node(node: exp.Expression) -> exp.Expression:
    """One node's rewrite; anything not listed is left to sqlglot's own ClickHouse generator."""
    if isinstance(node, exp.Cast) and node.to.this in _TIMESTAMP_TYPES:
        return _call("toDateTime64", node.this, exp.Literal.number(6), exp.Literal.string("UTC"))
    if isinstance(node, exp.RegexpReplace):
        return _regexp_replace(node)
    if isinstance(node, exp.DateBin):
        return _call("toStartOfInterval", node.expression, _interval(node.this))
    if isinstance(node, exp.TimeToUnix):
        micros = _call("toUnixTimestamp64Micro", _call("toDateTime64", node.this, exp.Literal.number(6)))
        return exp.Div(this=_call("toFloat64", micros), expression=exp.Literal.number(1_000_000))
    if isinstance(node, exp.PercentileCont):
        return _exact_quantile(node.expression, node.this)
    if isinstance(node, exp.Median):
        return _exact_quantile(exp.Literal.number(0.5), node.this)
    if isinstance(node, exp.Substring):
        # ClickHouse's substring counts bytes: a cut inside a multi-byte character is not valid UTF-8
        return _call("substringUTF8", *(a for a in (node.this, node.args.get("start"), node.args.get("length")) if a))
    return node


def _call(name: str, *args: exp.Expression) -> exp.Expression:
    return exp.Anonymous(this=name, expressions=[a.copy() for a in args])


def _regexp_replace(node: exp.RegexpReplace) -> exp.Expression:
    """DuckDB replaces the first match unless the 'g' option is given; ClickHouse has a function for each."""
    modifiers = node.args.get("modifiers")
    global_replace = isinstance(modifiers, exp.Literal) and "g" in modifiers.this
    name = "replaceRegexpAll" if global_replace else "replaceRegexpOne"
    return _call(name, node.this, node.expression, node.args["replacement"])


def _interval(node: exp.Expression) -> exp.Expression:
    """DuckDB's INTERVAL '5 minutes' (or INTERVAL 5 MINUTE) as ClickHouse's toIntervalMinute(5)."""
    is_interval = isinstance(node, exp.Interval)
    text = f"{node.this.name} {node.unit.name if node.unit else ''}" if is_interval else node.name
    match = _INTERVAL_TEXT.match(text)
    unit = _CLICKHOUSE_UNITS.get(match.group(2).lower()) if match else None
    if not match or not unit:
        raise InputError(f"time bucket interval {node.sql('duckdb')!r}: expected a count and a unit, e.g. '5 minutes'")
    return _call(f"toInterval{unit}", exp.Literal.number(int(match.group(1))))


def _exact_quantile(level: exp.Expression, value: exp.Expression) -> exp.Expression:
    """quantile_cont interpolates linearly between order statistics, as ClickHouse's quantileExactInclusive."""
    return sqlglot.parse_one(
        f"quantileExactInclusive({level.sql('clickhouse')})({value.sql('clickhouse')})", read="clickhouse"
    )
