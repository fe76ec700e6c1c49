"""Telemetry sources -> DuckDB views with canonical columns (see docs/architecture.md, "Telemetry").

```python
store = load_telemetry(metrics="metrics.csv", logs="logs/*.jsonl.gz", mapping={"time": "when"})
table = store.fetch("SELECT service, count(*) AS n FROM logs GROUP BY service")
```
"""

from incidentlens.telemetry.columns import ROLES, parse_mapping
from incidentlens.telemetry.store import QueryBackend, TelemetryStore, load_telemetry
from incidentlens.telemetry.timeparse import naive_utc, sql_ts

__all__ = ["ROLES", "QueryBackend", "TelemetryStore", "load_telemetry", "naive_utc", "parse_mapping", "sql_ts"]
