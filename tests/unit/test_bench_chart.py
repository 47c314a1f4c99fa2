"""The bench's timeline chart, drawn from a fixed set of jobs: the PNG, the self-contained HTML page, one row per job
with its phases where they happened, and a spot interruption visible. No deployment: fast."""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from matplotlib.collections import PolyCollection
from matplotlib.lines import Line2D
from matplotlib.patches import Rectangle

from harness import timeline
from harness.timeline import JobSpans, Span
from scenarios import chart

T0 = 1_800_000_000.0  # the scenario's first STARTED event

# Listed out of start order on purpose: the chart orders rows by STARTED time.
JOBS = [
    JobSpans(
        "queued",
        started=T0 + 0.4,
        answered=T0 + 61.0,
        spans=(
            Span("acquire", T0 + 0.6, T0 + 0.9),
            Span("queue", T0 + 1.0, T0 + 35.0),
            Span("acquire", T0 + 35.2, T0 + 35.5),
            Span("boot", T0 + 35.7, T0 + 56.0),
            Span("build", T0 + 56.5, T0 + 58.5),
            Span("report", T0 + 58.5, T0 + 61.0),
        ),
    ),
    JobSpans(
        "first",
        started=T0,
        answered=T0 + 24.0,
        spans=(
            Span("acquire", T0 + 0.2, T0 + 0.5),
            Span("boot", T0 + 0.7, T0 + 21.0),
            Span("build", T0 + 21.3, T0 + 23.3),
            Span("report", T0 + 23.3, T0 + 24.0),
        ),
    ),
    JobSpans(
        "restarted",
        started=T0 + 0.2,
        answered=T0 + 70.0,
        spans=(
            Span("acquire", T0 + 0.3, T0 + 0.6),
            Span("boot", T0 + 0.8, T0 + 21.0),
            Span("build", T0 + 21.2, T0 + 30.0),
            Span("acquire", T0 + 30.5, T0 + 31.0),
            Span("boot", T0 + 31.2, T0 + 50.0),
            Span("build", T0 + 50.2, T0 + 69.0),
            Span("report", T0 + 69.0, T0 + 70.0),
        ),
        interruptions=(T0 + 29.5,),
    ),
]
IN_START_ORDER = ["first", "restarted", "queued"]


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return chart.write("burst of 3", JOBS, tmp_path_factory.mktemp("charts"), "burst")


def _gids(fig: Any) -> list[str]:
    return [artist.get_gid() for artist in fig.findobj() if artist.get_gid()]


def test_the_png_is_a_png_of_the_size_the_rows_ask_for(written: tuple[Path, Path]) -> None:
    data = written[0].read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == chart.pixel_size(len(JOBS))
    assert chart.pixel_size(100)[1] > chart.pixel_size(10)[1]  # rows stay readable in a burst


class _Page(HTMLParser):
    """Every tag and attribute of the page, and its text."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.links: list[str] = []
        self.text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append(tag)
        self.links += [value or "" for name, value in attrs if name in ("src", "href", "xlink:href", "data")]

    def handle_data(self, data: str) -> None:
        self.text.append(data)


def test_the_html_page_carries_the_figure_inline_and_needs_nothing_else(written: tuple[Path, Path]) -> None:
    page = _Page()
    page.feed(written[1].read_text(encoding="utf-8"))
    assert "svg" in page.tags
    assert not {"script", "link", "img", "iframe", "object"} & set(page.tags)
    assert page.links, "the SVG's markers refer to its own definitions"
    assert all(link.startswith("#") for link in page.links), page.links  # no http(s), no file next to it


def test_every_job_is_a_row_in_start_order_in_the_figure_and_the_page(written: tuple[Path, Path]) -> None:
    fig = chart.draw("burst of 3", JOBS)
    (ax,) = fig.axes
    assert [label.get_text() for label in ax.get_yticklabels()] == IN_START_ORDER
    gids = _gids(fig)
    for row, job in enumerate(chart.ordered(JOBS)):
        assert {f"job-{row}-{span.phase}" for span in job.spans} <= set(gids), job.label
    html = written[1].read_text(encoding="utf-8")
    for row, label in enumerate(IN_START_ORDER):
        assert f'<tr id="row-{row}"><td>{label}</td>' in html
        assert f"job-{row}-build" in html  # the SVG keeps each bar's gid as its id


def _bars(fig: Any, gid: str) -> list[tuple[float, float, float]]:
    """(left, width, row) of each bar drawn with that gid."""
    found = []
    for artist in fig.findobj(lambda a: a.get_gid() == gid):
        patches = [artist] if isinstance(artist, Rectangle) else list(getattr(artist, "patches", []))
        for patch in patches:
            if isinstance(patch, Rectangle):
                found.append((patch.get_x(), patch.get_width(), patch.get_y() + patch.get_height() / 2))
        if isinstance(artist, PolyCollection):
            raise AssertionError("bars are expected as rectangles")
    return found


def test_each_phase_is_drawn_where_it_happened_from_the_first_started_event() -> None:
    fig = chart.draw("burst of 3", JOBS)
    queued = chart.ordered(JOBS).index(JOBS[0])
    (queue,) = _bars(fig, f"job-{queued}-queue")
    assert queue == pytest.approx((1.0, 34.0, queued))
    builds = _bars(fig, "job-1-build")  # the restarted job: a build on each instance, the first cut short
    assert sorted(builds) == [pytest.approx((21.2, 8.8, 1)), pytest.approx((50.2, 18.8, 1))]
    (ax,) = fig.axes
    assert ax.get_xlim()[0] == 0
    assert "first STARTED event" in ax.get_xlabel()


def test_a_spot_interruption_is_marked_on_its_row_and_in_the_legend() -> None:
    fig = chart.draw("burst of 3", JOBS)
    marks = [a for a in fig.findobj(Line2D) if str(a.get_gid()).endswith("-interrupted")]
    assert [(m.get_gid(), list(m.get_xdata()), list(m.get_ydata())) for m in marks] == [
        ("job-1-interrupted", [pytest.approx(29.5)], [1])
    ]
    legend = [text.get_text() for text in fig.legends[0].get_texts()]
    assert any("spot interruption" in text for text in legend)
    assert {chart.LABELS[phase] for phase in timeline.PHASES} <= set(legend)

    calm = chart.draw("no spot", JOBS[:2])
    assert not [a for a in calm.findobj(Line2D) if str(a.get_gid()).endswith("-interrupted")]
    assert not any("spot interruption" in text.get_text() for text in calm.legends[0].get_texts())


def test_a_chart_needs_a_job() -> None:
    with pytest.raises(ValueError, match="at least one job"):
        chart.draw("nothing ran", [])


# --- the spans read from an execution's history -----------------------------------------------------------------


class _StepFunctions:
    """GetExecutionHistory of one execution, in botocore's shape (events with type, timestamp and the details)."""

    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.events = events

    def get_execution_history(self, executionArn: str, maxResults: int) -> dict[str, Any]:
        assert executionArn == ARN and 1 <= maxResults <= 1000
        return {"events": self.events}


class _Deployment:
    def __init__(self, events: list[dict[str, Any]]) -> None:
        self.stepfunctions = _StepFunctions(events)

    def client(self, service: str) -> _StepFunctions:
        assert service == "stepfunctions"
        return self.stepfunctions


ARN = "arn:aws:states:eu-west-1:123456789012:execution:bench-build-job:job-1"


def _event(kind: str, seconds: float, name: str | None = None) -> dict[str, Any]:
    event: dict[str, Any] = {"type": kind, "timestamp": datetime.fromtimestamp(T0 + seconds, UTC), "id": 1}
    if kind.endswith("StateEntered"):
        event["stateEnteredEventDetails"] = {"name": name}
    elif kind.endswith("StateExited"):
        event["stateExitedEventDetails"] = {"name": name}
    return event


def test_state_spans_pair_each_state_with_its_exit_or_the_next_state_entered() -> None:
    history = [
        _event("ExecutionStarted", 0.0),
        _event("TaskStateEntered", 0.1, "AcquireInstance"),
        _event("LambdaFunctionSucceeded", 0.3),
        _event("TaskStateExited", 0.4, "AcquireInstance"),
        _event("TaskStateEntered", 0.5, "WaitForSsmOnline"),
        _event("LambdaFunctionFailed", 20.0),  # caught: no Exited event recorded
        _event("TaskStateEntered", 20.2, "AcquireInstance"),
        _event("TaskStateExited", 20.6, "AcquireInstance"),
    ]
    spans = timeline.state_spans(_Deployment(history), ARN)  # type: ignore[arg-type]
    assert spans == [
        ("AcquireInstance", pytest.approx(T0 + 0.1), pytest.approx(T0 + 0.4)),
        ("WaitForSsmOnline", pytest.approx(T0 + 0.5), pytest.approx(T0 + 20.2)),
        ("AcquireInstance", pytest.approx(T0 + 20.2), pytest.approx(T0 + 20.6)),
    ]
