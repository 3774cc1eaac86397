"""The results summary: one page, an RGB Secondary Capture (PS3.3 A.8.1) that every viewer
shows, in a result series of its own, for the reader whose viewer shows no SR. Here the
page every task's summary shares; each task writes its findings on it.

Every page has the model, what it was trained on, whether a reviewer is needed, where the
SR, SEG and key images are, and the AI notice; no patient name, ID or date is burned in.
The page is 1280 x 1024 (the shape of a viewport) with text of 24 to 44 pixels: 14 or more
on screen when the viewer fits the page into a viewport 600 pixels high.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw
from pydicom.dataset import Dataset

from cardiogate import __version__
from cardiogate.reports.capture import RGB, Colour, ascii_text, font, image_label

WIDTH, HEIGHT = 1280, 1024
MARGIN = 48
TITLE, HEADING, BODY, SMALL = 44, 32, 28, 24
BACKGROUND: Colour = (12, 14, 22)
TEXT: Colour = (255, 255, 255)
MUTED: Colour = (185, 190, 200)
WARNING: Colour = (255, 190, 0)
BANNER: Colour = (150, 20, 30)
AI_NOTICE = "AI result, not for diagnostic use"
TOP_CLEARANCE = 56  # below the top banner: a viewer's corner overlays cover this band
LEADING = 1.35  # line height / text size
LEFT_OUT = "More than fits here: see the structured report."


def number_ranges(numbers: Iterable[int]) -> str:
    """``"3-5, 9"`` for 3, 4, 5, 9."""
    values = sorted(set(numbers))
    spans: list[list[int]] = []
    for value in values:
        if spans and value == spans[-1][1] + 1:
            spans[-1][1] = value
        else:
            spans.append([value, value])
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in spans)


@dataclass(frozen=True)
class Line:
    """One text drawn on the page: where, how large, in which colour, on which ground."""

    text: str
    xy: tuple[float, float]
    size: int
    colour: Colour
    ground: Colour


@dataclass
class Summary:
    """A drawn page, the texts on it and the source images it names."""

    picture: RGB
    lines: list[Line]
    references: list[Dataset]


class Page:
    """A page of text lines: the notice banners, the model and where the other results are
    anchored at the bottom, the findings flowing from the top. A finding that does not fit
    is left out, and the page says so. Every text drawn is kept in :attr:`lines`."""

    def __init__(self) -> None:
        self.image = Image.new("RGB", (WIDTH, HEIGHT), BACKGROUND)
        self.draw = ImageDraw.Draw(self.image)
        self.lines: list[Line] = []
        self.left_out = False
        self.y = self.banner(AI_NOTICE, 0, HEADING) + MARGIN / 2 + TOP_CLEARANCE
        footer = HEIGHT - SMALL * 1.6
        self.banner(f"{AI_NOTICE}  -  cardiogate {__version__}", footer, SMALL)
        self.bottom = footer - MARGIN / 2

    def text(
        self, text: str, xy: tuple[float, float], size: int, colour: Colour, ground: Colour
    ) -> None:
        line = Line(ascii_text(text), xy, size, colour, ground)
        self.draw.text(xy, line.text, fill=colour, font=font(size))
        self.lines.append(line)

    def banner(self, text: str, y: float, size: int) -> float:
        """A full-width band with ``text``; returns the y below it."""
        height = size * 1.6
        self.draw.rectangle((0, y, WIDTH, y + height), fill=BANNER)
        self.text(text, (MARGIN, y + size * 0.3), size, TEXT, BANNER)
        return y + height

    def anchor(self, texts: Sequence[tuple[str, int, Colour]]) -> None:
        """``texts`` (wrapped) just above the bottom block; the flow ends above them."""
        lines = [
            (part, size, colour) for text, size, colour in texts for part in self.wrap(text, size)
        ]
        self.bottom -= sum(size * LEADING for _, size, _ in lines)
        y = self.bottom
        for text, size, colour in lines:
            self.text(text, (MARGIN, y), size, colour, BACKGROUND)
            y += size * LEADING
        self.bottom -= SMALL * 0.6

    def line(self, text: str, size: int = BODY, colour: Colour = TEXT) -> None:
        self.cells([(text, colour)], [MARGIN], size)

    def cells(self, cells: Sequence[tuple[str, Colour]], stops: Sequence[float], size: int) -> None:
        """One line of cells, each starting at its stop; when it would leave no room for
        the note that something was left out, that note instead."""
        if self.left_out:
            return
        if self.y + size * LEADING + SMALL * LEADING > self.bottom:
            self.text(LEFT_OUT, (MARGIN, self.y), SMALL, WARNING, BACKGROUND)
            self.left_out = True
            return
        for (text, colour), x in zip(cells, stops, strict=True):
            self.text(text, (x, self.y), size, colour, BACKGROUND)
        self.y += size * LEADING

    def wrap(self, text: str, size: int) -> list[str]:
        """``text`` in as many lines as the width needs."""
        face = font(size)
        lines, line = [], ""
        for word in ascii_text(text).split():
            candidate = f"{line} {word}".strip()
            if line and self.draw.textlength(candidate, font=face) > WIDTH - 2 * MARGIN:
                lines.append(line)
                candidate = word
            line = candidate
        return [*lines, line] if line else lines

    def wrapped(self, text: str, size: int = SMALL, colour: Colour = MUTED) -> None:
        for line in self.wrap(text, size):
            self.line(line, size, colour)

    def gap(self, size: int = BODY) -> None:
        self.y += size * 0.6

    def finish(self, references: list[Dataset]) -> Summary:
        return Summary(np.asarray(self.image, dtype=np.uint8), self.lines, references)


def titled_page(
    title: str, source: str, review: str | None, model: str, notice: str, others: str
) -> Page:
    """A page with its title, source and review flag at the top, and the model, what it
    was trained on and where the other results are at the bottom."""
    page = Page()
    page.line(title, TITLE)
    page.line(source, SMALL, MUTED)
    if review:
        page.wrapped(f"Needs review: {review}", BODY, WARNING)
    page.gap()
    page.anchor([(model, SMALL, MUTED), (notice, SMALL, MUTED), (others, SMALL, MUTED)])
    return page


def also_in_study(series: Sequence[tuple[str, int]]) -> str:
    """``"Also in this study: structured report (series 9501), ..."`` for (what, Series
    Number) pairs."""
    return "Also in this study: " + ", ".join(
        f"{what} (series {number})" for what, number in series
    )


def series_label(source: Dataset) -> str:
    """``" series 3"`` by the source's Series Number, or nothing without one."""
    number = source.get("SeriesNumber")
    return "" if number in (None, "") else f" series {number}"


def image_numbers(slices: Sequence[Dataset]) -> str:
    """``images 3, 5-6`` by Instance Number, else each slice as :func:`image_label` says."""
    numbers = [ds.get("InstanceNumber") for ds in slices]
    if all(number not in (None, "") for number in numbers):
        return "images " + number_ranges(int(number) for number in numbers)
    return "; ".join(image_label(ds) for ds in slices)
