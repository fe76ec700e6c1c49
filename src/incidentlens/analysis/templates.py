"""Log templates: which message patterns are new or surging in the incident window.

The expensive part runs in the database in one scan: every message is pre-masked (`masking.masked_sql`) and the
lines are grouped by (masked text, service, period) with their count, problem count, first time and a first and a
last real line. Drain3 then mines templates over the DISTINCT masked messages only (most frequent first, so common
lines shape the templates), and the counts are merged per template. A template is `new` when it was never seen
before the baseline's end, `surging` when its rate (per minute) is at least `SURGE_RATIO` times the baseline's and
a Poisson test says that is no accident. A rate is per minute the logs cover (`periods.logged_minutes`): log files
that start an hour after the metrics, or come in pieces around an alert, must not make the baseline look quiet.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from drain3.drain import Drain
from pydantic import BaseModel

from incidentlens.analysis.evidence import Evidence
from incidentlens.analysis.masking import MASK, masked_sql, masks_relation
from incidentlens.analysis.periods import (
    PROBLEM_LEVELS,
    Span,
    UtcTime,
    check_periods,
    covering,
    in_span,
    iso_z,
    logged_minutes,
    sql_in,
    sql_str,
)
from incidentlens.analysis.tails import poisson_at_least
from incidentlens.telemetry import arrays

#: a surging template's window rate is at least this many times its baseline rate ...
SURGE_RATIO = 3.0
#: ... and this unlikely under the baseline rate (one-sided Poisson)
MAX_P_VALUE = 1e-3
#: a reported template has at least this many lines in the window
MIN_WINDOW_COUNT = 3
#: a template with less than this share of the largest excess is listed after the substantial ones
SUBSTANTIAL = 0.1
#: Drain's similarity threshold for the incident's templates (Drain3's default): coarse groups count more lines each,
#: so a surge in a family of variants shows
DRAIN_SIMILARITY = 0.4
#: and for the catalogue of every entry's template (`mine_all_templates`, `incidentlens templates`): the masking
#: already merges what varies, so only near-identical masked messages are merged (chosen leaving each Loghub-2k
#: system out: `benchmarks/bench_templates.py`)
MINING_SIMILARITY = 0.8
DRAIN_DEPTH = 4
SAMPLES = 3
#: masked variants listed in a template's evidence
VARIANTS_SHOWN = 10


class LogTemplate(BaseModel):
    template: str
    status: Literal["new", "surging"]
    count_window: int
    count_baseline: int
    count_problems_window: int
    rate_ratio: float | None  # window rate / baseline rate (per minute); None when the baseline has none
    p_value: float
    first_seen: UtcTime  # in the window
    first_seen_overall: UtcTime  # from the baseline's start on (the scan covers baseline to window end)
    services: list[str]  # in order of their first line in the window
    samples: list[str]
    evidence: str


class TemplateResult(BaseModel):
    templates: list[LogTemplate] = []
    templates_mined: int = 0
    distinct_masked: int = 0
    lines: int = 0
    evidence: list[Evidence] = []


def find_templates(store: Any, window: Span, baseline: Span, *, limit: int = 20) -> TemplateResult:
    """Templates new or surging in the window against the baseline, in reading order (see `_reported`)."""
    window, baseline = check_periods(window, baseline)
    sql = template_counts_sql(window, baseline, masks_relation(store, covering(window, baseline)))
    groups = store.fetch(sql)
    if groups.num_rows == 0:
        return TemplateResult()
    masked = pc.unique(groups["masked"])
    masked_of_row = arrays.ints(pc.index_in(groups["masked"], masked))
    weights = np.bincount(masked_of_row, weights=arrays.floats(groups["n"]), minlength=len(masked))
    template_of_masked, templates = mine_templates(masked, weights)
    groups = groups.append_column("template_id", arrays.int64_array(np.asarray(template_of_masked)[masked_of_row]))
    minutes = logged_minutes(store, window, baseline)
    stats = _template_stats(groups, len(templates), window, baseline, minutes)
    reported = _reported(stats, limit)
    result = TemplateResult(
        templates_mined=len(templates), distinct_masked=len(masked), lines=int(pc.sum(groups["n"]).as_py())
    )
    for template_id in reported:
        item, evidence = _describe(template_id, templates[template_id], stats, groups, sql, window)
        result.templates.append(item)
        result.evidence.append(evidence)
    return result


def template_counts_sql(window: Span, baseline: Span, masks: str) -> str:
    """One scan from the first to the last of the two spans (`other` is the stretch between them): lines per
    (masked message, service, period) with problems, first time and two real lines.

    The regular expression is the costly part and a message repeats many times, so each line looks its masked text
    up in `masks` (`masking.masks_relation` over the same range: its distinct messages masked once). A line whose
    message the lookup lacks (a view that is not deterministic, e.g. one generating ids) is masked on its own."""
    return f"""SELECT masked, service, period, count(*) AS n,
       sum(CASE WHEN level IN {sql_in(PROBLEM_LEVELS)} THEN 1 ELSE 0 END) AS problems,
       min(ts) AS first_seen, arg_min(message, ts) AS first_line, arg_max(message, ts) AS last_line
FROM (
    SELECT coalesce(masks.masked, {masked_sql("message")}) AS masked, message, service, level, ts, period
    FROM (
        SELECT message, service, level, ts,
               CASE WHEN {in_span('ts', window)} THEN 'window'
                    WHEN {in_span('ts', baseline)} THEN 'baseline' ELSE 'other' END AS period
        FROM logs WHERE message IS NOT NULL AND {in_span('ts', covering(window, baseline))}
    ) AS lines
    LEFT JOIN {masks} AS masks ON lines.message = masks.raw
) AS masked_lines
GROUP BY masked, service, period"""


class MinedTemplates(BaseModel):
    """Every entry of the logs view with its template: `templates` (template_id, template, count) and `lines`
    (file, line, template_id; line = the 1-based line of the file where the entry starts), as Arrow tables."""

    model_config = {"arbitrary_types_allowed": True}

    templates: pa.Table
    lines: pa.Table


def mine_all_templates(store: Any, similarity: float = MINING_SIMILARITY) -> MinedTemplates:
    """Templates of every entry in the logs view, whatever its time: the distinct masked messages are counted in
    one scan, Drain3 mines them (heaviest first), and a second scan gives each entry its template id.

    Each entry says where it was read: its file and line there (a CSV record's first line, a Parquet row's number;
    `TelemetryStore.log_origins_sql`); entries not read from a file here (ClickHouse logs) are numbered in view
    order."""
    masks = f"SELECT DISTINCT message AS raw, {masked_sql('message')} AS masked FROM logs WHERE message IS NOT NULL"
    counted = store.fetch(
        f"SELECT masked, count(*) AS n FROM logs JOIN ({masks}) AS masks ON logs.message = masks.raw "
        "GROUP BY masked ORDER BY masked"
    )
    masked = counted["masked"]
    template_of_masked, templates = mine_templates(
        masked, counted["n"].to_numpy().astype(float), similarity=similarity)
    ids = pa.array(np.asarray(template_of_masked, dtype=np.int64) + 1)
    counts = np.bincount(np.asarray(template_of_masked, dtype=np.int64),
                         weights=counted["n"].to_numpy(), minlength=len(templates))
    template_table = pa.table({
        "template_id": pa.array(np.arange(1, len(templates) + 1)),
        "template": pa.array(templates, pa.string()),
        "count": pa.array(counts.astype(np.int64)),
    })
    origins = store.log_origins_sql() or "SELECT CAST(NULL AS VARCHAR) AS file, NULL AS line, message FROM logs"
    con = store.cursor()
    con.register("_template_of_masked", pa.table({"masked": masked, "template_id": ids}))
    entries = f"SELECT file, CAST(coalesce(line, row_number() OVER ()) AS BIGINT) AS line, message FROM ({origins})"
    lines = con.sql(
        f"SELECT file, line, template_id FROM ({entries}) AS entries LEFT JOIN ({masks}) AS masks "
        "ON entries.message = masks.raw "
        "LEFT JOIN _template_of_masked USING (masked) ORDER BY file NULLS LAST, line"
    ).to_arrow_table()
    return MinedTemplates(templates=template_table, lines=lines)


def mine_templates(
    masked: pa.Array, weights: np.ndarray, similarity: float = DRAIN_SIMILARITY
) -> tuple[list[int], list[str]]:
    """Drain3 over distinct masked messages, heaviest first: each message's template index, and the templates."""
    drain = Drain(sim_th=similarity, depth=DRAIN_DEPTH, param_str=MASK)
    texts = masked.to_pylist()
    cluster_of = [0] * len(texts)
    # Ties in weight by text: the query's row order is not fixed, and Drain's clusters depend on the order it reads.
    for i in np.lexsort((np.array(texts, dtype=object), -weights)):
        cluster, _ = drain.add_log_message(texts[i])
        cluster_of[i] = cluster.cluster_id
    # Clusters generalise as they absorb messages: read every template once all messages are in.
    ids = sorted(set(cluster_of))
    position = {cluster_id: k for k, cluster_id in enumerate(ids)}
    templates = [drain.id_to_cluster[cluster_id].get_template() for cluster_id in ids]
    return [position[c] for c in cluster_of], templates


def _template_stats(groups: pa.Table, count: int, window: Span, baseline: Span,
                    minutes: tuple[float, float]) -> dict[str, np.ndarray]:
    """Per template: counts per period, window problems, first times, rate ratio (per logged minute: `minutes` of
    the window and of the baseline), Poisson p-value."""
    ids = arrays.ints(groups["template_id"])
    n = arrays.floats(groups["n"])
    period = arrays.texts(groups["period"])

    def total(mask: np.ndarray, weights: np.ndarray = n) -> np.ndarray:
        return np.bincount(ids[mask], weights=weights[mask], minlength=count)

    is_window, is_baseline = period == "window", period == "baseline"
    window_count, baseline_count = total(is_window), total(is_baseline)
    first_seen = arrays.times(groups["first_seen"])
    never = np.datetime64("9999-12-31T00:00:00", "us")
    first_overall = np.full(count, never)
    np.minimum.at(first_overall, ids, first_seen)
    first_window = np.full(count, never)
    np.minimum.at(first_window, ids[is_window], first_seen[is_window])
    minutes_ratio = minutes[0] / minutes[1]
    # A template absent from the baseline gets half a line there, so its expected count is small but not zero.
    expected = np.maximum(baseline_count, 0.5) * minutes_ratio
    with np.errstate(divide="ignore", invalid="ignore"):
        rate_ratio = np.where(baseline_count > 0, window_count / (baseline_count * minutes_ratio), np.nan)
    return {
        "window": window_count,
        "baseline": baseline_count,
        "problems": total(is_window, arrays.floats(groups["problems"])),
        "first_window": first_window,
        "first_overall": first_overall,
        # new: never seen before the trouble began (the baseline's end; a detected window can start late)
        "is_new": (first_overall >= np.datetime64(min(baseline[1], window[0]), "us")) & (window_count > 0),
        "rate_ratio": rate_ratio,
        "excess": window_count - expected,
        "p_value": poisson_at_least(window_count, expected),
    }


def _reported(stats: dict[str, np.ndarray], limit: int) -> list[int]:
    """Template ids that are new or surging, in the order an SRE reads them: problem templates first, substantial
    ones (at least `SUBSTANTIAL` of the largest excess) before minor ones, new before surging, then by the minute
    they first appeared (in a cascade the cause logs first), then by lines above the expected count."""
    enough = stats["window"] >= MIN_WINDOW_COUNT
    surging = (np.nan_to_num(stats["rate_ratio"], nan=np.inf) >= SURGE_RATIO) & (stats["p_value"] < MAX_P_VALUE)
    chosen = np.flatnonzero(enough & (stats["is_new"] | surging))
    if len(chosen) == 0:
        return []
    excess = stats["excess"][chosen]
    mostly_problems = stats["problems"][chosen] * 2 >= stats["window"][chosen]
    largest = excess[mostly_problems].max() if mostly_problems.any() else excess.max()
    minor = excess < SUBSTANTIAL * largest
    is_new = stats["is_new"][chosen]
    first = np.where(is_new, stats["first_overall"][chosen], stats["first_window"][chosen]).astype("datetime64[m]")
    order = np.lexsort((-excess, first, ~is_new, minor, ~mostly_problems))
    return [int(i) for i in chosen[order][:limit]]


def _describe(
    template_id: int, template: str, stats: dict[str, np.ndarray], groups: pa.Table, sql: str, window: Span
) -> tuple[LogTemplate, Evidence]:
    in_window = (arrays.ints(groups["template_id"]) == template_id) & (arrays.texts(groups["period"]) == "window")
    rows = groups.filter(arrays.bool_array(in_window)).sort_by("first_seen")
    services = list(dict.fromkeys(rows["service"].to_pylist()))
    samples = list(dict.fromkeys(rows["first_line"].to_pylist() + rows["last_line"].to_pylist()))[:SAMPLES]
    variants = list(dict.fromkeys(rows["masked"].to_pylist()))
    rate_ratio = stats["rate_ratio"][template_id]
    fields = {
        "template": template,
        "status": "new" if stats["is_new"][template_id] else "surging",
        "count_window": int(stats["window"][template_id]),
        "count_baseline": int(stats["baseline"][template_id]),
        "count_problems_window": int(stats["problems"][template_id]),
        "rate_ratio": None if np.isnan(rate_ratio) else round(float(rate_ratio), 3),
        "p_value": float(stats["p_value"][template_id]),
        "first_seen": stats["first_window"][template_id].astype(object),
        "first_seen_overall": stats["first_overall"][template_id].astype(object),
        "services": [str(s) for s in services],
        "samples": samples,
    }
    data = {
        **fields,
        "first_seen": iso_z(fields["first_seen"]),
        "first_seen_overall": iso_z(fields["first_seen_overall"]),
        "masked_variants": variants[:VARIANTS_SHOWN],
        "masked_variants_total": len(variants),
        "sample_query": sample_sql(variants[:VARIANTS_SHOWN], window),
        "computation": "the query groups pre-masked lines; Drain3 merged these masked variants into the template",
    }
    title = (
        f"{fields['status']} log template in {', '.join(fields['services'][:3])}: {template[:80]!r} "
        f"x{fields['count_window']} in the window, x{fields['count_baseline']} in the baseline"
    )
    evidence = Evidence.make("template", title, sql, data)
    return LogTemplate(**fields, evidence=evidence.id), evidence


def sample_sql(variants: list[str], window: Span, limit: int = SAMPLES) -> str:
    """Runnable query for real lines of a template in the window (its masked variants), first ones first."""
    return (
        f"SELECT ts, service, level, message FROM logs WHERE {in_span('ts', window)} "
        f"AND {masked_sql('message')} IN ({', '.join(sql_str(v) for v in variants)}) ORDER BY ts LIMIT {limit}"
    )
