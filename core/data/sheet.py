"""The standard 12-lead ECG sheet of a store's records, drawn with matplotlib at true paper scale.

The printed 12-lead layout (Kligfield et al., "Recommendations for the standardization and interpretation of the
electrocardiogram", Circulation 2007): three rows of four 2.5 s columns (I, aVR, V1, V4 / II, aVL, V2, V5 /
III, aVF, V3, V6), column k showing seconds 2.5k..2.5(k+1) of its leads, and a 10 s rhythm strip of lead II
below; 25 mm/s and 10 mm/mV on a millimetre grid (1 mm minor, 5 mm major lines), a 1 mV calibration pulse
before each row. Any other lead set draws one 10 s strip per lead, stacked. One millimetre of the figure is
one millimetre of paper, so a PDF printed at 100% is read with a ruler. Lead names match case-insensitively
(`AVR` is `aVR`). matplotlib is used directly: `ecg_plot` (MIT, 0.3) also has a 12-lead layout with a rhythm
strip, but draws SVG first (PNG through CairoSVG, a further native dependency) and matches lead names exactly;
drawing here is one dependency less, and the panel boxes it returns are what the tests read back.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ecgcl.data.leads import normalise_lead_name

SPEED, GAIN = 25.0, 10.0                 # mm/s, mm/mV
COLUMN_S, STRIP_S = 2.5, 10.0            # seconds per column, seconds per strip
ROW_MM, PULSE_MM, MARGIN_MM, FOOTER_MM = 30.0, 10.0, 6.0, 14.0
WIDTH_MM = SPEED * STRIP_S               # 250 mm of trace per row
SHEET_ROWS = (("I", "aVR", "V1", "V4"), ("II", "aVL", "V2", "V5"), ("III", "aVF", "V3", "V6"))
RHYTHM_LEAD = "II"
MINOR, MAJOR, TRACE = "#f7d4d4", "#e49a9a", "black"
DPI = 150


@dataclass(frozen=True)
class Panel:
    """One drawn trace: `name` (the lead, `rhythm II` for the strip), the store's lead `index`, the seconds
    `start`..`start + seconds` it shows, its `row` (0 = top) and the left edge `x_mm` of its box."""

    name: str
    index: int
    start: float
    seconds: float
    row: int
    x_mm: float


def sheet_panels(leads: Sequence[str]) -> list[Panel]:
    """The standard 3x4 + rhythm layout when `leads` are exactly the 12 standard leads (any order or spelling),
    else one 10 s strip per lead."""
    canonical = [normalise_lead_name(lead) for lead in leads]
    where = {name: i for i, name in enumerate(canonical)}
    standard = {name for row in SHEET_ROWS for name in row}
    if len(canonical) != len(standard) or set(canonical) != standard:
        return [Panel(str(lead), i, 0.0, STRIP_S, i, 0.0) for i, lead in enumerate(leads)]
    panels = [Panel(name, where[name], COLUMN_S * col, COLUMN_S, row, SPEED * COLUMN_S * col)
              for row, names in enumerate(SHEET_ROWS) for col, name in enumerate(names)]
    return panels + [Panel(f"rhythm {RHYTHM_LEAD}", where[RHYTHM_LEAD], 0.0, STRIP_S, len(SHEET_ROWS), 0.0)]


def _grid(ax, rows: int) -> None:
    from matplotlib.collections import LineCollection

    bottom = -rows * ROW_MM
    for step, colour, width in ((1.0, MINOR, 0.3), (5.0, MAJOR, 0.7)):
        lines = [[(x, 0.0), (x, bottom)] for x in np.arange(-PULSE_MM, WIDTH_MM + 1e-9, step)]
        lines += [[(-PULSE_MM, y), (WIDTH_MM, y)] for y in np.arange(bottom, 1e-9, step)]
        ax.add_collection(LineCollection(lines, colors=colour, linewidths=width, zorder=1 + step))


def sheet_figure(signal: np.ndarray, fs: float, leads: Sequence[str], footer: Sequence[str], *, dpi: int = DPI):
    """The figure of one record (`signal`: leads x samples, mV) and its panels' pixel boxes
    {name: (left, top, right, bottom)} in the saved image at `dpi`."""
    from matplotlib.figure import Figure

    panels = sheet_panels(leads)
    rows = max(p.row for p in panels) + 1
    width, height = PULSE_MM + WIDTH_MM + 2 * MARGIN_MM, rows * ROW_MM + 2 * MARGIN_MM + FOOTER_MM
    fig = Figure(figsize=(width / 25.4, height / 25.4), dpi=dpi)
    ax = fig.add_axes((MARGIN_MM / width, (MARGIN_MM + FOOTER_MM) / height, (PULSE_MM + WIDTH_MM) / width,
                       rows * ROW_MM / height))
    ax.set_xlim(-PULSE_MM, WIDTH_MM)
    ax.set_ylim(-rows * ROW_MM, 0.0)
    ax.set_axis_off()
    _grid(ax, rows)
    boxes = {}
    for panel in panels:
        base = -(panel.row + 0.5) * ROW_MM
        first, last = int(round(panel.start * fs)), int(round((panel.start + panel.seconds) * fs))
        values = signal[panel.index, first:last]
        x = panel.x_mm + np.arange(len(values)) / fs * SPEED
        ax.plot(x, base + GAIN * values, color=TRACE, linewidth=0.9, zorder=10)
        top = -panel.row * ROW_MM
        ax.text(panel.x_mm + 1.0, top - 1.5, panel.name.removeprefix("rhythm "), fontsize=7, va="top", zorder=11)
        if panel.x_mm == 0:  # calibration pulse: 1 mV for 0.2 s
            ax.plot([-9, -8, -8, -3, -3, -1], [base, base, base + GAIN, base + GAIN, base, base], color=TRACE,
                    linewidth=0.7, zorder=10)
        else:  # the column boundary
            ax.plot([panel.x_mm] * 2, [top - 0.3 * ROW_MM, top - 0.7 * ROW_MM], color=TRACE, linewidth=0.7)
        corners = ax.transData.transform([(panel.x_mm, top), (panel.x_mm + panel.seconds * SPEED, top - ROW_MM)])
        (left, upper), (right, lower) = corners
        fig_height = int(fig.bbox.height)  # the image has int(height) rows, y counted from its bottom
        boxes[panel.name] = (int(round(left)), int(round(fig_height - upper)), int(round(right)),
                             int(round(fig_height - lower)))
    for line, text in enumerate(footer):
        fig.text(MARGIN_MM / width, (FOOTER_MM - 4.0 - 5.0 * line) / height, text, fontsize=7, va="center")
    return fig, boxes
