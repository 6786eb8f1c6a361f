"""Plots as inline SVG, drawn on the server: no JavaScript, nothing fetched.

Each function returns markup ready for a template (``Markup``: every text in it is
escaped here). Colours and strokes come from the stylesheet through class names, so a
page's Content-Security-Policy needs no inline styles.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from markupsafe import Markup, escape

from tenancy_fixtures.monitoring.forecast import LimitForecast
from tenancy_fixtures.monitoring.limits import LimitUse

__all__ = ["Frame", "bar_chart", "forecast_plot", "human", "throughput_plot", "usage_bar"]

WIDTH, HEIGHT = 640, 220
LEFT, RIGHT, TOP, BOTTOM = 68, 16, 14, 34
_DAY = 86_400.0


def human(value: float, unit: str = "") -> str:
    """``1536, "B"`` -> ``1.5 KiB``; other values with thousands separators."""
    if unit == "B":
        size = float(value)
        for prefix in ("B", "KiB", "MiB", "GiB", "TiB"):
            if abs(size) < 1024 or prefix == "TiB":
                return f"{size:,.0f} B" if prefix == "B" else f"{size:,.1f} {prefix}"
            size /= 1024
    if abs(value) >= 100 or float(value).is_integer():
        return f"{value:,.0f}"
    return f"{value:,.2f}"


@dataclass(frozen=True)
class Frame:
    """Scales from time and value to pixels of one plot."""

    start: datetime
    end: datetime
    top: float
    unit: str = ""

    def x(self, at: datetime) -> float:
        span = (self.end - self.start).total_seconds() or 1.0
        return LEFT + (at - self.start).total_seconds() / span * (WIDTH - LEFT - RIGHT)

    def y(self, value: float) -> float:
        return TOP + (1 - value / (self.top or 1.0)) * (HEIGHT - TOP - BOTTOM)

    def axes(self) -> str:
        """The frame, four value ticks and three time ticks."""
        parts = [
            f'<line class="axis" x1="{LEFT}" y1="{HEIGHT - BOTTOM}" '
            f'x2="{WIDTH - RIGHT}" y2="{HEIGHT - BOTTOM}"/>',
            f'<line class="axis" x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{HEIGHT - BOTTOM}"/>',
        ]
        for i in range(5):
            value = self.top * i / 4
            y = self.y(value)
            parts.append(
                f'<line class="grid" x1="{LEFT}" y1="{y:.1f}" x2="{WIDTH - RIGHT}" y2="{y:.1f}"/>'
                f'<text class="tick" x="{LEFT - 6}" y="{y + 4:.1f}" text-anchor="end">'
                f"{escape(human(value, self.unit))}</text>"
            )
        span = self.end - self.start
        fmt = "%m-%d %H:%M" if span < timedelta(days=2) else "%Y-%m-%d"
        for i in range(3):
            at = self.start + span * i / 2
            anchor = ("start", "middle", "end")[i]
            parts.append(
                f'<text class="tick" x="{self.x(at):.1f}" y="{HEIGHT - BOTTOM + 18}" '
                f'text-anchor="{anchor}">{escape(at.strftime(fmt))}</text>'
            )
        return "".join(parts)


def _svg(label: str, body: str) -> Markup:
    # Safe: numbers are formatted here and every text went through escape().
    return Markup(  # noqa: S704
        f'<svg class="plot" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
        f"<title>{escape(label)}</title>{body}</svg>"
    )


def _series(frame: Frame, points: Sequence[tuple[datetime, float]], css: str) -> str:
    path = " ".join(f"{frame.x(t):.1f},{frame.y(v):.1f}" for t, v in points)
    dots = "".join(
        f'<circle class="{css}" cx="{frame.x(t):.1f}" cy="{frame.y(v):.1f}" r="3">'
        f"<title>{escape(t.strftime('%Y-%m-%d %H:%M:%S'))}: {escape(human(v, frame.unit))}"
        "</title></circle>"
        for t, v in points
    )
    return f'<polyline class="{css}" points="{path}"/>{dots}'


def _time_range(times: Sequence[datetime]) -> tuple[datetime, datetime]:
    start, end = min(times), max(times)
    if end - start < timedelta(minutes=1):
        return start - timedelta(minutes=1), end + timedelta(minutes=1)
    return start, end


def throughput_plot(
    points: Sequence[tuple[datetime, float]], anomalies: Sequence[datetime] = ()
) -> Markup | None:
    """Rows per second of each load over time; anomalous loads ringed. ``None`` without
    a load to show."""
    if not points:
        return None
    start, end = _time_range([t for t, _ in points])
    frame = Frame(start, end, max(v for _, v in points) * 1.1 or 1.0)
    rings = "".join(
        f'<circle class="anomaly" cx="{frame.x(t):.1f}" cy="{frame.y(v):.1f}" r="7"/>'
        for t, v in points
        if t in set(anomalies)
    )
    return _svg(
        "Load throughput, rows per second", frame.axes() + _series(frame, points, "usage") + rings
    )


def _horizon(span_days: float, forecast: LimitForecast) -> float:
    """Days after the newest point the plot shows: enough to see the crossing when it
    is near, never so far that the history shrinks to a dot."""
    days = max(span_days * 0.5, 1 / 24)
    cap = span_days * 10 + 30
    for candidate in (forecast.days_to_limit, forecast.days_latest):
        if candidate is not None and candidate > 0:
            days = max(days, min(candidate * 1.15, cap))
    return days


def _edge(
    frame: Frame, start: tuple[datetime, float], reach: float | None, maximum: float
) -> tuple[float, float]:
    """The end, in pixels, of a line from ``start`` reaching ``maximum`` after ``reach``
    days (flat when it never does), cut at the frame's end."""
    at, level = start
    limit_at = at + timedelta(days=reach) if reach is not None else None
    if limit_at is not None and limit_at <= frame.end:
        return frame.x(limit_at), frame.y(maximum)
    if reach is None or reach <= 0:
        return frame.x(frame.end), frame.y(level)
    share = (frame.end - at).total_seconds() / (reach * _DAY)
    return frame.x(frame.end), frame.y(level + (maximum - level) * share)


def forecast_plot(
    history: Sequence[tuple[datetime, float]], forecast: LimitForecast, unit: str = ""
) -> Markup | None:
    """One limit: its history, the limit line, the trend to the day it is reached and
    the band of that day. ``None`` without history."""
    if not history:
        return None
    start, last = _time_range([t for t, _ in history])
    span_days = (last - start).total_seconds() / _DAY
    end = last + timedelta(days=_horizon(span_days, forecast))
    level = forecast.level if forecast.level is not None else float(history[-1][1])
    top = max([forecast.maximum, level, *(v for _, v in history)]) * 1.08 or 1.0
    frame = Frame(start, end, top, unit)
    newest = (history[-1][0], level)
    x0, y0 = frame.x(newest[0]), frame.y(level)
    parts = [frame.axes()]
    if forecast.days_earliest is not None:
        fast = _edge(frame, newest, forecast.days_earliest, forecast.maximum)
        slow = _edge(frame, newest, forecast.days_latest, forecast.maximum)
        parts.append(
            f'<polygon class="band" points="{x0:.1f},{y0:.1f} {fast[0]:.1f},{fast[1]:.1f} '
            f'{slow[0]:.1f},{slow[1]:.1f}"/>'
        )
    ymax = frame.y(forecast.maximum)
    parts.append(
        f'<line class="limit" x1="{LEFT}" y1="{ymax:.1f}" x2="{WIDTH - RIGHT}" y2="{ymax:.1f}"/>'
        f'<text class="limit-label" x="{WIDTH - RIGHT - 4}" y="{ymax - 5:.1f}" '
        f'text-anchor="end">limit {escape(human(forecast.maximum, unit))}</text>'
    )
    parts.append(_series(frame, history, "usage"))
    if forecast.slope_per_day is not None:
        x1, y1 = _edge(frame, newest, forecast.days_to_limit, forecast.maximum)
        parts.append(
            f'<line class="trend" x1="{x0:.1f}" y1="{y0:.1f}" x2="{x1:.1f}" y2="{y1:.1f}"/>'
        )
    label = f"Forecast of {forecast.limit} against its limit"
    return _svg(label, "".join(parts))


def usage_bar(use: LimitUse, warn_ratio: float, unit: str = "") -> Markup:
    """A bar of ``use.value`` against ``use.maximum``: ``ok``, ``warn`` or ``over``."""
    ratio = use.ratio
    state = "over" if use.value > use.maximum else "warn" if ratio >= warn_ratio else "ok"
    width = 160
    filled = width * min(ratio, 1.0) if ratio != float("inf") else width
    text = f"{human(use.value, unit)} / {human(use.maximum, unit)} {use.limit}"
    return Markup(  # noqa: S704 -- numbers formatted here, the text escaped
        f'<svg class="bar" viewBox="0 0 {width} 12" width="{width}" height="12" role="img" '
        f'aria-label="{escape(text)}" xmlns="http://www.w3.org/2000/svg">'
        f'<rect class="bar-back" x="0" y="0" width="{width}" height="12" rx="2"/>'
        f'<rect class="bar-{state}" x="0" y="0" width="{filled:.1f}" height="12" rx="2"/>'
        f"<title>{escape(text)}</title></svg>"
    )


def bar_chart(counts: dict[str, int], label: str) -> Markup | None:
    """One bar per key (days, oldest first) of ``counts``. ``None`` when empty."""
    if not counts:
        return None
    keys = sorted(counts)
    top = max(counts.values()) * 1.1 or 1.0
    inner = WIDTH - LEFT - RIGHT
    step = inner / len(keys)
    base = HEIGHT - BOTTOM
    scale = (HEIGHT - TOP - BOTTOM) / top
    parts = [
        f'<line class="axis" x1="{LEFT}" y1="{base}" x2="{WIDTH - RIGHT}" y2="{base}"/>',
        f'<text class="tick" x="{LEFT - 6}" y="{TOP + 8}" text-anchor="end">'
        f"{escape(human(top / 1.1))}</text>",
    ]
    for i, key in enumerate(keys):
        height = counts[key] * scale
        x = LEFT + i * step + step * 0.1
        parts.append(
            f'<rect class="bar-column" x="{x:.1f}" y="{base - height:.1f}" '
            f'width="{step * 0.8:.1f}" height="{height:.1f}">'
            f"<title>{escape(key)}: {counts[key]}</title></rect>"
        )
    for i in sorted({0, len(keys) - 1}):
        parts.append(
            f'<text class="tick" x="{LEFT + (i + 0.5) * step:.1f}" y="{base + 18}" '
            f'text-anchor="middle">{escape(keys[i])}</text>'
        )
    return _svg(label, "".join(parts))
