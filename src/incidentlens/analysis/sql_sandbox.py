"""A read-only SQL sandbox over the canonical views, for models and for people.

Three walls stand between a query and harm, and a budget bounds what a query may cost:

1. **sqlglot, by scope**: exactly one SELECT/WITH query; every table it reads resolves, by SQL's own scope rules, to
   a canonical view or to a CTE visible where it is read (a CTE defined inside a subquery is no table outside it);
   no qualified names, no table functions but `range`/`generate_series`/`unnest`, no DML/DDL anywhere in the tree.
   What runs is sqlglot's own rendering of the checked tree (no comments, canonical quoting), so no reading of the
   text can differ between the check and the engine.
2. **DuckDB's own parser** reads that rendering (`json_serialize_sql`): every function it would call is on an
   allow-list (`ALLOWED_FUNCTIONS`), every table it would read is a canonical view or one of the query's CTEs.
3. **The engine**: the query runs in a worker process on its own DuckDB database (the canonical views and the views
   and tables they read, copied into a file re-opened read-only), with external access disabled except for the
   store's input files, extension auto-loading off and the configuration locked: it cannot write, attach, install,
   load, copy, or read any other file.

The budget (`Budget`): DuckDB's `memory_limit`, `max_temp_directory_size` and `threads` in the worker; a time limit
counted from the moment the query is handed over, so it covers parsing as well as running: DuckDB is interrupted
at the limit, and a worker that has not answered a moment later (one long string operation, a parser busy with a
megabyte of `1+1+...`) is killed, as is one whose memory outgrows the budget; the result is capped in rows and in
bytes. Every refusal is one line saying which wall or budget stopped the query.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import math
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import weakref
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb
import sqlglot
from sqlglot import exp
from sqlglot.optimizer.scope import traverse_scope

from incidentlens.analysis.periods import sql_str
from incidentlens.analysis.words import counted
from incidentlens.errors import InputError

DEFAULT_ROW_CAP = 200
DEFAULT_TIMEOUT_S = 5.0
CANONICAL_VIEWS = ("metrics", "logs", "spans", "events", "calls")
#: a query longer than this is refused before it is parsed
MAX_QUERY_CHARS = 100_000
#: how long a worker may take to answer after DuckDB was interrupted at the time limit, before it is killed
KILL_GRACE_S = 1.5
#: what the worker process itself (Python, DuckDB, the catalog) may use beyond DuckDB's memory_limit
WORKER_OVERHEAD_MB = 512

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
#: table functions a query may read from: they make rows out of their arguments, nothing else
TABLE_FUNCTIONS = frozenset({"range", "generate_series", "unnest"})

# The functions a query may call, by the name DuckDB's parser gives them: aggregates, window functions, and scalar
# functions over numbers, text, times, lists, structs, maps and JSON values. Nothing that reads a file, a setting,
# a variable, the catalog or the environment, sleeps, logs, or runs other SQL. Operators (`+`, `||`, `~~`, ...)
# are allowed by their form.
_ALLOWED_FUNCTION_NAMES = """
    any_value approx_count_distinct approx_quantile approx_top_k arbitrary arg_max arg_max_null arg_min
    arg_min_null argmax argmin array_agg avg bit_and bit_or bit_xor bool_and bool_or corr count count_if count_star
    countif covar_pop covar_samp entropy favg first fsum group_concat histogram histogram_exact kahan_sum kurtosis
    kurtosis_pop last list listagg mad max max_by mean median min min_by mode product quantile quantile_cont
    quantile_disc regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx regr_sxy regr_syy
    reservoir_quantile sem skewness stddev stddev_pop stddev_samp string_agg sum sumkahan var_pop var_samp variance
    weighted_avg wavg geomean geometric_mean
    cume_dist dense_rank first_value lag last_value lead nth_value ntile percent_rank rank rank_dense row_number
    abs acos acosh asin asinh atan atan2 atanh cbrt ceil ceiling cos cosh cot degrees divide even exp factorial
    floor gamma gcd greatest greatest_common_divisor isfinite isinf isnan lcm least least_common_multiple lgamma
    ln log log10 log2 mod multiply add subtract nextafter pi pow power radians round round_even roundbankers sign
    signbit sin sinh sqrt tan tanh trunc xor bit_count fdiv fmod
    ascii bar base64 bit_length chr concat concat_ws contains damerau_levenshtein ends_with format format_bytes
    formatreadabledecimalsize formatreadablesize from_base64 hamming hash hex ilike_escape instr jaccard
    jaro_similarity jaro_winkler_similarity lcase left left_grapheme len length length_grapheme levenshtein
    like_escape lower lpad ltrim md5 md5_number mismatches nfc_normalize not_ilike_escape not_like_escape
    octet_length ord position prefix printf regexp_escape regexp_extract regexp_extract_all regexp_full_match
    regexp_matches regexp_replace regexp_split_to_array repeat replace reverse right right_grapheme rpad rtrim
    sha1 sha256 split split_part starts_with str_split str_split_regex strip_accents string_split
    string_split_regex string_to_array strlen strpos substr substring substring_grapheme suffix to_base64 to_hex
    translate trim ucase unhex unicode upper url_decode url_encode array_to_string
    age century current_date current_localtime current_localtimestamp date_add date_diff date_part date_sub
    date_trunc datediff datepart datesub datetrunc day dayname dayofmonth dayofweek dayofyear days_in_month decade
    epoch epoch_ms epoch_ns epoch_us era get_current_time get_current_timestamp hour isodow isoyear julian last_day
    make_date make_time make_timestamp make_timestamp_ms make_timestamp_ns make_timestamptz microsecond millennium
    millisecond minute month monthname nanosecond normalized_interval now quarter second strftime strptime
    time_bucket timezone timezone_hour timezone_minute to_centuries to_days to_decades to_hours to_microseconds
    to_millennia to_milliseconds to_minutes to_months to_quarters to_seconds to_timestamp to_weeks to_years today
    transaction_timestamp try_strptime week weekday weekofyear year yearweek ago
    array_aggr array_aggregate array_append array_apply array_cat array_concat array_contains array_distinct
    array_extract array_filter array_grade_up array_has array_has_all array_has_any array_indexof array_intersect
    array_length array_pop_back array_pop_front array_position array_prepend array_push_back array_push_front
    array_reduce array_resize array_reverse array_reverse_sort array_select array_slice array_sort array_transform
    array_unique array_value array_where array_zip cardinality flatten generate_series generate_subscripts
    list_aggr list_aggregate list_any_value list_append list_apply list_approx_count_distinct list_avg list_cat
    list_concat list_contains list_count list_distinct list_element list_entropy list_extract list_filter
    list_first list_grade_up list_has list_has_all list_has_any list_histogram list_indexof list_intersect
    list_kurtosis list_last list_mad list_max list_median list_min list_mode list_pack list_position list_prepend
    list_product list_reduce list_resize list_reverse list_reverse_sort list_select list_sem list_skewness
    list_slice list_sort list_stddev_pop list_stddev_samp list_string_agg list_sum list_transform list_unique
    list_value list_var_pop list_var_samp list_where list_zip range unnest apply filter reduce
    map map_concat map_contains map_contains_entry map_contains_value map_entries map_extract map_extract_value
    map_from_entries map_keys map_values row struct_concat struct_contains struct_extract struct_extract_at
    struct_has struct_indexof struct_insert struct_keys struct_pack struct_position struct_update struct_values
    json json_array json_array_length json_contains json_exists json_extract json_extract_path
    json_extract_path_text json_extract_string json_keys json_merge_patch json_object json_quote json_structure
    json_type json_valid json_value to_json array_to_json row_to_json json_group_array json_group_object
    coalesce if ifnull nullif typeof alias
"""
ALLOWED_FUNCTIONS = frozenset(_ALLOWED_FUNCTION_NAMES.split())
_OPERATOR = re.compile(r"[^A-Za-z0-9_]+")

logging.getLogger("sqlglot").setLevel(logging.ERROR)  # its parser's "falling back to Command" is not the user's


class SqlRefused(InputError):
    """The sandbox refused a query; the message is one line saying why."""


@dataclass(frozen=True)
class Budget:
    """What one query may cost. Validated on creation: a limit of 0, a negative one, NaN or infinity is refused."""

    timeout_s: float = DEFAULT_TIMEOUT_S
    row_cap: int = DEFAULT_ROW_CAP
    result_bytes: int = 1_000_000
    memory_mb: int = 512
    temp_disk_mb: int = 1024
    threads: int = 2

    def __post_init__(self) -> None:
        _check_number("--timeout", self.timeout_s, 0.1, 3600, "seconds")
        _check_number("--max-rows", self.row_cap, 1, 100_000, "rows", integer=True)
        _check_number("result budget", self.result_bytes, 1_000, 100_000_000, "bytes", integer=True)
        _check_number("--memory-mb", self.memory_mb, 64, 16_384, "MB", integer=True)
        _check_number("temp disk budget", self.temp_disk_mb, 0, 1_000_000, "MB", integer=True)
        _check_number("threads", self.threads, 1, 64, "threads", integer=True)


def _check_number(name: str, value: object, low: float, high: float, unit: str, integer: bool = False) -> None:
    ok = isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or not low <= value <= high:
        kind = "a whole number" if integer else "a number"
        raise InputError(f"{name} {value}: must be {kind} from {low:g} to {high:g} {unit}")


@dataclass(frozen=True)
class SandboxResult:
    """A query's result, capped: JSON-safe rows, and whether (and by which cap) any were cut."""

    sql: str
    columns: list[str]
    rows: list[list[Any]]
    truncated: bool
    elapsed_ms: float
    row_cap: int = field(default=DEFAULT_ROW_CAP)
    cut_by: str | None = None  # "rows" or "bytes"
    result_bytes: int | None = None

    def to_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"columns": self.columns, "rows": self.rows, "row_count": len(self.rows)}
        if self.truncated:
            data["truncated"] = self.cut_note()
        return data

    def cut_note(self) -> str:
        shown = len(self.rows) if self.cut_by == "bytes" else self.row_cap
        said = f"only the first {counted(shown, 'row')} {'is' if shown == 1 else 'are'} shown"
        return f"{said}: the result budget is {_size(self.result_bytes)}" if self.cut_by == "bytes" else said


# --- wall 1: sqlglot, by scope -----------------------------------------------------------------------------------

def check_query(sql: str, known_tables: Iterable[str] = CANONICAL_VIEWS) -> exp.Expression:
    """Parse `sql` and return its tree if it is one read-only query over `known_tables`; else raise SqlRefused."""
    text = check_length(sql)
    try:
        return _check_tree(text, {name.lower() for name in known_tables})
    except RecursionError:
        raise SqlRefused("sql: the query is nested too deeply to check") from None


def check_length(sql: str) -> str:
    """`sql` without its trailing semicolon, if it is a query of sensible length; else SqlRefused."""
    if not isinstance(sql, str):
        raise SqlRefused("sql: the query must be text")
    text = sql.strip().rstrip(";").strip()
    if not text:
        raise SqlRefused("sql: empty query")
    if len(text) > MAX_QUERY_CHARS:
        raise SqlRefused(f"sql: the query is {len(text):,} characters, over the {MAX_QUERY_CHARS:,}-character budget")
    return text


def _check_tree(text: str, known: set[str]) -> exp.Expression:
    try:
        statements = [s for s in sqlglot.parse(text, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as err:
        first_line = str(err).splitlines()[0] if str(err) else type(err).__name__
        raise SqlRefused(f"sql: cannot parse the query: {first_line}") from None
    if len(statements) != 1:
        raise SqlRefused(f"sql: exactly one statement is allowed, got {len(statements)}")
    tree = statements[0]
    if isinstance(tree, exp.Condition):
        # a lone word or expression (`SELEC`, `logs`, `1+1`) parses as a column or a sum, not a statement
        raise SqlRefused(f"sql: {text[:40]!r} is no query: start it with SELECT, WITH or FROM")
    if not isinstance(tree, exp.Query):
        raise SqlRefused(f"sql: only SELECT/WITH queries are allowed, not {_statement_name(tree)}")
    _refuse_forbidden_nodes(tree)
    _refuse_unknown_tables(tree, known)
    return tree


def canonical_sql(tree: exp.Expression) -> str:
    """The checked tree as DuckDB SQL, without comments: the only text the engine ever sees."""
    try:
        return tree.sql(dialect="duckdb", comments=False)
    except RecursionError:
        raise SqlRefused("sql: the query is nested too deeply to check") from None


def _statement_name(tree: exp.Expression) -> str:
    if isinstance(tree, exp.Command):
        return str(tree.this).upper()
    return tree.key.upper()


def _refuse_forbidden_nodes(tree: exp.Expression) -> None:
    for node in tree.walk():
        if isinstance(node, _FORBIDDEN_NODES):
            raise SqlRefused(f"sql: {_statement_name(node)} is not allowed (read-only sandbox)")


def cte_references(tree: exp.Expression) -> set[int]:
    """The ids of the table nodes that name a CTE visible where they stand, by sqlglot's scope analysis.

    A name counts as a CTE only in the scopes SQL makes it visible in: the query that defines it, the queries nested
    in that one, and (for WITH RECURSIVE) its own body. A node seen from several scopes must be a CTE in all."""
    verdicts: dict[int, bool] = {}
    for scope in traverse_scope(tree):
        visible = {name.lower() for name in scope.cte_sources}
        for table in scope.tables:
            is_cte = isinstance(table.this, exp.Identifier) and not _qualified(table) and table.name.lower() in visible
            verdicts[id(table)] = verdicts.get(id(table), True) and is_cte
    return {node for node, is_cte in verdicts.items() if is_cte}


def _refuse_unknown_tables(tree: exp.Expression, known: set[str]) -> None:
    ctes = cte_references(tree)
    views = ", ".join(sorted(known))
    for table in tree.find_all(exp.Table):
        if id(table) in ctes:
            continue
        if not isinstance(table.this, exp.Identifier):
            name = table.this.sql(dialect="duckdb") if table.this is not None else "?"
            function = _function_name(table.this)
            if function in TABLE_FUNCTIONS and not _qualified(table):
                continue
            raise SqlRefused(f"sql: table function {name} is not allowed: query the views {views}")
        if _qualified(table):
            raise SqlRefused(f"sql: qualified table {table.sql(dialect='duckdb')} is not allowed")
        if table.name.lower() not in known:
            raise SqlRefused(f"sql: unknown table {table.name!r}: query the views {views}")


def _function_name(node: exp.Expression | None) -> str:
    if isinstance(node, exp.Anonymous):
        return node.name.lower()
    return node.sql_name().lower() if isinstance(node, exp.Func) else ""


def _qualified(table: exp.Table) -> bool:
    return bool(table.args.get("db") or table.args.get("catalog"))


# --- wall 2: DuckDB's own parser ---------------------------------------------------------------------------------

def check_engine_reading(con: duckdb.DuckDBPyConnection, sql: str, known: Iterable[str]) -> None:
    """Refuse `sql` unless DuckDB's own parse of it calls only allowed functions and reads only `known` views and
    its own CTEs (SqlRefused). Run on the text the engine will execute."""
    cursor = con.cursor()
    try:
        serialized = cursor.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0]
    finally:
        cursor.close()
    try:
        document = json.loads(serialized)
    except (ValueError, RecursionError):
        raise SqlRefused("sql: the query is nested too deeply to check") from None
    if document.get("error"):
        message = " ".join(str(document.get("error_message", "not a SELECT")).split())[:200]
        raise SqlRefused(f"sql: DuckDB does not read this as one SELECT: {message}")
    nodes = list(_walk_json(document))
    ctes = {str(entry["key"]).lower() for node in nodes for entry in (node.get("cte_map") or {}).get("map", [])}
    allowed_tables = {name.lower() for name in known} | ctes
    for node in nodes:
        _check_engine_node(node, allowed_tables)


def _check_engine_node(node: dict[str, Any], allowed_tables: set[str]) -> None:
    if "function_name" in node:
        name = str(node["function_name"]).lower()
        if node.get("schema") or node.get("catalog"):
            raise SqlRefused(f"sql: qualified function {node['schema']}.{name}() is not allowed in the sandbox")
        if name not in ALLOWED_FUNCTIONS and not _OPERATOR.fullmatch(name):
            raise SqlRefused(f"sql: function {name}() is not allowed in the sandbox")
    kind = node.get("type")
    if kind == "BASE_TABLE":
        name = str(node.get("table_name", "")).lower()
        if node.get("schema_name") or node.get("catalog_name") or name not in allowed_tables:
            raise SqlRefused(f"sql: table {name!r} is not one the sandbox may read")
    elif kind == "TABLE_FUNCTION":
        function = node.get("function") or {}
        if str(function.get("function_name", "")).lower() not in TABLE_FUNCTIONS:
            raise SqlRefused(f"sql: table function {function.get('function_name')}() is not allowed")
    elif kind in ("SHOW_REF", "COLUMN_DATA", "DELIM_GET"):
        raise SqlRefused(f"sql: {kind.lower()} is not allowed in the sandbox")


def _walk_json(document: Any) -> Iterable[dict[str, Any]]:
    """Every JSON object in `document`, iteratively (a deep tree must not exhaust Python's stack)."""
    stack = [document]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            yield item
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


# --- the worker's budget and the parent's watch ------------------------------------------------------------------

class SqlSandbox:
    """Runs checked read-only queries over a copy of a store's views, locked down; see the module docstring.

    `store` needs `con` (the DuckDB connection owning the views) and `paths` (the input files the views read).
    Queries run one at a time in a worker process, started on the first query and again after one is killed.
    """

    def __init__(self, store: Any, *, row_cap: int = DEFAULT_ROW_CAP, timeout_s: float = DEFAULT_TIMEOUT_S,
                 budget: Budget | None = None) -> None:
        self.budget = budget or Budget(timeout_s=timeout_s, row_cap=row_cap)
        self.row_cap = self.budget.row_cap
        self.timeout_s = self.budget.timeout_s
        self._backend = getattr(store, "logs_backend", None)
        self._remote = sorted(set(getattr(self._backend, "views", ()) or ()))
        self._dir = Path(tempfile.mkdtemp(prefix="incidentlens-sql-"))
        _LIVE.add(self)
        install_cleanup()
        try:
            copied = _copy_catalog(store.con, self._dir / "sandbox.duckdb")
            self._inputs = [str(p) for p in _input_paths(store)]
            self.tables = [view for view in CANONICAL_VIEWS if view in copied or view in self._remote]
        except BaseException:
            self.close()
            raise
        self._worker: subprocess.Popen[bytes] | None = None
        self._lock = threading.Lock()

    def run(self, sql: str, row_cap: int | None = None) -> SandboxResult:
        """Check and run one query; raise SqlRefused (one line) for anything not allowed, failing or over budget.
        `row_cap`: this query's, at most the sandbox's (a sandbox kept for many callers, each with its own)."""
        check_length(sql)  # before the query travels to the worker
        cap = min(row_cap or self.row_cap, self.row_cap)
        with self._lock:
            answer = self._ask({"sql": sql, "row_cap": cap})
        if "refused" in answer:
            raise SqlRefused(answer["refused"])
        if "remote" in answer:
            return self._run_remote(sql, cap)
        return SandboxResult(sql=sql.strip(), row_cap=cap, result_bytes=self.budget.result_bytes,
                             **answer["result"])

    def _ask(self, request: dict[str, Any]) -> dict[str, Any]:
        worker = self._ensure_worker()
        try:
            worker.stdin.write(json.dumps(request).encode() + b"\n")
            worker.stdin.flush()
        except OSError:
            self._stop_worker()
            raise SqlRefused("sql: the sandbox's worker stopped unexpectedly; run the query again") from None
        started = time.monotonic()
        deadline = started + self.budget.timeout_s + KILL_GRACE_S
        hard_mb = self.budget.memory_mb + WORKER_OVERHEAD_MB
        while True:
            ready, _, _ = select.select([worker.stdout], [], [], min(0.05, max(0.0, deadline - time.monotonic())))
            if ready:
                line = worker.stdout.readline()
                if line:
                    return json.loads(line)
            if worker.poll() is not None or ready:
                reason = self._worker_error()
                self._stop_worker()
                raise SqlRefused(f"sql: the sandbox's worker stopped while running the query{reason}")
            if time.monotonic() >= deadline:
                self._stop_worker()
                raise SqlRefused(f"sql: query stopped at the {self.budget.timeout_s:g} s time limit "
                                 f"(it did not yield to an interrupt; killed after {KILL_GRACE_S:g} s more)")
            if _rss_mb(worker.pid) > hard_mb:
                self._stop_worker()
                raise SqlRefused(f"sql: query stopped: its worker went over {hard_mb} MB of memory (the "
                                 f"{self.budget.memory_mb} MB memory budget plus {WORKER_OVERHEAD_MB} MB for the "
                                 "worker itself); aggregate, or select fewer or shorter values")

    def _ensure_worker(self) -> subprocess.Popen[bytes]:
        if self._worker is not None and self._worker.poll() is None:
            return self._worker
        config = {"dir": str(self._dir), "inputs": self._inputs, "tables": self.tables, "remote": self._remote,
                  "budget": asdict(self.budget)}
        package_root = str(Path(__file__).resolve().parents[2])
        env = {"PATH": os.environ.get("PATH", ""), "PYTHONPATH": package_root, "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        with (self._dir / "worker.err").open("ab") as errors:
            self._worker = subprocess.Popen(
                [sys.executable, "-m", "incidentlens.analysis.sql_worker", json.dumps(config)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=errors, env=env,
            )
        ready = self._worker.stdout.readline()
        if json.loads(ready or b"{}").get("ready") is not True:
            reason = self._worker_error()
            self._stop_worker()
            raise SqlRefused(f"sql: the sandbox could not start{reason}")
        return self._worker

    def _worker_error(self) -> str:
        """The last line the worker wrote on stderr, as `: <line>` (or nothing)."""
        with contextlib.suppress(OSError):
            lines = (self._dir / "worker.err").read_text(errors="replace").strip().splitlines()
            if lines:
                return f": {one_line(lines[-1])}"
        return ""

    def _stop_worker(self) -> None:
        worker, self._worker = self._worker, None
        if worker is None:
            return
        with contextlib.suppress(OSError):
            worker.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            worker.wait(timeout=5)
        for stream in (worker.stdin, worker.stdout):
            with contextlib.suppress(OSError):
                stream.close()

    def _run_remote(self, sql: str, row_cap: int) -> SandboxResult:
        """Logs kept in a remote backend (ClickHouse): the checked query is pushed down, capped by an outer LIMIT."""
        started = time.perf_counter()
        try:
            table = self._backend.fetch(f"SELECT * FROM ({sql.strip().rstrip(';')}) AS q LIMIT {row_cap + 1}")
        except Exception as err:
            raise SqlRefused(f"sql: {one_line(err)}") from err
        rows = [[json_safe(v) for v in row.values()] for row in table.to_pylist()]
        kept, cut_by = cap_rows(rows, row_cap, self.budget.result_bytes)
        if cut_by == "bytes" and not kept:
            raise SqlRefused(over_budget_message(self.budget.result_bytes))
        return SandboxResult(
            sql=sql.strip(), columns=table.column_names, rows=kept, truncated=cut_by is not None,
            elapsed_ms=round((time.perf_counter() - started) * 1000, 1), row_cap=row_cap, cut_by=cut_by,
            result_bytes=self.budget.result_bytes,
        )

    def close(self) -> None:
        """Stop the worker and remove the sandbox's files (also done at exit and on SIGTERM/SIGHUP)."""
        if getattr(self, "_worker", None) is not None:
            worker = self._worker
            with contextlib.suppress(OSError):
                worker.stdin.close()  # the worker's signal to finish
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(timeout=2)
            self._stop_worker()
        shutil.rmtree(self._dir, ignore_errors=True)
        _LIVE.discard(self)

    def __enter__(self) -> SqlSandbox:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def cap_rows(rows: list[list[Any]], row_cap: int, result_bytes: int) -> tuple[list[list[Any]], str | None]:
    """At most `row_cap` rows whose JSON fits in `result_bytes`, and which cap cut the rest (None: nothing cut)."""
    kept: list[list[Any]] = []
    used = 0
    for row in rows:
        if len(kept) == row_cap:
            return kept, "rows"
        used += len(json.dumps(row, default=str)) + 2
        if used > result_bytes:
            return kept, "bytes"
        kept.append(row)
    return kept, None


def over_budget_message(result_bytes: int) -> str:
    return (f"sql: the first row alone is over the {_size(result_bytes)} result budget: select fewer or shorter "
            "values (e.g. left(message, 200))")


def _size(n_bytes: int | None) -> str:
    if n_bytes is None:
        return "?"
    return f"{n_bytes / 1e6:g} MB" if n_bytes >= 1e6 else f"{n_bytes / 1e3:g} kB"


def _rss_mb(pid: int) -> float:
    """Resident memory of process `pid` in MB (0 where /proc is not there to ask)."""
    try:
        with open(f"/proc/{pid}/statm") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError, IndexError):
        return 0.0


# Sandboxes alive in this process: their files go at exit and on SIGTERM/SIGHUP, not only on a clean close().
_LIVE: weakref.WeakSet[SqlSandbox] = weakref.WeakSet()
_CLEANUP_INSTALLED = {"exit": False, "signals": False}


def install_cleanup() -> None:
    """The sandboxes closed (their files removed) at exit, and at SIGTERM/SIGHUP where those have no handler yet.
    Python sets signal handlers from the main thread only: a program making its sandboxes in other threads (the MCP
    server's tools run in worker threads) calls this from the main thread first."""
    if not _CLEANUP_INSTALLED["exit"]:
        _CLEANUP_INSTALLED["exit"] = True
        atexit.register(_close_all)
    if _CLEANUP_INSTALLED["signals"] or threading.current_thread() is not threading.main_thread():
        return
    _CLEANUP_INSTALLED["signals"] = True
    for signum in (signal.SIGTERM, signal.SIGHUP):
        if signal.getsignal(signum) is signal.SIG_DFL:
            signal.signal(signum, _on_signal)


def _on_signal(signum: int, _frame: object) -> None:
    _close_all()
    signal.signal(signum, signal.SIG_DFL)
    os.kill(os.getpid(), signum)


def _close_all() -> None:
    for sandbox in list(_LIVE):
        with contextlib.suppress(Exception):
            sandbox.close()


# --- the database the worker opens -------------------------------------------------------------------------------

def _input_paths(store: Any) -> list[Path]:
    paths = getattr(store, "paths", None) or []
    values = paths.values() if isinstance(paths, dict) else paths
    found: list[Path] = []
    for value in values:
        items = value if isinstance(value, list | tuple) else [value]
        found.extend(Path(str(item)) for item in items if item is not None and "://" not in str(item))
    return found


def _copy_catalog(source: duckdb.DuckDBPyConnection, target: Path) -> list[str]:
    """Copy into a new database file what a query may read: the canonical views (definitions) and every view and
    table they read (data), no more; return their names. The store's other tables (the analyses' held relations,
    `TelemetryStore.hold`: a window's masked messages, ~160k rows each on a Nezha day, more with every window a
    long-running server explains) no query here may read, and copying them cost every `sql` call."""
    cursor = source.cursor()
    try:
        tables = [name for (name,) in cursor.execute(
            "SELECT table_name FROM duckdb_tables() WHERE NOT internal ORDER BY table_oid").fetchall()]
        views = dict(cursor.execute(
            "SELECT view_name, sql FROM duckdb_views() WHERE NOT internal ORDER BY view_oid").fetchall())
        needed = _read_by_views(cursor, views, [*tables, *views])
        tables = [name for name in tables if name in needed]
        # the tables stream into the file within DuckDB (a busy hour of logs is millions of rows: no copy in Python)
        alias = f"sandbox_{uuid.uuid4().hex}"
        cursor.execute(f"ATTACH {sql_str(str(target))} AS {alias}")
        try:
            for name in tables:
                cursor.execute(f'CREATE TABLE {alias}."{name}" AS SELECT * FROM "{name}"')
        finally:
            cursor.execute(f"DETACH {alias}")
        sandbox = duckdb.connect(str(target))
        try:
            for view_sql in (sql for name, sql in views.items() if name in needed):
                sandbox.execute(re.sub(r"^\s*CREATE\s+(TEMP|TEMPORARY)\s+VIEW", "CREATE VIEW", view_sql, flags=re.I))
        finally:
            sandbox.close()
    finally:
        cursor.close()
    return tables + [name for name in views if name in needed]


_VIEW_HEAD = re.compile(r'^\s*CREATE\s+(?:TEMP(?:ORARY)?\s+)?VIEW\s+(?:"(?:[^"]|"")*"|[^\s"(]+)\s+AS\s+', re.I)


def _read_by_views(cursor: duckdb.DuckDBPyConnection, views: dict[str, str], names: list[str]) -> set[str]:
    """Of `names` (the catalog's tables and views), the canonical views and those they read, transitively, as
    DuckDB's own parse of each view's query names them; a view whose query it cannot serialise counts as reading
    them all."""
    by_lower = {name.lower(): name for name in names}
    needed: set[str] = set()
    stack = [by_lower[view] for view in CANONICAL_VIEWS if view in by_lower]
    while stack:
        name = stack.pop()
        if name in needed:
            continue
        needed.add(name)
        if name not in views:
            continue
        query = _VIEW_HEAD.sub("", views[name], count=1).rstrip().rstrip(";")
        document = json.loads(cursor.execute("SELECT json_serialize_sql(?)", [query]).fetchall()[0][0])
        read = (names if document.get("error") else
                [by_lower.get(str(node.get("table_name", "")).lower(), "") for node in _walk_json(document)
                 if node.get("type") == "BASE_TABLE"])
        stack.extend(name for name in read if name)
    return needed


def open_locked(database: Path, input_paths: list[Path], budget: Budget | None = None,
                temp_dir: Path | None = None) -> duckdb.DuckDBPyConnection:
    """Open the sandbox database read-only within `budget`, then fence it in: order matters, the lock comes last."""
    budget = budget or Budget()
    config: dict[str, Any] = {
        "autoinstall_known_extensions": False, "autoload_known_extensions": False,
        "memory_limit": f"{budget.memory_mb}MB", "max_temp_directory_size": f"{budget.temp_disk_mb}MB",
        "threads": budget.threads,
    }
    if temp_dir is not None:
        config["temp_directory"] = str(temp_dir)
    con = duckdb.connect(str(database), read_only=True, config=config)
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


def one_line(err: BaseException | str) -> str:
    text = " ".join(str(err).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def json_safe(value: Any) -> Any:
    """A result value as JSON: times as UTC ISO-8601 text with `Z` (no time-zone library needed), numbers that JSON
    cannot carry (Decimal) as floats, bytes as hex, intervals as text, maps as objects."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat() + "Z"
    if isinstance(value, date | dtime):
        return value.isoformat()
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, timedelta):
        return str(value)
    if type(value).__name__ == "MonthDayNano":  # pyarrow's interval
        months, days, nanoseconds = value
        span = str(timedelta(days=days, microseconds=nanoseconds / 1000))
        return f"{months} months {span}" if months else span
    if isinstance(value, list | tuple):
        if value and all(isinstance(v, tuple) and len(v) == 2 for v in value):  # a MAP's (key, value) pairs
            return {str(json_safe(k)): json_safe(v) for k, v in value}
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # NaN/Infinity: JSON has no literal for them
    return value
