"""Background investigations: a pool of worker threads over the queue kept in the state DB.

The queue lives in SQLite, so it survives a restart: investigations left `running` by a killed process go back to
`queued` when the pool starts, and pending notifications are sent again. `workers` threads investigate at once,
each investigation in a child process of its own (`investigate_in_child`), so its CPU-heavy Python never holds
the server's interpreter lock: the intake only inserts a row and wakes a worker, and never waits on an
investigation. A child whose server died (`kill -9`) ends itself; the investigation resumes after the restart. A
separate notifier thread delivers the webhooks, so a slow receiver's retries never hold up the next investigation.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import sqlite3
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from incidentlens.errors import IncidentLensError
from incidentlens.server.notify import deliver
from incidentlens.server.settings import ServeSettings
from incidentlens.server.state import StateDB

logger = logging.getLogger(__name__)
IDLE_POLL_S = 2.0  # a worker with nothing to do looks again this often even without a wake-up
CHECKPOINT_S = 2.0  # how often the state DB's write-ahead log is folded into the database file


def run_investigation(settings: ServeSettings, job: dict[str, Any], out: Path) -> list[str]:
    """Investigate one incident with the library (as `incidentlens investigate --at`): the review files go to
    `out`; returns the executive summary."""
    from incidentlens.agents import investigate
    from incidentlens.analysis.detection import parse_time
    from incidentlens.report import executive_summary, write_reports

    at = parse_time(job["at"], option="startsAt")
    store = settings.sources.open(at)
    out.mkdir(parents=True, exist_ok=True)
    result = investigate(store, llm=settings.llm, model=settings.model, llm_url=settings.llm_url,
                         max_steps=settings.max_steps, at=at, trace_path=out / "trace.jsonl",
                         service_hint=job.get("service"))
    write_reports(result.postmortem, out, store=store)
    summary = executive_summary(result.postmortem)
    note = outside_data(store, at)  # first: the review is of the window nearest it, perhaps days away
    return [f"Note: {note}; this review is of what is nearest it", *summary] if note else summary


def outside_data(store: Any, at: datetime) -> str | None:
    """What the CLI warns on stderr when the alert time lies outside the data (an export that lags the alerts),
    for the faces with no reader of stderr: the review's summary, the MCP tools' answers. None inside the data."""
    from incidentlens.analysis.anchored import outside_data as outside

    said = outside(store, at, "the alert time")
    return None if said is None else f"{said}: nothing at that time could be seen"


Runner = Callable[[ServeSettings, dict[str, Any], Path], list[str]]
ORPHAN_CHECK_S = 1.0  # how often a child looks whether its server still lives


class InvestigationFailed(IncidentLensError):
    """The investigation ended with an error; the message is the reason recorded on it."""


def investigate_in_child(settings: ServeSettings, job: dict[str, Any], out: Path) -> list[str]:
    """`run_investigation` in a spawned child process; its summary, or InvestigationFailed with the reason."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_child_main, args=(settings.model_dump(mode="json"), job, str(out), sender,
                                                      os.getpid()), name=f"incidentlens-investigation-{job['id']}",
                            daemon=True)
    child.start()
    sender.close()
    try:
        outcome = receiver.recv()
    except EOFError:
        outcome = None
    finally:
        receiver.close()
        child.join()
    if outcome is None:
        raise InvestigationFailed(f"the investigation process ended without a result (exit code {child.exitcode})")
    if "error" in outcome:
        raise InvestigationFailed(outcome["error"])
    return outcome["summary"]


def _child_main(settings: dict[str, Any], job: dict[str, Any], out: str, sender: Any, server_pid: int) -> None:
    """In the child: investigate, send the summary or the reason back; end at once if the server is gone."""
    threading.Thread(target=_exit_when_orphaned, args=(server_pid,), daemon=True).start()
    logging.getLogger("haystack").setLevel(logging.CRITICAL)
    try:
        summary = run_investigation(ServeSettings.model_validate(settings), job, Path(out))
        sender.send({"summary": summary})
    except IncidentLensError as err:
        sender.send({"error": str(err)})
    except Exception as err:  # the reason goes to the investigation's record
        logger.exception("investigation %s failed", job["id"])
        sender.send({"error": f"{type(err).__name__}: {err}"})
    finally:
        sender.close()


def _exit_when_orphaned(server_pid: int) -> None:
    while os.getppid() == server_pid:
        time.sleep(ORPHAN_CHECK_S)
    os._exit(1)  # the server was killed: its restart requeues this investigation


class WorkerPool:
    def __init__(self, settings: ServeSettings, state: StateDB, runner: Runner = investigate_in_child) -> None:
        self.settings = settings
        self.state = state
        self.runner = runner
        self._stop = threading.Event()
        self._work = threading.Condition()
        self._deliveries = threading.Condition()
        self._threads: list[threading.Thread] = []

    def start(self) -> int:
        """Requeue what a previous process left running, then start the threads; returns how many were requeued."""
        resumed = self.state.requeue_unfinished()
        for number in range(self.settings.workers):
            self._spawn(self._investigate_loop, f"incidentlens-worker-{number}")
        self._spawn(self._notify_loop, "incidentlens-notifier")
        self._spawn(self._checkpoint_loop, "incidentlens-checkpoint")
        return resumed

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    def wake(self) -> None:
        """New work was queued: let an idle worker take it now."""
        with self._work:
            self._work.notify()

    def stop(self, timeout: float = 5.0) -> bool:
        """Stop taking work and wait up to `timeout` s for the threads; False if an investigation still runs (it
        finishes if the process lives on, else it resumes after the restart)."""
        self._stop.set()
        for condition in (self._work, self._deliveries):
            with condition:
                condition.notify_all()
        for thread in self._threads:
            thread.join(timeout)
        return not any(thread.is_alive() for thread in self._threads)

    def _investigate_loop(self) -> None:
        while not self._stop.is_set():
            job = self.state.claim_next()
            if job is None:
                with self._work:
                    self._work.wait(IDLE_POLL_S)
                continue
            self._run(job)

    def _run(self, job: dict[str, Any]) -> None:
        out = self.state.review_dir(job["incident_id"])
        try:
            summary = self.runner(self.settings, job, out)
        except IncidentLensError as err:
            self.state.fail(job["id"], str(err))
            return
        except Exception as err:  # any failure is recorded on the investigation, never lost in a thread
            logger.exception("investigation %s failed", job["id"])
            self.state.fail(job["id"], f"{type(err).__name__}: {err}")
            return
        targets = [(target.name, target.kind) for target in self.settings.notifications]
        self.state.finish(job["id"], out, summary, targets)
        if targets:
            with self._deliveries:
                self._deliveries.notify()

    def _checkpoint_loop(self) -> None:
        while not self._stop.wait(CHECKPOINT_S):
            try:
                self.state.checkpoint()
            except sqlite3.Error as err:  # busy or locked: the next round goes on
                logger.debug("checkpoint: %s", err)

    def _notify_loop(self) -> None:
        while not self._stop.is_set():
            pending = self.state.pending_deliveries()
            for delivery in pending:
                if self._stop.is_set():
                    return
                deliver(self.state, self.settings, delivery, self._stop)
            if not pending:
                with self._deliveries:
                    self._deliveries.wait(IDLE_POLL_S)
