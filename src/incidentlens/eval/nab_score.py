"""NAB's own score (numenta/NAB `nab/sweeper.py`, `nab/optimizer.py`, `nab/runner.py`), reimplemented in numpy.

The rules, as NAB applies them to a detector's per-timestamp anomaly scores:
- the first `min(floor(0.15 n), 750)` rows of a file are probationary: not scored at all;
- each row gets a sweep score. Inside a labelled window of width W (rows) whose last row is R, row i scores
  `scaled_sigmoid(-(R - i + 1) / W) * tpWeight / scaled_sigmoid(-1)` (near the full tpWeight at the window's
  left edge, falling towards 0 at its right edge). Outside every window, row i scores
  `scaled_sigmoid(|R_prev - i| / (W_prev - 1)) * fpWeight` after a window (R_prev, W_prev the previous window's
  last row and width: a detection just after a window costs little), and `-fpWeight` before the first window;
- at a threshold, every row whose anomaly score is >= the threshold is a detection. A window scores the best sweep
  score of its detections (its earliest), or `-fnWeight` without one; every detection outside the windows adds its
  (negative) sweep score;
- one threshold for the whole corpus per profile: the one with the highest total (NAB's optimizer sweeps every
  distinct anomaly score);
- normalised: `100 * (score - null) / (perfect - null)`, null = every window missed (`-fnWeight` each), perfect =
  every window found at its left edge (`tpWeight` each).
The profiles' weights come from NAB's `config/profiles.json`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from incidentlens.errors import InputError

PROBATION_FRACTION = 0.15
PROBATION_CAP_ROWS = 750  # NAB: min(floor(0.15 n), 0.15 * 5000)
PROFILE_NAMES = {"standard": "standard", "reward_low_FP_rate": "reward_low_FP", "reward_low_FN_rate": "reward_low_FN"}


@dataclass(frozen=True)
class CostMatrix:
    tp: float
    fp: float
    fn: float


def load_profiles(data_dir: Path) -> dict[str, CostMatrix]:
    """NAB's cost profiles from `config/profiles.json`, keyed by the short names used in our JSON."""
    path = data_dir / "config" / "profiles.json"
    if not path.is_file():
        raise InputError(f"{path}: not found (NAB's cost profiles)")
    raw = json.loads(path.read_text())
    return {
        PROFILE_NAMES.get(name, name): CostMatrix(tp=float(m["CostMatrix"]["tpWeight"]),
                                                  fp=float(m["CostMatrix"]["fpWeight"]),
                                                  fn=float(m["CostMatrix"]["fnWeight"]))
        for name, m in raw.items()
    }


def scaled_sigmoid(position: np.ndarray) -> np.ndarray:
    """NAB's scaled sigmoid: 2 / (1 + e^(5 x)) - 1, and -1 from x >= 3 on."""
    position = np.asarray(position, dtype=np.float64)
    return np.where(position >= 3.0, -1.0, 2.0 / (1.0 + np.exp(np.clip(5.0 * position, -50, 50))) - 1.0)


MAX_TP = float(scaled_sigmoid(np.array(-1.0)))


def probation_rows(n: int) -> int:
    return int(min(np.floor(PROBATION_FRACTION * n), PROBATION_CAP_ROWS))


@dataclass(frozen=True)
class ScoredFile:
    """One file as NAB's sweeper sees it: the rows past probation with a positive anomaly score (the only ones a
    positive threshold can make detections), each with its window (-1 outside) and its sweep score in
    tpWeight = fpWeight = 1 units (the weights are applied per profile), and every window scored."""

    name: str
    anomaly: np.ndarray  # anomaly score per scored row
    window: np.ndarray  # global window id per scored row, -1 outside every window
    tp_part: np.ndarray  # unweighted in-window sweep score / MAX_TP (0 outside)
    fp_part: np.ndarray  # unweighted out-of-window sweep score (0 inside)
    windows: np.ndarray  # the global ids of the windows this file contributes (those with a scored row)


def sweep_file(name: str, ts: np.ndarray, anomaly: np.ndarray, windows: np.ndarray, first_id: int) -> ScoredFile:
    """Per-row sweep scores of one file; `windows` (k x 2 datetime64) must start and end on rows of `ts`, as NAB's
    do (a window whose edges are not rows is snapped to the rows inside it)."""
    n = len(ts)
    t = ts.astype("datetime64[ns]").astype(np.int64)
    left = np.searchsorted(t, windows[:, 0].astype("datetime64[ns]").astype(np.int64), side="left")
    right = np.searchsorted(t, windows[:, 1].astype("datetime64[ns]").astype(np.int64), side="right") - 1
    valid = right >= left
    left, right = left[valid], right[valid]
    index = np.arange(n)
    window_of = np.full(n, -1)
    for k, (a, b) in enumerate(zip(left, right, strict=True)):
        window_of[a:b + 1] = k
    width = (right - left + 1).astype(np.float64)
    inside = window_of >= 0
    tp_part = np.zeros(n)
    k_in = window_of[inside]
    tp_part[inside] = scaled_sigmoid(-(right[k_in] - index[inside] + 1) / width[k_in]) / MAX_TP
    # Outside: the previous window's last row and width (none: position 3, i.e. -1).
    previous = np.searchsorted(right, index, side="left") - 1  # windows whose last row is before i
    fp_position = np.full(n, 3.0)
    after = previous >= 0
    prev_width = np.maximum(width[previous[after]] - 1, 1e-9)
    fp_position[after] = np.abs(right[previous[after]] - index[after]) / prev_width
    fp_part = np.where(inside, 0.0, scaled_sigmoid(fp_position))
    start = probation_rows(n)
    ids = np.where(window_of >= 0, window_of + first_id, -1)[start:]
    scores = np.asarray(anomaly, dtype=np.float64)[start:]
    candidate = scores > 0  # a row scored 0 is never a detection at any threshold the sweep tries
    return ScoredFile(name=name, anomaly=scores[candidate], window=ids[candidate],
                      tp_part=tp_part[start:][candidate], fp_part=fp_part[start:][candidate],
                      windows=np.unique(ids[ids >= 0]))


@dataclass(frozen=True)
class NabScore:
    profile: str
    threshold: float
    raw: float
    normalized: float
    windows: int
    true_positives: int  # windows with a detection
    false_positive_rows: int


def score_at(files: list[ScoredFile], threshold: float, cost: CostMatrix) -> tuple[float, int, int, int]:
    """NAB's raw score of the files at one threshold: (score, windows, windows found, false-positive rows)."""
    window_ids = np.concatenate([f.windows for f in files]) if files else np.array([], int)
    best = np.full(int(window_ids.max()) + 1 if len(window_ids) else 0, -cost.fn)
    false_rows, fp_total = 0, 0.0
    for f in files:
        detected = f.anomaly >= threshold
        in_window = detected & (f.window >= 0)
        fp_rows = detected & (f.window < 0)
        false_rows += int(fp_rows.sum())
        fp_total += float(f.fp_part[fp_rows].sum()) * cost.fp
        np.maximum.at(best, f.window[in_window], f.tp_part[in_window] * cost.tp)
    scored = best[window_ids]
    return float(scored.sum()) + fp_total, len(window_ids), int((scored > -cost.fn).sum()), false_rows


def candidate_thresholds(files: list[ScoredFile]) -> np.ndarray:
    """Every distinct positive anomaly score (NAB sweeps them all), plus one above the largest (detect nothing)."""
    values = np.unique(np.concatenate([f.anomaly[f.anomaly > 0] for f in files]) if files else np.array([]))
    top = float(values.max()) * 1.01 + 1 if len(values) else 1.1
    return np.concatenate((values, [top]))


def optimise_threshold(files: list[ScoredFile], cost: CostMatrix) -> float:
    """The threshold with the best total score over the files (NAB's per-detector, per-profile optimisation)."""
    thresholds = candidate_thresholds(files)
    scores = [score_at(files, float(t), cost)[0] for t in thresholds]
    return float(thresholds[int(np.argmax(scores))])


def nab_score(files: list[ScoredFile], threshold: float, cost: CostMatrix, profile: str) -> NabScore:
    raw, windows, found, false_rows = score_at(files, threshold, cost)
    null, perfect = -cost.fn * windows, cost.tp * windows
    normalized = 100 * (raw - null) / (perfect - null) if perfect != null else 0.0
    return NabScore(profile=profile, threshold=threshold, raw=raw, normalized=normalized, windows=windows,
                    true_positives=found, false_positive_rows=false_rows)
