"""Geometry of the server-drawn SVG histogram: no chart library, no script."""

from __future__ import annotations

from dataclasses import dataclass

from app.schemas.reports import HistogramResponse

WIDTH = 1000
HEIGHT = 220  # plot area; axis labels go below
LEFT = 56
RIGHT = 20
TOP = 18
# A bar this many times taller than the next one is cut, so that the others stay readable.
CUT_FACTOR = 3


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    lower: float
    upper: float
    cut: bool


@dataclass(frozen=True)
class HistogramChart:
    bars: list[Bar]
    scale_max: int
    y_ticks: list[tuple[int, float]]  # (count, y) of the horizontal grid lines
    width: int = WIDTH
    height: int = HEIGHT
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP

    def x_of(self, fraction: float) -> float:
        return self.left + fraction * (self.width - self.left - self.right)


def histogram_chart(histogram: HistogramResponse) -> HistogramChart | None:
    """Bars scaled to the tallest one, or to the second tallest when one towers over the rest."""
    counts = [b.count for b in histogram.bins]
    if not any(counts):
        return None
    ordered = sorted(counts, reverse=True)
    scale_max = ordered[0]
    if len(ordered) > 1 and ordered[1] > 0 and ordered[0] > CUT_FACTOR * ordered[1]:
        scale_max = int(ordered[1] * 1.3) + 1
    plot = HEIGHT - TOP
    step = (WIDTH - LEFT - RIGHT) / len(counts)
    bars = []
    for i, b in enumerate(histogram.bins):
        height = min(b.count / scale_max, 1.0) * plot
        bars.append(
            Bar(
                x=LEFT + i * step + 1,
                y=HEIGHT - height,
                width=max(step - 2, 1),
                height=height,
                count=b.count,
                lower=b.lower,
                upper=b.upper,
                cut=b.count > scale_max,
            )
        )
    values = sorted({0, scale_max // 2, scale_max}) if scale_max >= 4 else [0, scale_max]
    ticks = [(value, HEIGHT - value / scale_max * plot) for value in values]
    return HistogramChart(bars=bars, scale_max=scale_max, y_ticks=ticks)
