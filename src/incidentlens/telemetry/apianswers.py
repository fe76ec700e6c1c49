"""Prometheus' and Loki's HTTP API answers as canonical tables: a `query_range` matrix as metrics rows (from a live
query or a saved answer file), a Loki `streams` answer as log rows, and how a saved answer file is told apart.

Apart from the HTTP client (`prometheus.py`): reading a saved answer needs no network library.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from incidentlens.errors import InputError
from incidentlens.telemetry import arrays
from incidentlens.telemetry.logfields import LOKI_LEVEL_LABELS, LOKI_SERVICE_LABELS, service_of_pod
from incidentlens.telemetry.textlogs import GZIP_CUT_SHORT, open_text
from incidentlens.telemetry.words import counted_words

# Labels that name the service a series belongs to, most specific first (`job` is usually the scrape job).
SERVICE_LABELS = ("service", "app", "job")
# Labels that name the pod (replica) a series is of, as Kubernetes service discovery and kube-state-metrics write it.
POD_LABELS = ("pod", "pod_name", "kubernetes_pod_name", "k8s_pod_name")
# Labels that identify where a series was scraped from rather than what it measures.
TARGET_LABELS = frozenset({"__name__", "instance", *SERVICE_LABELS, *POD_LABELS})
METRICS_SCHEMA = pa.schema(
    [("ts", pa.timestamp("ms")), ("service", pa.string()), ("metric", pa.string()), ("value", pa.float64()),
     ("pod", pa.string())]
)
# a saved answer's rows: `ts` the epoch seconds it gives, read by the metrics view as an epoch column's (a time no
# timestamp holds, in an answer edited by hand, is left out and named by its row there, not the whole answer refused)
SAVED_METRICS_SCHEMA = METRICS_SCHEMA.set(0, pa.field("ts", pa.float64()))


def matrix_to_table(result: list[dict[str, Any]], name: str, saved: bool = False) -> pa.Table:
    """Flatten a query_range matrix into canonical rows (`saved`: a saved answer's, `SAVED_METRICS_SCHEMA`); one
    numpy conversion per series, none per point (but in a series holding a time or value that is no number:
    `_points`)."""
    schema = SAVED_METRICS_SCHEMA if saved else METRICS_SCHEMA
    if not result:
        return schema.empty_table()
    series_points = [_points(item.get("values") or []) for item in result]
    lengths = np.array([len(points) for points, _ in series_points])
    points = np.concatenate([points for points, _ in series_points])
    numbers = np.concatenate([numbers for _, numbers in series_points])
    # built through the Arrow buffers: `pa.array` imports pandas, about 0.3 s of a CLI run that needs none
    return pa.table(
        {
            "ts": arrays.float_array(points[:, 0]) if saved else arrays.time_array(np.round(points[:, 0] * 1000), "ms"),
            "service": arrays.repeated_strings([_service_of(item["metric"]) for item in result], lengths),
            "metric": arrays.repeated_strings([_metric_of(item["metric"], name) for item in result], lengths),
            "value": arrays.float_array(points[:, 1], valid=numbers),
            "pod": arrays.repeated_strings([_pod_of(item["metric"]) for item in result], lengths),
        },
        schema=schema,
    )


def _points(values: list[Any]) -> tuple[np.ndarray, np.ndarray]:
    """A series' `[time, "value"]` pairs as an (n, 2) float array, and which values are numbers. In one numpy
    conversion; where that fails (an answer edited by hand), pair by pair: a time that is no number NaN (a bad time
    to the metrics view), a value that is none NULL (counted: `unread_values`)."""
    try:
        points = np.asarray(values, dtype=np.float64).reshape(-1, 2)
        return points, np.ones(len(points), dtype=bool)
    except (ValueError, TypeError):
        pairs = np.asarray(values, dtype=object).reshape(-1, 2)
    points = np.array([[_number(time), _number(value)] for time, value in pairs.tolist()],
                      dtype=np.float64).reshape(-1, 2)
    return points, np.array([_number(value) is not None for value in pairs[:, 1].tolist()], dtype=bool)


def _number(text: object) -> float | None:
    """A pair's time or value as a number (`"1.5"`, `"NaN"`, `"+Inf"`), None where it is none."""
    try:
        return float(text)  # type: ignore[arg-type]
    except (ValueError, TypeError):
        return None


# A saved answer of Prometheus' HTTP API (`curl .../api/v1/query_range > metrics.json`), as its server writes it;
# Loki's API answers alike, its log lines a `streams` result
_API_ANSWER = re.compile(rb'^\s*\{\s*"status"\s*:\s*"\w+"\s*,\s*"data"\s*:\s*\{\s*"resultType"\s*:\s*"(\w*)"')
# ... and a failed one, as Prometheus writes it (no data: `{"status":"error","errorType":"bad_data","error":...}`)
_FAILED_ANSWER = re.compile(rb'^\s*\{\s*"status"\s*:\s*"error"\s*,\s*"errorType"\s*:')


def api_answer_kind(head: bytes) -> str | None:
    """`prometheus` or `loki` when a file's first bytes open a saved HTTP API answer of Prometheus or Loki
    (`{"status":"success","data":{"resultType":"matrix"`, `"streams"`); `failed` for a failed one, `{"status":"error",
    "errorType"`, which holds neither (`answer_failure` says its error); else None."""
    match = _API_ANSWER.match(head)
    if match is None:
        return "failed" if _FAILED_ANSWER.match(head) else None
    return "loki" if match.group(1) == b"streams" else "prometheus"


def read_loki_answer(path: Path) -> pa.Table:
    """A saved Loki `query_range` answer (`streams`: each a label set and its `[ns, line]` values) as log rows:
    `ts`, the nanoseconds as written (the logs view reads them as a text column's epoch numbers, so a value that is
    no time is left out and named by its row, not the whole answer refused), `service` (`LOKI_SERVICE_LABELS`, else
    the pod's), `level` (`LOKI_LEVEL_LABELS`; where no stream has one, no level column: the logs view reads it from
    each line) and `message`, the line; one numpy conversion per stream."""
    streams = _api_result(path, "streams", "save the answer of Loki's /loki/api/v1/query_range")
    tables = []
    for stream in streams:
        try:
            labels, values = dict(stream.get("stream") or {}), np.asarray(stream.get("values") or [], dtype=object)
            # a value is [ns, line], or [ns, line, metadata] in Loki 3's answer with categorised labels
            values = values[:, :2] if values.ndim == 2 else values.reshape(-1, 2)
        except (AttributeError, ValueError, TypeError) as err:
            raise InputError(f"{path}: cannot read as a Loki answer: a stream of another shape "
                             f"({type(err).__name__}: {str(err)[:100]})") from None
        pod = next((labels[label] for label in POD_LABELS if labels.get(label)), None)
        service = next((labels[label] for label in LOKI_SERVICE_LABELS if labels.get(label)), None)
        level = next((labels[label] for label in LOKI_LEVEL_LABELS if labels.get(label) not in (None, "", "unknown")),
                     None)
        lines = np.array([len(values)])
        tables.append(pa.table({
            "ts": arrays.string_array([None if nanos is None else str(nanos) for nanos in values[:, 0].tolist()]),
            "service": arrays.repeated_strings([service or (service_of_pod(pod) if pod else "global")], lines),
            "level": arrays.repeated_strings([level], lines),
            # a null line is NULL, not the text 'None' (counted by the store)
            "message": arrays.string_array([None if line is None else str(line) for line in values[:, 1].tolist()]),
        }))
    if not tables:
        raise InputError(f"{path}: a Loki answer with no log lines")
    lines = pa.concat_tables(tables).combine_chunks()
    # no stream labelled with its level: the logs view reads each line's level from its text or fields
    return lines.drop_columns(["level"]) if lines["level"].null_count == len(lines) else lines


def answer_failure(path: Path) -> InputError:
    """The error a saved failed API answer (`{"status":"error","errorType":...,"error":...}`) says, naming the file:
    a query that failed holds no series and no log lines, whichever option the file was given with."""
    answer = _api_answer(path)
    return InputError(f"{path}: an API answer with status {answer.get('status')!r}: "
                      f"{str(answer.get('error') or 'no data')[:200]}")


def _api_answer(path: Path) -> dict[str, Any]:
    """A saved API answer's JSON object (its first bytes open one: `api_answer_kind`); an InputError for a file
    that is not JSON."""
    try:
        with open_text(path) as handle:
            answer = json.load(handle)
    except ValueError as err:
        raise InputError(f"{path}: cannot read as an API answer: {str(err)[:200]}") from None
    except EOFError:  # one document: nothing before the cut can be read
        raise InputError(f"{path}: cannot read as an API answer: {GZIP_CUT_SHORT}") from None
    return answer


def _api_result(path: Path, expected: str, instead: str) -> list[dict[str, Any]]:
    """The `result` of a saved API answer of `expected` type; an InputError for another (or a failed) answer."""
    answer = _api_answer(path)
    if answer.get("status") != "success":
        raise answer_failure(path)
    try:
        data = answer.get("data") or {}
        kind, result = data.get("resultType"), list(data.get("result") or [])
    except (AttributeError, TypeError) as err:
        raise InputError(f"{path}: cannot read as an API answer: {str(err)[:200]}") from None
    if kind != expected:
        raise InputError(f"{path}: a {kind} answer, not a {expected} one: {instead} instead")
    return result


def read_api_answer(path: Path) -> pa.Table:
    """A saved `query_range` answer as canonical metrics rows, each series as `--prometheus` reads it (its service,
    pod and metric from its labels); a series without `__name__` (a PromQL expression's) is named by the file."""
    result = _api_result(path, "matrix", "save the answer of Prometheus' /api/v1/query_range")
    if not result:
        raise InputError(f"{path}: a Prometheus answer with no series (its query matched none over its range)")
    try:
        tables = [matrix_to_table([item], item["metric"].get("__name__") or path.name.split(".")[0], saved=True)
                  for item in result]
    except (KeyError, ValueError, TypeError, AttributeError) as err:
        raise InputError(f"{path}: cannot read as a Prometheus range answer: a series of another shape "
                         f"({type(err).__name__}: {str(err)[:100]})") from None
    if not any(len(table) for table in tables):
        raise InputError(f"{path}: a Prometheus answer whose {len(tables)} series hold no samples")
    return pa.concat_tables(tables).combine_chunks()


def unread_values(path: Path, table: pa.Table) -> list[str]:
    """The warning counting the samples of a saved answer (read as `table`) whose value is no number, kept as NULL,
    naming the first by its row (in the answer's order, as the metrics view numbers a bad time's); none where every
    value is one. Only then is the answer read again, to find it."""
    unread = table["value"].null_count
    if not unread:
        return []
    values = [value for item in _api_result(path, "matrix", "") for _, value in item.get("values") or []]
    row, value = next((n, value) for n, value in enumerate(values, 1) if _number(value) is None)
    return [f"{path}: column 'value': {counted_words(unread, 'rows not numeric, kept as NULL')}; the first, row "
            f"{row}: {value!r}"]


def _service_of(labels: Mapping[str, str]) -> str:
    """The series' `service` or `app` label; else the service of its pod (the pod name without its replica-set
    suffix), since a `job` is the scrape job, and kube-state-metrics' or cAdvisor's series of another workload's pod
    are about that workload; else its `job`; else `global`."""
    named = next((labels[label] for label in SERVICE_LABELS[:-1] if labels.get(label)), None)
    pod = next((labels[label] for label in POD_LABELS if labels.get(label)), None)
    return named or (service_of_pod(pod) if pod else None) or labels.get("job") or "global"


def _pod_of(labels: Mapping[str, str]) -> str | None:
    """The replica a series is of: its pod label, else the target it was scraped from (`instance`: two replicas of a
    job outside Kubernetes are two targets, whose samples at each step would otherwise be averaged into one)."""
    return next((labels[label] for label in (*POD_LABELS, "instance") if labels.get(label)), None)


def _metric_of(labels: Mapping[str, str], name: str) -> str:
    """The query's name, plus the labels that tell its series apart (e.g. `http_requests:rate{code="500"}`)."""
    extra = {k: v for k, v in labels.items() if k not in TARGET_LABELS}
    if not extra:
        return name
    inner = ",".join(f'{k}="{v}"' for k, v in sorted(extra.items()))
    return f"{name}{{{inner}}}"

