"""Chart geometry for the HTML review, computed server-side with numpy.

These functions turn series and findings into coordinates, tick labels and SVG path strings; the Jinja template
draws them as inline SVG (autoescaped), so the page needs no script and no network to show its charts.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from incidentlens.analysis.series import MetricSeries

WIDTH, HEIGHT = 560, 222
LEFT, RIGHT, TOP, BOTTOM = 56, 14, 46, 28  # TOP holds three rows of marker labels
_LABEL_GAP = 44  # px: closer marker labels go on another row
_LABEL_ROWS = 3
_NICE_MINUTES = np.array([1, 2, 5, 10, 15, 30, 60, 120, 180, 360, 720, 1440])


@dataclass(frozen=True)
class Tick:
    pos: float
    label: str


@dataclass(frozen=True)
class Marker:
    x: float
    label: str
    kind: str  # onset | peak | recovery | trigger
    row: int = 0  # label row, so neighbouring labels do not overlap


@dataclass
class LineChart:
    title: str
    line: str
    area: str
    shade_x: float | None
    shade_width: float
    markers: list[Marker]
    x_ticks: list[Tick]
    y_ticks: list[Tick]
    baseline_y: float | None
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM


@dataclass(frozen=True)
class Bar:
    label: str
    y: float
    window_width: float
    baseline_width: float
    window_label: str
    baseline_label: str


@dataclass
class BarChart:
    bars: list[Bar]
    width: int
    height: int
    label_width: int
    bar_height: float


@dataclass(frozen=True)
class Dot:
    """One timeline entry, or a run of entries too close in time to tell apart ("2–8")."""

    x: float
    y: float
    label: str
    phase: str
    width: float


@dataclass
class TimelineChart:
    dots: list[Dot]
    shade_x: float | None
    shade_width: float
    lanes_bottom: float
    ticks: list[Tick] = field(default_factory=list)
    width: int = 1000

    @property
    def height(self) -> int:
        return int(self.lanes_bottom + 26)


_LANE_TOP, _LANE_STEP, _MAX_LANES, _CLUSTER_PX = 16.0, 20.0, 4, 12.0


def line_chart(series: MetricSeries, window: tuple[dt.datetime, dt.datetime] | None,
               view: tuple[dt.datetime, dt.datetime], markers: dict[str, dt.datetime | None],
               baseline: float | None = None) -> LineChart:
    """A line chart of `series` over `view`, the incident `window` (if any) shaded and onset/peak/recovery marked."""
    t0, t1 = (_epoch_s(np.datetime64(_naive(v))) for v in view)
    x_of = _scale(t0, t1, LEFT, WIDTH - RIGHT)
    values = series.value
    lo = min(0.0, float(np.nanmin(values))) if values.size else 0.0
    hi = float(np.nanmax(values)) if values.size else 1.0
    if baseline is not None:
        hi = max(hi, baseline)
    step = _nice_step((hi - lo) / 4 or 1.0)
    hi = lo + step * max(1, np.ceil((hi - lo) / step))
    y_of = _scale(lo, hi, HEIGHT - BOTTOM, TOP)
    x = x_of(_epoch_s(series.t))
    y = y_of(values)
    points = " L".join(f"{a:.1f},{b:.1f}" for a, b in zip(x, y, strict=True))
    line = f"M{points}" if points else ""
    area = f"{line} L{x[-1]:.1f},{HEIGHT - BOTTOM} L{x[0]:.1f},{HEIGHT - BOTTOM} Z" if points else ""
    ws, we = (float(x_of(_epoch_s(np.datetime64(_naive(w))))) for w in window) if window else (0.0, 0.0)
    ws, we = max(ws, LEFT), min(we, WIDTH - RIGHT)
    return LineChart(
        title=series.name, line=line, area=area,
        shade_x=ws if we > ws else None, shade_width=max(0.0, we - ws),
        markers=_stagger([Marker(float(x_of(_epoch_s(np.datetime64(_naive(when))))), kind, kind)
                          for kind, when in markers.items()
                          if when is not None and _naive(view[0]) <= _naive(when) <= _naive(view[1])]),
        x_ticks=_time_ticks(t0, t1, x_of),
        y_ticks=[Tick(float(y_of(v)), _compact(v, step, series.name)) for v in np.arange(lo, hi + step / 2, step)],
        baseline_y=float(y_of(baseline)) if baseline is not None else None,
    )


def _stagger(markers: list[Marker]) -> list[Marker]:
    """Each marker's label on the first row where it clears the last label placed on that row (trigger, onset and
    peak minutes apart would otherwise print over each other); when none does, the row with the most room."""
    placed: list[Marker] = []
    last_x = [-1e9] * _LABEL_ROWS
    for m in sorted(markers, key=lambda m: m.x):
        row = next((r for r in range(_LABEL_ROWS) if m.x - last_x[r] >= _LABEL_GAP), int(np.argmin(last_x)))
        last_x[row] = m.x
        placed.append(Marker(m.x, m.label, m.kind, row))
    return placed


def bar_chart(rows: list[tuple[str, float, float]], percent: bool = True) -> BarChart:
    """Paired horizontal bars: (label, value in the incident, value before it) per row."""
    # 196 px holds a 26-character label at 11.5 px even in a wide fallback font (DejaVu Sans)
    width, label_width, bar_height, gap = 560, 196, 11.0, 14.0
    top = max([max(w, b) for _, w, b in rows] + [1e-12])
    scale = (width - label_width - 70) / top
    row_height = 2 * bar_height + gap
    bars = [Bar(label=label, y=i * row_height + 6, window_width=max(1.0, w * scale), baseline_width=max(1.0, b * scale),
                window_label=_share(w) if percent else _count(w), baseline_label=_share(b) if percent else _count(b))
            for i, (label, w, b) in enumerate(rows)]
    return BarChart(bars=bars, width=width, height=int(len(rows) * row_height + 10), label_width=label_width,
                    bar_height=bar_height)


def timeline_chart(times: list[dt.datetime], phases: list[str],
                   window: tuple[dt.datetime, dt.datetime] | None) -> TimelineChart:
    """Numbered dots on a time axis, one per timeline entry, the incident window shaded."""
    epochs = _epoch_s(np.array([np.datetime64(_naive(t)) for t in times], dtype="datetime64[us]"))
    if window is not None:
        bounds = np.concatenate([epochs, [_epoch_s(np.datetime64(_naive(w))) for w in window]])
    else:
        bounds = epochs
    span = float(bounds.max() - bounds.min()) or 60.0
    t0, t1 = float(bounds.min()) - 0.04 * span, float(bounds.max()) + 0.04 * span
    x_of = _scale(t0, t1, 20, 980)
    shade = None if window is None else [float(x_of(_epoch_s(np.datetime64(_naive(w))))) for w in window]
    clusters = _clusters([float(x) for x in x_of(epochs)], phases)
    lanes = _lanes(clusters)
    dots = [Dot(x, _LANE_TOP + lane * _LANE_STEP, label, phase, width)
            for (x, label, phase, width), lane in zip(clusters, lanes, strict=True)]
    return TimelineChart(
        dots=dots, shade_x=shade[0] if shade else None, shade_width=(shade[1] - shade[0]) if shade else 0.0,
        lanes_bottom=_LANE_TOP + max(lanes, default=0) * _LANE_STEP + 12, ticks=_time_ticks(t0, t1, x_of, count=8),
    )


def _clusters(xs: list[float], phases: list[str]) -> list[tuple[float, str, str, float]]:
    """Runs of entries within a few pixels of each other as one marker: (x, label, phase, width)."""
    runs: list[list[int]] = []
    for i, x in enumerate(xs):
        if runs and x - xs[runs[-1][0]] <= _CLUSTER_PX:
            runs[-1].append(i)
        else:
            runs.append([i])
    clusters = []
    for run in runs:
        label = str(run[0] + 1) if len(run) == 1 else f"{run[0] + 1}–{run[-1] + 1}"
        x = sum(xs[i] for i in run) / len(run)
        clusters.append((x, label, phases[run[0]], max(16.0, 7.0 + 6.2 * len(label))))
    return clusters


def _lanes(clusters: list[tuple[float, str, str, float]]) -> list[int]:
    """A lane per marker so that neighbours stack instead of overlapping (first free lane, in time order)."""
    ends = [-1e9] * _MAX_LANES
    lanes = []
    for x, _, _, width in clusters:
        left = x - width / 2
        lane = next((i for i, end in enumerate(ends) if left >= end + 3), int(np.argmin(ends)))
        ends[lane] = x + width / 2
        lanes.append(lane)
    return lanes


def _scale(d0: float, d1: float, r0: float, r1: float):
    span = (d1 - d0) or 1.0
    return lambda v: r0 + (np.asarray(v, dtype=float) - d0) * (r1 - r0) / span


def _epoch_s(t: np.ndarray | np.datetime64) -> np.ndarray:
    return np.asarray(t, dtype="datetime64[us]").astype("int64") / 1e6


def _naive(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(dt.UTC).replace(tzinfo=None) if moment.tzinfo else moment


def _nice_step(raw: float) -> float:
    magnitude = 10 ** np.floor(np.log10(raw))
    return float(magnitude * next(m for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw))


def _time_ticks(t0: float, t1: float, x_of, count: int = 6) -> list[Tick]:
    minutes = (t1 - t0) / 60 / count
    step = int(_NICE_MINUTES[min(np.searchsorted(_NICE_MINUTES, minutes), _NICE_MINUTES.size - 1)]) * 60
    first = np.ceil(t0 / step) * step
    ticks = np.arange(first, t1, step)
    fmt = "%H:%M" if t1 - t0 < 86400 * 2 else "%m-%d %H:%M"
    return [Tick(float(x_of(t)), dt.datetime.fromtimestamp(t, dt.UTC).strftime(fmt)) for t in ticks]


def _compact(value: float, step: float, name: str) -> str:
    """A tick label with just enough decimals to tell neighbouring ticks apart (ratios as percentages)."""
    is_ratio = any(word in name for word in ("ratio", "rate")) and "rps" not in name and abs(step) <= 1
    shown, shown_step, suffix = (value * 100, step * 100, "%") if is_ratio else (value, step, "")
    if not is_ratio and abs(value) >= 1000 and step >= 100:
        return f"{value / 1000:g}k"
    decimals = next((d for d in range(7) if abs(round(shown_step, d) - shown_step) <= 1e-9 * shown_step), 6)
    return f"{shown:.{decimals}f}{suffix}"


def _share(value: float) -> str:
    return f"{value * 100:.0f}%"


def _count(value: float) -> str:
    return f"{value:,.0f}"
