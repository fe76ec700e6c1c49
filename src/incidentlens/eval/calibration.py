"""Calibration of stated confidences: of the hypotheses given about X% confidence, about X% should be right.

Every hypothesis a run reports is one (confidence, right) pair. The pairs are put in bins of confidence; per bin the
mean confidence and the share right (the reliability table). The expected calibration error (ECE) is the mean gap
between the two, weighted by how many hypotheses each bin holds: 0 is perfect, and a tool that says 70% and is right
30% of the time shows a large one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pydantic import BaseModel

#: bin edges of confidence: 0-10%, 10-30%, 30-50%, 50-70%, 70-90%, 90-100%
EDGES = (0.0, 0.1, 0.3, 0.5, 0.7, 0.9, 1.0)


class CalibrationBin(BaseModel):
    low: float
    high: float
    hypotheses: int
    mean_confidence: float | None
    share_right: float | None


class Calibration(BaseModel):
    """The reliability table and the expected calibration error over `hypotheses` (confidence, right) pairs."""

    hypotheses: int
    ece: float | None
    bins: list[CalibrationBin]

    def lines(self) -> list[str]:
        """One line per non-empty bin: `50-70%: 12 hypotheses, 61% confident on average, 58% right`."""
        return [f"{b.low:.0%}-{b.high:.0%}: {b.hypotheses} hypotheses, {_pct(b.mean_confidence)} confident on "
                f"average, {_pct(b.share_right)} right" for b in self.bins if b.hypotheses]


def _pct(share: float) -> str:
    return f"{share:.1%}" if 0 < share < 0.1 else f"{share:.0%}"


def calibration(pairs: Iterable[tuple[float, bool]]) -> Calibration:
    """The reliability table of (confidence, right) pairs (confidence 0..1)."""
    data = list(pairs)
    confidence = np.array([c for c, _ in data], dtype=float)
    right = np.array([r for _, r in data], dtype=float)
    which = np.clip(np.digitize(confidence, EDGES[1:-1], right=False), 0, len(EDGES) - 2)
    bins, gaps = [], 0.0
    for k in range(len(EDGES) - 1):
        inside = which == k
        count = int(inside.sum())
        mean = float(confidence[inside].mean()) if count else None
        share = float(right[inside].mean()) if count else None
        if count:
            gaps += count * abs(mean - share)
        bins.append(CalibrationBin(low=EDGES[k], high=EDGES[k + 1], hypotheses=count,
                                   mean_confidence=None if mean is None else round(mean, 4),
                                   share_right=None if share is None else round(share, 4)))
    ece = round(gaps / len(data), 4) if data else None
    return Calibration(hypotheses=len(data), ece=ece, bins=bins)
