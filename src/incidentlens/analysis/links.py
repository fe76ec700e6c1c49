"""The spans joined to their parents, once per store: the costly part of reading spans, which the per-trace events,
the waits around calls, the call graph and the latency percentiles' check against the traced calls all read.

A call is a link whose parent is another service's span (`service <> parent_service`).
"""

from __future__ import annotations

from typing import Any

#: every span with its start, and its parent span's service, start and duration (NULL for a root or a parent not in
#: the data)
SPAN_LINKS_SQL = """SELECT child.trace_id, child.service, child.operation, child.start_ts, child.duration_ms,
       parent.service AS parent_service, parent.start_ts AS parent_start, parent.duration_ms AS parent_ms
FROM spans AS child
LEFT JOIN spans AS parent ON parent.trace_id = child.trace_id AND parent.span_id = child.parent_id"""


def span_links(store: Any) -> str:
    """The table of `SPAN_LINKS_SQL`, computed on the first call and held by the store (`store.hold`)."""
    return str(store.hold(SPAN_LINKS_SQL, "span_links"))
