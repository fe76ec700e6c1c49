"""Chart geometry for the HTML review, computed server-side with numpy.

These functions turn series and findings into coordinates, tick labels and SVG path strings; the Jinja template
draws them as inline SVG (autoescaped), so the page needs no script and no network to show its charts.
"""

from __future__ import annotations

import datetime as dt
import textwrap
from dataclasses import dataclass, field

import numpy as np

from incidentlens.analysis.series import MetricSeries

WIDTH, HEIGHT = 520, 236
LEFT, RIGHT, TOP, BOTTOM = 60, 16, 50, 34  # TOP holds three rows of marker labels, BOTTOM the time ticks
_LABEL_ROWS = 3
_CHAR_PX = 6.6  # width of a character of the charts' 12 px labels (a wide fallback font included)
#: an incident window narrower than this on its chart gets a zoomed panel of its own
MIN_SHADE_PX = 40.0
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
    unit: str | None
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
    zoom: LineChart | None = None  # a short window drawn again on its own time scale
    zoom_note: str = ""


@dataclass(frozen=True)
class Bar:
    """One row: its label wrapped onto whole lines above the two bars (nothing cut), the incident's bar, the
    baseline's."""

    lines: list[str]
    label_y: float
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
    label_width: int  # the bars' left edge
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
               baseline: float | None = None, title: str | None = None, unit: str | None = None) -> LineChart:
    """A line chart of `series` over `view`, the incident `window` (if any) shaded and its moments marked (`markers`:
    label -> time; labels closer than their own width share a row no more: they move up a row, or join as one
    label). `unit` labels the value axis; a percentage unit turns ratios into percent ticks."""
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
        title=title or series.name, unit=unit, line=line, area=area,
        shade_x=ws if we > ws else None, shade_width=max(0.0, we - ws),
        markers=_stagger([Marker(float(x_of(_epoch_s(np.datetime64(_naive(when))))), label, _kind(label))
                          for label, when in markers.items()
                          if when is not None and _naive(view[0]) <= _naive(when) <= _naive(view[1])]),
        x_ticks=_time_ticks(t0, t1, x_of),
        y_ticks=[Tick(float(y_of(v)), _compact(v, step, series.name)) for v in np.arange(lo, hi + step / 2, step)],
        baseline_y=float(y_of(baseline)) if baseline is not None else None,
    )


def _kind(label: str) -> str:
    """The marker's colour class: onset (start, moved), peak (peak, trough), recovery, trigger."""
    return {"start": "onset", "given start": "onset", "moved": "onset", "trough": "peak"}.get(label, label)


def _stagger(markers: list[Marker]) -> list[Marker]:
    """Each label on the first row where it clears the labels already there (trigger, start and peak minutes apart
    would otherwise print over each other); when no row has room, it joins the label it would overlap ("peak ·
    recovery"), so two labels never print over each other."""
    rows: list[list[Marker]] = [[] for _ in range(_LABEL_ROWS)]
    for m in sorted(markers, key=lambda m: m.x):
        row = next((r for r in range(_LABEL_ROWS) if not rows[r] or _clear(rows[r][-1], m)), None)
        if row is not None:
            rows[row].append(Marker(m.x, m.label, m.kind, row))
            continue
        nearest = min(range(_LABEL_ROWS), key=lambda r: m.x - rows[r][-1].x)
        last = rows[nearest][-1]
        rows[nearest][-1] = Marker(last.x, f"{last.label} · {m.label}", last.kind, nearest)
        placed_line = Marker(m.x, "", m.kind, nearest)  # its line is still drawn, its label joined the other
        rows[nearest].insert(-1, placed_line)
    return sorted((m for row in rows for m in row), key=lambda m: m.x)


def _clear(left: Marker, right: Marker) -> bool:
    """Whether two centred labels leave a gap between them."""
    return right.x - left.x >= (len(left.label) + len(right.label)) * _CHAR_PX / 2 + 6


def bar_chart(rows: list[tuple[str, float, float]], percent: bool = True) -> BarChart:
    """Paired horizontal bars: (label, value in the incident, value before it) per row; each label in full, wrapped
    onto as many lines as it needs above its bars."""
    width, left, bar_height, line_height, gap = 560, 4, 12.0, 15.0, 12.0
    top = max([max(w, b) for _, w, b in rows] + [1e-12])
    scale = (width - left - 64) / top
    chars = int((width - left) / _CHAR_PX)
    bars, y = [], 4.0
    for label, w, b in rows:
        lines = textwrap.wrap(label, chars, break_long_words=True, break_on_hyphens=False) or [""]
        label_y = y + line_height - 3
        y += len(lines) * line_height + 2
        bars.append(Bar(lines=lines, label_y=label_y, y=y, window_width=max(1.0, w * scale),
                        baseline_width=max(1.0, b * scale), window_label=_share(w) if percent else _count(w),
                        baseline_label=_share(b) if percent else _count(b)))
        y += 2 * bar_height + 1 + gap
    return BarChart(bars=bars, width=width, height=int(y), label_width=left, bar_height=bar_height)


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
    """A share as the review's text writes it (0.3%, not 0%)."""
    value *= 100
    if 0 < abs(value) < 0.1:
        return f"{value:.2g}%"
    return f"{value:.1f}%" if abs(value) < 10 else f"{value:.0f}%"


def _count(value: float) -> str:
    return f"{value:,.0f}"
