"""The Linux builders' first-boot script (modules/builder/user_data/linux.sh), run for real against a stand-in for the
instance metadata service.

The stand-in answers as IMDSv2 does: a PUT for a session token, then reads that carry it (401 without), and 404 for a
tag the instance does not have. `shutdown` and `logger` are stand-ins on PATH that record their arguments, so the
test sees what the script schedules without shutting anything down.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from ec2_action import tags

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "modules" / "builder" / "user_data" / "linux.sh"
TOKEN = "AQAEAFakeSessionToken=="
DEADLINE_FORMAT = "%Y-%m-%dT%H:%M:%SZ"  # as the launch writes the tag (launcher.instance_tags)


@dataclass
class Metadata:
    """What the stand-in serves: the instance's tags, and the requests it saw."""

    tags: dict[str, str] = field(default_factory=dict)
    requests: list[tuple[str, str, bool]] = field(default_factory=list)  # (method, path, had the token)


def serve(metadata: Metadata) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_PUT(self) -> None:
            metadata.requests.append(("PUT", self.path, False))
            if self.path != "/latest/api/token" or "X-aws-ec2-metadata-token-ttl-seconds" not in self.headers:
                self.answer(400, "")
                return
            self.answer(200, TOKEN)

        def do_GET(self) -> None:
            has_token = self.headers.get("X-aws-ec2-metadata-token") == TOKEN
            metadata.requests.append(("GET", self.path, has_token))
            prefix = "/latest/meta-data/tags/instance/"
            if not has_token:
                self.answer(401, "")
            elif self.path.startswith(prefix) and self.path[len(prefix) :] in metadata.tags:
                self.answer(200, metadata.tags[self.path[len(prefix) :]])
            else:
                self.answer(404, "")

        def answer(self, status: int, body: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body.encode())

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def metadata() -> Iterator[tuple[Metadata, str]]:
    found = Metadata()
    server = serve(found)
    yield found, f"http://127.0.0.1:{server.server_address[1]}/latest"
    server.shutdown()


@dataclass
class Run:
    result: subprocess.CompletedProcess[str]
    shutdown_calls: list[str]


def run_script(tmp_path: Path, imds_url: str) -> Run:
    """linux.sh with the stand-in's URL, no wait between retries, and recording `shutdown` and `logger` on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    calls = tmp_path / "shutdown-calls"
    for name, record in (("shutdown", calls), ("logger", tmp_path / "logger-calls")):
        stand_in = bin_dir / name
        stand_in.write_text(f'#!/bin/sh\necho "$*" >>"{record}"\n')
        stand_in.chmod(0o755)
    env = {
        "PATH": f"{bin_dir}:/usr/local/bin:/usr/bin:/bin",
        "EC2_ACTION_IMDS_URL": imds_url,
        "EC2_ACTION_IMDS_RETRY_SECONDS": "0",
        "HOME": str(tmp_path),
        "TMPDIR": str(tmp_path),
    }
    result = subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True, timeout=60, check=False)
    return Run(result, calls.read_text().splitlines() if calls.exists() else [])


def test_an_ephemeral_builder_shuts_down_at_its_deadline(tmp_path: Path, metadata: tuple[Metadata, str]) -> None:
    found, url = metadata
    found.tags[tags.DEADLINE] = (datetime.now(UTC) + timedelta(minutes=10, seconds=30)).strftime(DEADLINE_FORMAT)

    run = run_script(tmp_path, url)

    assert run.result.returncode == 0, run.result.stderr
    assert run.shutdown_calls == ["-h +11"]  # the next whole minute at or after the deadline
    # IMDSv2: a session token first, then the tag read with it.
    assert found.requests[0][:2] == ("PUT", "/latest/api/token")
    assert ("GET", f"/latest/meta-data/tags/instance/{tags.DEADLINE}", True) in found.requests


def test_a_builder_past_its_deadline_shuts_down_at_once(tmp_path: Path, metadata: tuple[Metadata, str]) -> None:
    found, url = metadata
    found.tags[tags.DEADLINE] = (datetime.now(UTC) - timedelta(minutes=5)).strftime(DEADLINE_FORMAT)

    run = run_script(tmp_path, url)

    assert run.result.returncode == 0, run.result.stderr
    assert run.shutdown_calls == ["-h +0"]


def test_a_pool_member_without_a_deadline_is_left_running(tmp_path: Path, metadata: tuple[Metadata, str]) -> None:
    found, url = metadata
    found.tags[tags.STACK] = "ec2-build"  # a pool member: tagged with its stack, no deadline

    run = run_script(tmp_path, url)

    assert run.result.returncode == 0, run.result.stderr
    assert run.shutdown_calls == []
    assert "a pool member" in run.result.stderr


def test_without_instance_metadata_nothing_is_scheduled_and_the_failure_shows(tmp_path: Path) -> None:
    """The metadata never answers (here: nothing listens): the script gives up after its retries, schedules nothing
    (the reaper ends an overdue builder) and exits non-zero, which cloud-init reports."""
    run = run_script(tmp_path, "http://127.0.0.1:9/latest")

    assert run.result.returncode == 1
    assert run.shutdown_calls == []
    assert "did not answer" in run.result.stderr


def test_the_script_needs_only_what_a_minimal_image_has() -> None:
    """bash, curl, date, mktemp and shutdown: present on Amazon Linux, Ubuntu and Debian cloud images."""
    text = SCRIPT.read_text()
    assert text.startswith("#!/bin/bash\n") and os.access(SCRIPT, os.R_OK)
    assert "jq" not in text and "aws " not in text and "python" not in text
