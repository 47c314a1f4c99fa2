"""`make bench`'s pictures: a timeline of every job of a scenario, one row per job, so that where the time goes in a
burst shows at a glance (queue wait, acquisition, boot to SSM Online, build, report; spot interruptions marked).

Drawn with matplotlib's object API on the Agg canvas (no pyplot: no global figure state, no display needed), written
as a PNG and as a small self-contained HTML page carrying the same figure as inline SVG (no external asset, no
script), with a table of the same figures for reading and searching.
"""

from __future__ import annotations

import html
import io
import re
from collections.abc import Sequence
from pathlib import Path

import matplotlib
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from harness.timeline import PHASES, JobSpans

DPI = 100
WIDTH_INCHES = 11.0
ROW_INCHES = 0.24  # per job
FRAME_INCHES = 1.9  # title, axis and legend
BAR_HEIGHT = 0.7

COLOURS = {
    "queue": "#7f7f7f",
    "acquire": "#f0a030",
    "boot": "#4c8fd6",
    "build": "#3aa65a",
    "report": "#9467bd",
}
LABELS = {
    "queue": "queue wait (WaitForCapacity)",
    "acquire": "acquisition (AcquireInstance)",
    "boot": "boot to SSM Online (WaitForSsmOnline)",
    "build": "build (the command on the instance)",
    "report": "report (command end -> job answered)",
}
JOB_COLOUR = "#e8e8e8"  # STARTED -> answered, under the phases: what shows of it is the module's own time
INTERRUPTION_COLOUR = "#d62728"


def figure_size(jobs: int) -> tuple[float, float]:
    """Inches: a fixed width, a height that grows with the rows (so 100 jobs stay readable)."""
    return WIDTH_INCHES, FRAME_INCHES + ROW_INCHES * max(jobs, 4)


def pixel_size(jobs: int) -> tuple[int, int]:
    """The PNG's width and height in pixels for that many jobs."""
    width, height = figure_size(jobs)
    return round(width * DPI), round(height * DPI)


def ordered(jobs: Sequence[JobSpans]) -> list[JobSpans]:
    """Rows in the order the jobs started (then by label), so that a burst reads top to bottom."""
    return sorted(jobs, key=lambda job: (job.started, job.label))


def origin(jobs: Sequence[JobSpans]) -> float:
    """The scenario's first STARTED event: the x axis's zero."""
    return min(job.started for job in jobs)


def draw(title: str, jobs: Sequence[JobSpans]) -> Figure:
    """The figure: one row per job (the first started at the top), each phase a bar, each interruption a cross.
    Every bar and marker has a gid `job-<row>-<phase>` (`-interrupted` for a marker), which the SVG keeps as its id."""
    if not jobs:
        raise ValueError("a chart needs at least one job")
    rows, zero = ordered(jobs), origin(jobs)
    fig = Figure(figsize=figure_size(len(rows)), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)
    ax = fig.add_subplot()
    for row, job in enumerate(rows):
        _draw_job(ax, row, job, zero)
    ax.set_yticks(range(len(rows)), [job.label for job in rows], fontsize=7 if len(rows) > 30 else 9)
    ax.set_ylim(len(rows) - 0.5, -0.5)
    ax.set_xlim(left=0)
    ax.set_xlabel("seconds from the scenario's first STARTED event")
    ax.set_title(title)
    ax.grid(axis="x", color="#dddddd", linewidth=0.6)
    ax.set_axisbelow(True)
    fig.legend(handles=_legend(rows), loc="outside lower center", ncols=3, fontsize=8, frameon=False)
    return fig


def _draw_job(ax: Axes, row: int, job: JobSpans, zero: float) -> None:
    if job.answered is not None:
        ax.barh(
            row,
            job.answered - job.started,
            left=job.started - zero,
            height=BAR_HEIGHT + 0.2,
            color=JOB_COLOUR,
            gid=f"job-{row}-job",
        )
    for span in job.spans:
        ax.barh(
            row,
            max(span.end - span.start, 0.0),
            left=span.start - zero,
            height=BAR_HEIGHT,
            color=COLOURS[span.phase],
            gid=f"job-{row}-{span.phase}",
        )
    for at in job.interruptions:
        ax.plot(
            [at - zero],
            [row],
            marker="X",
            markersize=9,
            color=INTERRUPTION_COLOUR,
            markeredgecolor="white",
            linestyle="none",
            gid=f"job-{row}-interrupted",
        )


def _legend(rows: Sequence[JobSpans]) -> list[Patch | Line2D]:
    handles: list[Patch | Line2D] = [Patch(color=COLOURS[phase], label=LABELS[phase]) for phase in PHASES]
    handles.append(Patch(color=JOB_COLOUR, label="STARTED -> answered (between bars: the module's own steps)"))
    if any(job.interruptions for job in rows):
        handles.append(
            Line2D(
                [],
                [],
                marker="X",
                color=INTERRUPTION_COLOUR,
                linestyle="none",
                label="spot interruption (the build restarts on a new instance)",
            )
        )
    return handles


def png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def svg(fig: Figure) -> str:
    """The figure as an SVG element to inline in HTML: text kept as text, no XML prologue, no doctype."""
    buffer = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": "bench"}):
        fig.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    return text[text.index("<svg") :]


def _seconds(job: JobSpans, phase: str) -> str:
    total = sum(span.end - span.start for span in job.spans if span.phase == phase)
    present = any(span.phase == phase for span in job.spans)
    return f"{total:.1f}" if present else ""


def html_page(title: str, jobs: Sequence[JobSpans], fig: Figure) -> str:
    """A page that needs nothing else: the figure inline, then each job's seconds per phase."""
    rows, zero = ordered(jobs), origin(jobs)
    head = "".join(f"<th>{html.escape(LABELS[phase])}</th>" for phase in PHASES)
    body = "\n".join(
        f'<tr id="row-{row}"><td>{html.escape(job.label)}</td><td>{job.started - zero:.1f}</td>'
        + "".join(f"<td>{_seconds(job, phase)}</td>" for phase in PHASES)
        + f"<td>{len(job.interruptions)}</td>"
        + f"<td>{'' if job.answered is None else f'{job.answered - job.started:.1f}'}</td></tr>"
        for row, job in enumerate(rows)
    )
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{html.escape(title)}</title>
<style>
body {{ font-family: sans-serif; margin: 1em 2em; }}
table {{ border-collapse: collapse; font-size: 0.85em; }}
td, th {{ border: 1px solid #ccc; padding: 0.2em 0.5em; text-align: right; }}
td:first-child {{ text-align: left; }}
svg {{ max-width: 100%; height: auto; }}
</style>
</head>
<body>
<h1>{html.escape(title)}</h1>
<p>One row per job, in the order they started; x: seconds from the scenario's first STARTED event. Between the bars,
the module's own steps (a function's start, a state transition, a callback).</p>
{svg(fig)}
<h2>Seconds per job</h2>
<table>
<tr><th>job</th><th>STARTED at</th>{head}<th>spot interruptions</th><th>STARTED -> answered</th></tr>
{body}
</table>
</body>
</html>
"""


def file_stem(name: str) -> str:
    """A scenario's key as a file name (letters, digits, dashes)."""
    return re.sub(r"[^A-Za-z0-9-]+", "-", name).strip("-") or "scenario"


def write(title: str, jobs: Sequence[JobSpans], directory: Path, name: str) -> tuple[Path, Path]:
    """Write <directory>/<name>.png and <name>.html; return their paths."""
    directory.mkdir(parents=True, exist_ok=True)
    fig = draw(title, jobs)
    picture, page = directory / f"{file_stem(name)}.png", directory / f"{file_stem(name)}.html"
    picture.write_bytes(png(fig))
    page.write_text(html_page(title, jobs, fig), encoding="utf-8")
    return picture, page
