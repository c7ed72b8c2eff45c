"""Charts for staff pages, drawn by pygal as SVG documents served as images.

Each chart works without JavaScript and under the site's CSP: pygal's scripts are left
out (its tooltips need them), its one <style> carries the response's nonce, and no
element keeps an inline style attribute. The page beside every chart has a table of
the same numbers, so nothing depends on seeing the lines or telling colours apart.
"""

import datetime
import math
from collections.abc import Callable, Sequence
from typing import Any

import pygal  # type: ignore[import-untyped]
from pygal.style import Style  # type: ignore[import-untyped]

# GOV.UK Frontend's palette, each at least 3:1 against white (WCAG 1.4.11, for lines),
# in an order that keeps neighbouring series far apart in hue.
COLOURS = (
    "#1d70b8",  # blue
    "#00703c",  # green
    "#d4351c",  # red
    "#4c2c92",  # purple
    "#0b0c0c",  # black
    "#d53880",  # pink
    "#003078",  # dark blue
    "#b58840",  # brown
    "#28a197",  # turquoise
    "#912b88",  # bright purple
    "#505a5f",  # dark grey
    "#5694ca",  # light blue
)
# A second way to tell lines apart: solid, dashed, dotted, dash-dot, long dash. (Bars
# are told apart by their order in the stack, the legend's, and the table.)
DASHES = ("", "10,5", "3,4", "10,4,3,4", "18,6")
TEXT = "#0b0c0c"
SECONDARY_TEXT = "#505a5f"
WIDTH, HEIGHT = 960, 420

STYLE = Style(
    font_family="arial, sans-serif",
    background="#ffffff",
    plot_background="#ffffff",
    foreground=TEXT,
    foreground_strong=TEXT,
    foreground_subtle=SECONDARY_TEXT,
    colors=COLOURS,
    label_font_size=14,
    major_label_font_size=14,
    legend_font_size=15,
    title_font_size=18,
    no_data_font_size=24,
    stroke_width="2",
    stroke_opacity="1",
    opacity="1",
    transition="0s",
    guide_stroke_color="#b1b4b6",
    major_guide_stroke_color="#b1b4b6",
)


def _label_every(days: int) -> int:
    """How often the x axis names a day: about weekly for a month, monthly for a year."""
    return 7 if days <= 31 else 14 if days <= 92 else 30


def integer_ticks(top: int, wanted: int = 5) -> list[int]:
    """Whole-number steps of 1, 2 or 5 times a power of ten from 0 to at least `top`."""
    if top <= 0:
        return [0, 1]
    raw = top / wanted
    magnitude = 10 ** math.floor(math.log10(raw)) if raw >= 1 else 1
    step = next(m * magnitude for m in (1, 2, 5, 10) if m * magnitude >= raw)
    return list(range(0, math.ceil(top / step) * step + 1, step))


def _for_the_csp(nonce: str) -> Callable[[Any], Any]:
    """An XML filter: no scripts, no inline style attributes, the nonce on the <style>."""

    def apply(root: Any) -> Any:
        for parent in list(root.iter()):
            for child in list(parent):
                if child.tag == "script" or "style" in child.attrib:
                    parent.remove(child)
                elif child.tag == "style":
                    child.set("nonce", nonce)
        return root

    return apply


CHART_KINDS = {"line": pygal.Line, "bars": pygal.Bar, "stacked_bars": pygal.StackedBar}


def _highest(kind: str, series: Sequence[tuple[str, Sequence[int]]]) -> int:
    if kind == "stacked_bars":
        return max((sum(day) for day in zip(*(values for _name, values in series), strict=True)), default=0)
    return max((max(values, default=0) for _name, values in series), default=0)


def chart_svg(
    *, kind: str, title: str, days: Sequence[datetime.date], series: Sequence[tuple[str, Sequence[int]]], nonce: str
) -> bytes:
    """A chart of `series` over `days` ("line", "bars" or "stacked_bars"), as an SVG document."""
    chart = CHART_KINDS[kind](
        style=STYLE, js=[], width=WIDTH, height=HEIGHT, title=title,
        show_dots=len(days) <= 31, dots_size=3, show_legend=kind != "bars", legend_at_bottom=True,
        legend_at_bottom_columns=3, truncate_legend=-1, truncate_label=-1,
        x_labels=[f"{day.day} {day:%b}" for day in days], x_labels_major_every=_label_every(len(days)),
        show_minor_x_labels=False, y_labels=integer_ticks(_highest(kind, series)), show_x_guides=False,
        print_values=False, no_data_text="Nothing to show", margin_right=30,
    )  # fmt: skip
    for index, (name, values) in enumerate(series):
        dash = DASHES[index % len(DASHES)]
        line = {"stroke_style": {"width": 2.5, "dasharray": dash} if dash else {"width": 2.5}}
        chart.add(name, list(values), **(line if kind == "line" else {}))
    chart.add_xml_filter(_for_the_csp(nonce))
    svg: bytes = chart.render()
    return svg
