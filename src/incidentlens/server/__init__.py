"""`incidentlens serve`: Alertmanager webhooks in, incident reviews out (FastAPI), plus the MCP tools.

A face beside cli.py: it imports the library (telemetry, analysis, report, agents) and nothing imports it.
`app.create_app(settings)` builds the application; `state.StateDB` is the SQLite state; `worker.WorkerPool` runs
the investigations; `mcp_tools.build_mcp` the MCP server.
"""
