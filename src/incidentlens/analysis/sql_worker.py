"""The SQL sandbox's worker process: `python -m incidentlens.analysis.sql_worker CONFIG_JSON`.

It opens the sandbox database locked and within its budget, says `{"ready": true}`, then answers one JSON line per
request line on stdin (`{"sql": ..., "row_cap": N}`, the cap at most the budget's): `{"result": ...}`,
`{"refused": "sql: ..."}` or `{"remote": true}` (the query reads only views kept in a remote store: the parent runs
it there). The time limit starts when a request arrives, so it covers the checks as well as the run; DuckDB is
interrupted at the limit, and the parent kills a worker that does not answer soon after. It exits when stdin closes
(its parent closed it or died). (No PR_SET_PDEATHSIG: Linux sends it when the parent *thread* ends, and the agents
start the sandbox in a tool thread.)
"""

from __future__ import annotations

import json
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
from sqlglot import exp

from incidentlens.analysis.sql_sandbox import (
    Budget,
    SqlRefused,
    canonical_sql,
    cap_rows,
    check_engine_reading,
    check_query,
    cte_references,
    json_safe,
    one_line,
    open_locked,
    over_budget_message,
)

_BATCH_ROWS = 64


def main() -> None:
    config = json.loads(sys.argv[1])
    budget = Budget(**config["budget"])
    directory = Path(config["dir"])
    (directory / "tmp").mkdir(exist_ok=True)
    con = open_locked(directory / "sandbox.duckdb", [Path(p) for p in config["inputs"]], budget,
                      temp_dir=directory / "tmp")
    worker = Worker(con, budget, config["tables"], config["remote"])
    # imports sqlglot's dialect and DuckDB's JSON code before any clock runs (with time to spare on a busy machine)
    worker.handle("SELECT 1 AS warm_up", timeout_s=60)
    _answer({"ready": True})
    for line in sys.stdin:
        request = json.loads(line)
        _answer(worker.handle(request["sql"], row_cap=request.get("row_cap")))


class Worker:
    def __init__(self, con: duckdb.DuckDBPyConnection, budget: Budget, tables: list[str], remote: list[str]) -> None:
        self.con, self.budget, self.tables, self.remote = con, budget, tables, set(remote)

    def handle(self, sql: str, timeout_s: float | None = None, row_cap: int | None = None) -> dict[str, Any]:
        """One request's answer; never raises (a failure is a one-line refusal, and the worker goes on).
        `row_cap`: this query's, at most the budget's."""
        started = time.perf_counter()
        cursor = self.con.cursor()
        timer = threading.Timer(timeout_s or self.budget.timeout_s, cursor.interrupt)
        timer.start()
        try:
            return self._checked_run(cursor, sql, started, min(row_cap or self.budget.row_cap, self.budget.row_cap))
        except SqlRefused as refused:
            return {"refused": str(refused)}
        except MemoryError:
            return {"refused": f"sql: query stopped: over the {self.budget.memory_mb} MB memory budget"}
        except Exception as err:  # DuckDB's errors, and the same errors as pyarrow's stream reader raises them
            return {"refused": self._failure(err)}
        finally:
            timer.cancel()
            cursor.close()

    def _failure(self, err: Exception) -> str:
        text = str(err)
        if isinstance(err, duckdb.InterruptException) or text.startswith("INTERRUPT Error"):
            return f"sql: query interrupted after the {self.budget.timeout_s:g} s time limit"
        if isinstance(err, duckdb.OutOfMemoryException) or text.startswith("Out of Memory Error"):
            return self._over_memory(err)
        return f"sql: {one_line(err)}"

    def _checked_run(self, cursor: duckdb.DuckDBPyConnection, sql: str, started: float,
                     row_cap: int) -> dict[str, Any]:
        tree = check_query(sql, self.tables)
        ctes = cte_references(tree)
        read = {t.name.lower() for t in tree.find_all(exp.Table) if id(t) not in ctes and t.name}
        if self.remote and read and read <= self.remote:
            return {"remote": True}
        if read & self.remote:
            names = ", ".join(sorted(read & self.remote))
            raise SqlRefused(f"sql: {names} live in a remote store: query them on their own, without local views")
        text = canonical_sql(tree)
        check_engine_reading(self.con, text, self.tables)
        reader = cursor.sql(text).to_arrow_reader(_BATCH_ROWS)
        rows, cut_by = cap_rows(self._first_rows(reader, row_cap), row_cap, self.budget.result_bytes)
        if cut_by == "bytes" and not rows:
            raise SqlRefused(over_budget_message(self.budget.result_bytes))
        elapsed_ms = round((time.perf_counter() - started) * 1000, 1)
        return {"result": {"columns": list(reader.schema.names), "rows": rows, "truncated": cut_by is not None,
                           "cut_by": cut_by, "elapsed_ms": elapsed_ms}}

    def _first_rows(self, reader: Any, row_cap: int) -> list[list[Any]]:
        """JSON-safe rows from the stream until one past either cap (only these rows are ever converted)."""
        rows: list[list[Any]] = []
        used = 0
        for batch in reader:
            for row in zip(*(column.to_pylist() for column in batch.columns), strict=True):
                rows.append([json_safe(v) for v in row])
                used += len(json.dumps(rows[-1], default=str))
                if len(rows) > row_cap or used > self.budget.result_bytes:
                    return rows
        return rows

    def _over_memory(self, err: Exception) -> str:
        if "temp" in str(err).lower() and "director" in str(err).lower():
            budget = f"{self.budget.temp_disk_mb} MB temporary-disk budget"
        else:
            budget = f"{self.budget.memory_mb} MB memory budget"
        return f"sql: query stopped: it needs more than the {budget}; aggregate, filter, or select less"


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()



if __name__ == "__main__":
    main()
