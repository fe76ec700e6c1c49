"""A test double of the telemetry store for analysis tests: views on a DuckDB connection, queried with fetch(sql)."""

from __future__ import annotations

from datetime import datetime

import duckdb
import pyarrow as pa


class DuckStore:
    """The slice of the telemetry store that analysis uses: `has(view)`, `columns(view)`, `fetch(sql)` and `hold(sql)`
    (every query run is kept in `queries`, to count scans) and `time_range()` of the logs; built from CREATE VIEW
    statements or a connection."""

    def __init__(self, *views: str, con: duckdb.DuckDBPyConnection | None = None) -> None:
        self.con = con or duckdb.connect()
        self.queries: list[str] = []
        self.held: dict[str, str] = {}
        for view in views:
            self.con.execute(view)

    def has(self, view: str) -> bool:
        return view in {row[0] for row in self.con.sql("SELECT table_name FROM information_schema.tables").fetchall()}

    def columns(self, view: str) -> list[str]:
        return self.fetch(f"SELECT * FROM {view} LIMIT 0").column_names

    def fetch(self, sql: str) -> pa.Table:
        self.queries.append(sql)
        return self.con.sql(sql).to_arrow_table()

    def hold(self, sql: str, label: str) -> str:
        """The query's result as a table, computed on the first call (as `TelemetryStore.hold`)."""
        if sql not in self.held:
            self.queries.append(sql)
            self.held[sql] = f"{label}_{len(self.held)}"
            self.con.execute(f"CREATE OR REPLACE TABLE {self.held[sql]} AS {sql}")
        return self.held[sql]

    def time_range(self) -> tuple[datetime, datetime]:
        return self.con.sql("SELECT min(ts), max(ts) FROM logs").fetchall()[0]

    def view_ranges(self) -> dict[str, tuple[datetime, datetime]]:
        """(first, last) time of the logs, the one view it times (as `TelemetryStore.view_ranges`)."""
        return {"logs": self.time_range()} if self.has("logs") else {}
