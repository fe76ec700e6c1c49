"""The HTTP face of `incidentlens serve`: Alertmanager intake, manual starts, the read API, the web UI and `/mcp`.

A thin layer beside cli.py: it parses, calls the state DB and the library, and answers. Every endpoint but
`/healthz` needs the token: `Authorization: Bearer <token>` for the API and `/mcp`; the UI pages also take the
session cookie a browser gets from `/login` once.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from mcp.server.streamable_http import TransportSecuritySettings
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp
from pydantic import BaseModel, Field, ValidationError
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from incidentlens import __version__
from incidentlens.errors import InputError
from incidentlens.server.alertmanager import MAX_BODY_BYTES, PayloadError, ingest, parse_notification
from incidentlens.server.mcp_tools import OpenedStore, build_mcp
from incidentlens.server.settings import ServeSettings
from incidentlens.server.state import DONE, StateDB
from incidentlens.server.worker import Runner, WorkerPool, investigate_in_child

COOKIE = "incidentlens_session"
REFRESH_S = 3  # the incident page reloads this often while its investigation is queued or running
# A review file holds log text: no script runs, nothing loads from elsewhere.
FILE_POLICY = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
REVIEW_FILES = {"report.md": "text/markdown; charset=utf-8", "report.json": "application/json",
                "report.html": "text/html; charset=utf-8", "evidence.json": "application/json"}
TEMPLATES = Environment(loader=FileSystemLoader(Path(__file__).parent / "templates"),
                        autoescape=select_autoescape(["html", "j2"]))


class ManualStart(BaseModel):
    at: str = Field(min_length=1, description="The alert time, ISO-8601")
    service: str | None = None


def session_value(token: str) -> str:
    """The cookie's value: a keyed hash of the token (the token itself never sits in the browser)."""
    return hmac.new(token.encode(), b"incidentlens-session", hashlib.sha256).hexdigest()


def bearer_ok(token: str | None, header: str | None) -> bool:
    if token is None:
        return True
    scheme, _, given = (header or "").partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), token.encode())


class BearerGuard:
    """ASGI wrapper: `/mcp` answers 401 without the bearer token."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope.get("headers", [])}
        if scope["type"] == "http" and not bearer_ok(self.token, headers.get("authorization")):
            await _unauthorized()(scope, receive, send)
            return
        await self.app(scope, receive, send)


async def _capped_body(request: Request) -> bytes:
    """The request body, read up to `MAX_BODY_BYTES`; past it PayloadError(413), before the rest is held in memory."""
    too_large = PayloadError(413, f"the body is over {MAX_BODY_BYTES // 2**20} MiB; Alertmanager's max_alerts "
                                  "caps a group's alerts")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise too_large
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_BODY_BYTES:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _unauthorized() -> JSONResponse:
    return JSONResponse({"detail": "missing or wrong bearer token"}, status_code=401,
                        headers={"WWW-Authenticate": 'Bearer realm="incidentlens"'})


def create_app(settings: ServeSettings, runner: Runner = investigate_in_child,
               opened: OpenedStore | None = None) -> FastAPI:
    """The application over `settings.state`; `runner` investigates one incident (tests pass a quick one); `opened`
    the store the start-up check read the files into, the MCP tools' until one changes."""
    state = StateDB(settings.state)
    pool = WorkerPool(settings, state, runner)
    mcp = build_mcp(settings.sources, state, opened)
    mcp_app = mcp.streamable_http_app(stateless_http=True, json_response=True,
                                      transport_security=TransportSecuritySettings(
                                          enable_dns_rebinding_protection=False))  # the bearer token guards it
    token = settings.token

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        pool.start()
        async with mcp.session_manager.run():
            yield
        if pool.stop():
            state.close()  # else a thread still holds it; the process exit ends both

    app = FastAPI(title="IncidentLens", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  openapi_url=None)
    app.state.db = state
    app.state.pool = pool
    app.state.mcp_app = mcp_app
    app.router.routes.append(Route("/mcp", endpoint=BearerGuard(StreamableHTTPASGIApp(mcp.session_manager), token),
                                   methods=["GET", "POST", "DELETE"]))

    def api_ok(request: Request) -> bool:
        return bearer_ok(token, request.headers.get("authorization"))

    def page_ok(request: Request) -> bool:
        cookie = request.cookies.get(COOKIE)
        return api_ok(request) or (token is not None and cookie is not None
                                   and hmac.compare_digest(cookie, session_value(token)))

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        return {"status": "ok", "version": __version__, "queued": state.count_queued()}

    @app.post("/api/v1/alerts/alertmanager")
    async def alertmanager_webhook(request: Request) -> Response:
        if not api_ok(request):
            return _unauthorized()
        try:
            note = parse_notification(await _capped_body(request))
        except PayloadError as err:
            return JSONResponse({"detail": err.reason}, status_code=err.status)
        outcome = await run_in_threadpool(ingest, state, note)  # committed before the answer
        if outcome["opened"]:
            pool.wake()
        return JSONResponse({"status": "accepted", **outcome})

    @app.post("/api/v1/investigations", status_code=202)
    async def start_investigation(request: Request) -> Response:
        if not api_ok(request):
            return _unauthorized()
        try:
            start = ManualStart.model_validate_json(await request.body())
            at = _parse_at(start.at, settings.sources.timezone or "")
        except ValidationError as err:
            first = err.errors()[0]
            where = ".".join(str(part) for part in first["loc"]) or "body"
            return JSONResponse({"detail": f"{where}: {first['msg']}"}, status_code=422)
        except InputError as err:
            return JSONResponse({"detail": str(err)}, status_code=422)
        queued = await run_in_threadpool(state.count_queued)
        if queued >= settings.queue_size:
            return JSONResponse({"detail": f"the investigation queue is full ({queued} queued); retry later"},
                                status_code=429, headers={"Retry-After": "30"})
        incident_id = await run_in_threadpool(state.open_manual_incident, at, start.service)
        pool.wake()
        return JSONResponse({"status": "queued", "incident_id": incident_id,
                             "incident": f"/api/v1/incidents/{incident_id}"}, status_code=202)

    @app.get("/api/v1/incidents")
    def list_incidents(request: Request, limit: int = 200) -> Response:
        if not api_ok(request):
            return _unauthorized()
        return JSONResponse({"incidents": state.list_incidents(limit=max(1, min(limit, 1000)))})

    @app.get("/api/v1/incidents/{incident_id}")
    def get_incident(request: Request, incident_id: int) -> Response:
        if not api_ok(request):
            return _unauthorized()
        incident = state.get_incident(incident_id)
        if incident is None:
            return JSONResponse({"detail": f"no incident {incident_id}"}, status_code=404)
        return JSONResponse(incident)

    @app.get("/api/v1/incidents/{incident_id}/review")
    def get_review(request: Request, incident_id: int) -> Response:
        if not api_ok(request):
            return _unauthorized()
        path = state.review_path(incident_id, "report.json")
        if path is None:
            incident = state.get_incident(incident_id)
            detail = (f"no incident {incident_id}" if incident is None else
                      f"no review yet: the investigation is {(incident['investigation'] or {}).get('state')}")
            return JSONResponse({"detail": detail}, status_code=404)
        return Response(path.read_bytes(), media_type="application/json")

    # --- the web UI ---------------------------------------------------------------------------------------------
    @app.get("/login", response_class=HTMLResponse)
    def login_page(next: str = "/", failed: bool = False) -> HTMLResponse:
        return _page("login.html.j2", next=_local(next), failed=failed)

    @app.post("/login")
    async def login(request: Request) -> Response:
        form = await request.form()
        given, target = str(form.get("token", "")), _local(str(form.get("next", "/")))
        if token is None or not hmac.compare_digest(given.encode(), token.encode()):
            return RedirectResponse(f"/login?failed=1&next={quote(target)}", status_code=303)
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, session_value(token), httponly=True, samesite="lax", max_age=30 * 86400)
        return response

    @app.post("/logout")
    def logout() -> Response:
        response = RedirectResponse("/login", status_code=303)
        response.delete_cookie(COOKIE)
        return response

    @app.get("/", response_class=HTMLResponse)
    def incidents_page(request: Request) -> Response:
        if not page_ok(request):
            return _to_login(request)
        return _page("incidents.html.j2", incidents=state.list_incidents(), token_set=token is not None,
                     refresh=REFRESH_S * 5)

    @app.get("/incidents/{incident_id}", response_class=HTMLResponse)
    def incident_page(request: Request, incident_id: int) -> Response:
        if not page_ok(request):
            return _to_login(request)
        incident = state.get_incident(incident_id)
        if incident is None:
            return HTMLResponse(_render("missing.html.j2", incident_id=incident_id), status_code=404)
        investigation = incident["investigation"] or {}
        review = state.review_path(incident_id, "report.html") if investigation.get("state") == DONE else None
        waiting = investigation.get("state") in ("queued", "running")
        return _page("incident.html.j2", incident=incident, investigation=investigation, token_set=token is not None,
                     review_html=_embeddable(review.read_text(), incident_id) if review else None,
                     refresh=REFRESH_S if waiting else None)

    @app.get("/incidents/{incident_id}/{name}")
    def review_file(request: Request, incident_id: int, name: str) -> Response:
        if not page_ok(request):
            return _to_login(request)
        path = state.review_path(incident_id, name) if name in REVIEW_FILES else None
        if path is None:
            return PlainTextResponse("no such review file", status_code=404)
        return Response(path.read_bytes(), media_type=REVIEW_FILES[name],
                        headers={"Content-Security-Policy": FILE_POLICY})

    return app


def _parse_at(text: str, zone: str) -> str:
    """A manual start's alert time as ISO UTC (`Z`); one without an offset read in `zone` (the sources'), as `--at`."""
    from incidentlens.analysis.detection import iso_z, parse_time

    moment: datetime = parse_time(text, option="at", zone=zone)
    return iso_z(moment)


def _embeddable(html: str, incident_id: int) -> str:
    """The review's own links (evidence.json beside it) resolve to this incident's files and open in the page."""
    return html.replace("<head>", f'<head><base href="/incidents/{incident_id}/" target="_top">', 1)


def _local(target: str) -> str:
    """Only a path on this server (no open redirect to another site)."""
    return target if target.startswith("/") and not target.startswith("//") else "/"


def _to_login(request: Request) -> Response:
    if "text/html" not in request.headers.get("accept", ""):
        return _unauthorized()
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def _render(template: str, **context: Any) -> str:
    return TEMPLATES.get_template(template).render(version=__version__, **context)


def _page(template: str, **context: Any) -> HTMLResponse:
    # The reviews embedded in pages hold log text: no script may run, styles stay inline.
    return HTMLResponse(_render(template, **context), headers={
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                                   "frame-src 'self'; form-action 'self'; frame-ancestors 'none'"})


def pretty(value: Any) -> str:
    return json.dumps(value, indent=1, sort_keys=True)


TEMPLATES.filters["pretty"] = pretty
