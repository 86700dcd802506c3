"""Geometry of the server-drawn SVG histogram: no chart library, no script."""

from __future__ import annotations

import math
from dataclasses import dataclass

from seizure_stats.schemas.reports import HistogramResponse

WIDTH = 1000
HEIGHT = 220  # plot area; axis labels go below
LEFT = 56
RIGHT = 20
TOP = 18
# A bar this many times taller than the next one is cut, so that the others stay readable.
CUT_FACTOR = 3
# About this many grid lines above zero; the step is rounded to 1, 2 or 5 times a power of ten.
TICKS = 4


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    width: float
    height: float
    count: int
    full: int  # of `count`, the full-seizure windows: drawn stacked on top of the partial ones
    lower: float
    upper: float
    cut: bool

    @property
    def full_height(self) -> float:
        return self.height * self.full / self.count if self.count else 0.0

    @property
    def partial(self) -> int:
        return self.count - self.full


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


def tick_step(largest: int) -> int:
    """A round step (1, 2 or 5 times a power of ten) giving about TICKS grid lines up to largest."""
    if largest <= TICKS:
        return 1
    rough = largest / TICKS
    power = int(10 ** math.floor(math.log10(rough)))
    return next(m * power for m in (1, 2, 5, 10) if m * power >= rough)


def full_per_bin(histogram: HistogramResponse, threshold: float, full: int) -> list[int] | None:
    """How many of each bin's windows are full seizures, given the subset's `full` count.

    A seizure window is full exactly when its fraction reaches the threshold (imports check
    it), so a bin wholly above the threshold is all full, one below it all partial, and the one
    that straddles it holds the rest. None when the numbers do not add up to that.
    """
    above = [b.lower >= threshold for b in histogram.bins]
    straddling = [b.lower < threshold < b.upper for b in histogram.bins]
    rest = full - sum(b.count for b, up in zip(histogram.bins, above, strict=True) if up)
    split = []
    for b, up, mixed in zip(histogram.bins, above, straddling, strict=True):
        split.append(b.count if up else rest if mixed else 0)
    mixed_bins = [b for b, mixed in zip(histogram.bins, straddling, strict=True) if mixed]
    if rest < 0 or (rest and not mixed_bins) or any(rest > b.count for b in mixed_bins):
        return None
    return split


def histogram_chart(
    histogram: HistogramResponse, full_counts: list[int] | None = None
) -> HistogramChart | None:
    """Bars scaled to the tallest one, or to the second tallest when one towers over the rest.

    `full_counts` says how many of each bin's windows are full seizures: each bar shows them
    stacked on the partial ones (a bin can straddle the threshold).
    """
    counts = [b.count for b in histogram.bins]
    if not any(counts):
        return None
    full_counts = full_counts or [0] * len(counts)
    ordered = sorted(counts, reverse=True)
    tallest = ordered[0]
    if len(ordered) > 1 and ordered[1] > 0 and ordered[0] > CUT_FACTOR * ordered[1]:
        tallest = int(ordered[1] * 1.3) + 1
    step = tick_step(tallest)
    scale_max = math.ceil(tallest / step) * step
    plot = HEIGHT - TOP
    width = (WIDTH - LEFT - RIGHT) / len(counts)
    bars = []
    for i, (b, full_count) in enumerate(zip(histogram.bins, full_counts, strict=True)):
        height = min(b.count / scale_max, 1.0) * plot
        bars.append(
            Bar(
                x=LEFT + i * width + 1,
                y=HEIGHT - height,
                width=max(width - 2, 1),
                height=height,
                count=b.count,
                full=full_count,
                lower=b.lower,
                upper=b.upper,
                cut=b.count > scale_max,
            )
        )
    ticks = [(value, HEIGHT - value / scale_max * plot) for value in range(0, scale_max + 1, step)]
    return HistogramChart(bars=bars, scale_max=scale_max, y_ticks=ticks)
