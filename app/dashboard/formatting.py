"""Numbers for people: thousands separators, ratios as percentages with enough digits."""

from __future__ import annotations

import math
from datetime import datetime

from markupsafe import Markup, escape


def format_count(value: int | None) -> str:
    """12345 -> '12,345'; unknown -> '—'."""
    return "—" if value is None else f"{value:,}"


def format_percent(ratio: float | None) -> str:
    """A ratio as a percentage with at least three significant digits: 0.0435 -> '4.35%'.

    Small ratios keep their leading digits (0.000123 -> '0.0123%'), so a training set's
    seizure ratio never reads as a flat 0.00%.
    """
    if ratio is None:
        return "—"
    percent = ratio * 100
    if percent == 0:
        return "0%"
    decimals = max(2, 2 - math.floor(math.log10(abs(percent))))
    return f"{percent:,.{decimals}f}%"


def format_weight(value: float | None) -> str:
    return "—" if value is None else f"{value:,.4f}"


def format_share(ratio: float) -> str:
    """A share of the whole, shorter than a ratio: one decimal is enough to rank groups."""
    if ratio == 0:
        return "0%"
    return f"{ratio * 100:.1f}%" if ratio >= 0.001 else "<0.1%"


def format_time(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC")


def exact(value: float | int | None) -> str:
    """The full-precision value, for tooltips and data attributes."""
    return "" if value is None else repr(value)


def format_quantity(value: int, noun: str, plural: str = "") -> str:
    """1 -> '1 window', 1234 -> '1,234 windows': the noun agrees with the number."""
    return f"{value:,} {noun_for(value, noun, plural)}"


def code_spans(text: str) -> Markup:
    """Help text written for docs (`s018` in backticks) as HTML: the quoted parts as code."""
    pieces = str(escape(text)).split("`")
    if len(pieces) % 2 == 0:  # an unpaired backtick: no code, just the text
        return Markup("`".join(pieces))
    return Markup("".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces)))


def noun_for(value: int, noun: str, plural: str = "") -> str:
    """The noun alone, agreeing with a number shown elsewhere (in its own element)."""
    return noun if value == 1 else plural or noun + "s"
