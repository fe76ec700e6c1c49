"""Score the log template mining on Loghub-2k: grouping accuracy against the corrected ground truth.

Each system's raw `<S>_2k.log` is read the way a user's file is read (`load_telemetry(logs=...)`: the line format
detected from the file, no per-system settings) and mined by `mine_all_templates`, as `incidentlens templates`
does. The structured CSV (`<S>_2k.log_structured_corrected.csv`, one row per line: `LineId`, `EventId`) is read
only to score.

Grouping accuracy (GA): a line is right when the set of lines in its mined group equals the set of lines sharing
its ground-truth EventId; GA = right lines / all lines. A line the reader joined to the entry above it (taken for a
continuation) has no group of its own and counts as wrong.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from incidentlens.analysis.templates import MINING_SIMILARITY, mine_all_templates
from incidentlens.errors import InputError
from incidentlens.telemetry import load_telemetry
from incidentlens.telemetry.columns import literal

#: Drain's published grouping accuracy on Loghub-2k (Zhu et al., ICSE-SEIP 2019; the 8 systems here)
DRAIN_PUBLISHED = {"HDFS": 0.998, "Spark": 0.920, "OpenStack": 0.733, "BGL": 0.963, "Linux": 0.690,
                   "Android": 0.911, "Apache": 1.0, "Proxifier": 0.527}


@dataclass
class SystemScore:
    system: str
    lines: int
    templates_truth: int
    templates_mined: int
    grouping_accuracy: float


@dataclass
class TemplateReport:
    similarity: float
    systems: list[SystemScore] = field(default_factory=list)

    @property
    def average(self) -> float:
        return sum(s.grouping_accuracy for s in self.systems) / len(self.systems) if self.systems else 0.0

    def to_dict(self) -> dict:
        return {
            "similarity": self.similarity,
            "average_grouping_accuracy": round(self.average, 4),
            "systems": [vars(s) | {"grouping_accuracy": round(s.grouping_accuracy, 4),
                                   "drain_published": DRAIN_PUBLISHED.get(s.system)} for s in self.systems],
        }


def loghub_systems(data: Path) -> list[str]:
    """The systems of a Loghub-2k directory: subdirectories holding `<S>_2k.log` and its structured CSV."""
    if not data.is_dir():
        raise InputError(f"{data}: no such directory (expected Loghub-2k: <S>/<S>_2k.log per system)")
    systems = sorted(d.name for d in data.iterdir() if (d / f"{d.name}_2k.log").is_file()
                     and (d / f"{d.name}_2k.log_structured_corrected.csv").is_file())
    if not systems:
        raise InputError(f"{data}: no <S>/<S>_2k.log with <S>_2k.log_structured_corrected.csv inside")
    return systems


def evaluate_templates(data: Path, systems: list[str] | None = None,
                       similarity: float = MINING_SIMILARITY) -> TemplateReport:
    """Grouping accuracy of the mined templates for each system (all of `data`'s by default)."""
    if not 0 < similarity <= 1:  # a share of a line's tokens; NaN fails this too
        raise InputError(f"--similarity {similarity:g}: Drain's similarity threshold must be above 0 and at most 1")
    report = TemplateReport(similarity=similarity)
    for system in systems or loghub_systems(data):
        folder = data / system
        store = load_telemetry(logs=str(folder / f"{system}_2k.log"))
        mined = mine_all_templates(store, similarity=similarity)
        truth_csv = folder / f"{system}_2k.log_structured_corrected.csv"
        truth = duckdb.connect().sql(
            f"SELECT LineId, EventId FROM read_csv({literal(str(truth_csv))}, all_varchar=true)").to_arrow_table()
        report.systems.append(score_system(system, mined.lines, truth))
    return report


def score_system(system: str, lines: pa.Table, truth: pa.Table) -> SystemScore:
    """GA of mined `lines` (line, template_id) against `truth` (LineId, EventId)."""
    con = duckdb.connect()
    con.register("mined", lines)
    con.register("truth", truth)
    row = con.execute("""
        WITH joined AS (
            SELECT CAST(t.LineId AS BIGINT) AS line, t.EventId AS truth, m.template_id AS mined
            FROM truth t LEFT JOIN mined m ON m.line = CAST(t.LineId AS BIGINT)
        ),
        pairs AS (SELECT truth, mined, count(*) AS n FROM joined WHERE mined IS NOT NULL GROUP BY ALL),
        sizes AS (
            SELECT p.*, sum(n) OVER (PARTITION BY truth) AS truth_size, sum(n) OVER (PARTITION BY mined) AS mined_size
            FROM pairs p
        )
        SELECT (SELECT count(*) FROM joined),
               (SELECT count(DISTINCT truth) FROM joined),
               (SELECT count(DISTINCT mined) FROM joined),
               coalesce((SELECT sum(n) FROM sizes WHERE n = truth_size AND n = mined_size
                         AND truth_size = (SELECT count(*) FROM joined j WHERE j.truth = sizes.truth)), 0)
    """).fetchone()
    total, truth_groups, mined_groups, right = row
    return SystemScore(system, int(total), int(truth_groups), int(mined_groups), float(right) / total if total else 0)
