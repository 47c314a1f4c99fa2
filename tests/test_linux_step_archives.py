"""The Linux step's zips (ssm/linux/run-build.sh), run for real with and without `unzip` and `zip` on PATH.

The step runs as the SSM Agent (and the local cloud's agent) runs it: `sh _script.sh` in a work directory, with the
parameters as SSM_* variables, talking to S3 in the local cloud. (tests/e2e checks that the deployed document's
Linux step is these exact bytes.) PATH is a directory of links to the tools the step and the build use, with or
without `unzip` and `zip`, as on an image that has them or not.
"""

from __future__ import annotations

import io
import shutil
import stat
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest

from emulator import server

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "ssm" / "linux" / "run-build.sh"
JOB_ID = "12345678-1234-4234-8234-123456789012"
BUCKET = "artifacts"
# What the step and the builds below run; the SSM Agent's PATH has the venv's python3 and aws first, as here.
TOOLS = ("sh", "bash", "mktemp", "rm", "mkdir", "dirname", "basename", "chmod", "ln", "python3", "aws")
ARCHIVERS = ("unzip", "zip")
SYSTEM_PATH = f"{Path(sys.executable).parent}:/usr/local/bin:/usr/bin:/bin"
DATA_TIME = (2021, 6, 7, 8, 9, 10)

BUILD_SH = """#!/bin/sh
set -e
mkdir -p out/bin out/empty
printf tool >out/bin/tool
chmod 0750 out/bin/tool
chmod 0700 out/empty
ln -s bin/tool out/tool-link
"""
# The input artifact: name -> (st_mode in the source tree, content or link target).
SOURCE = {
    "build.sh": (stat.S_IFREG | 0o755, BUILD_SH),
    "src/": (stat.S_IFDIR | 0o755, ""),
    "src/data.txt": (stat.S_IFREG | 0o644, "data"),
    "src/secret.txt": (stat.S_IFREG | 0o600, "secret"),
    "tools/": (stat.S_IFDIR | 0o750, ""),
    "tools/run": (stat.S_IFREG | 0o700, "#!/bin/sh\n"),
    "readonly/": (stat.S_IFDIR | 0o555, ""),
    "readonly/file": (stat.S_IFREG | 0o444, "frozen"),
    "empty/": (stat.S_IFDIR | 0o711, ""),
    "latest": (stat.S_IFLNK | 0o777, "tools/run"),
}
# Entries made on Windows (no Unix mode): name -> (MS-DOS attributes, the mode they get as unzip gives it).
WINDOWS_MADE = {"windows.txt": (0x20, stat.S_IFREG | 0o644), "windows-read-only.txt": (0x21, stat.S_IFREG | 0o444)}
# What build.sh adds.
BUILT = {
    "out/": stat.S_IFDIR | 0o755,
    "out/bin/": stat.S_IFDIR | 0o755,
    "out/bin/tool": stat.S_IFREG | 0o750,
    "out/empty/": stat.S_IFDIR | 0o700,
    "out/tool-link": stat.S_IFLNK | 0o777,
}


@pytest.fixture(scope="module")
def cloud() -> Iterator[server.LocalCloud]:
    cloud = server.start()
    _s3(cloud).create_bucket(Bucket=BUCKET)
    yield cloud
    cloud.stop()


def _s3(cloud: server.LocalCloud) -> Any:
    return boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing").client(
        "s3", endpoint_url=cloud.endpoint, region_name=cloud.region
    )


def _path_of(directory: Path, archivers: bool) -> str:
    """A PATH holding only TOOLS (and `unzip` and `zip` if `archivers`), as links to this machine's."""
    directory.mkdir()
    for tool in TOOLS + (ARCHIVERS if archivers else ()):
        found = shutil.which(tool, path=SYSTEM_PATH)
        assert found, f"{tool} is needed by this test"
        (directory / tool).symlink_to(found)
    return str(directory)


@pytest.fixture(params=[True, False], ids=["with-unzip-and-zip", "without-unzip-or-zip"])
def step_path(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[str, bool]:
    archivers = request.param
    path = _path_of(tmp_path / "bin", archivers)
    assert (shutil.which("unzip", path=path) is not None) is archivers
    return path, archivers


def _zip(entries: dict[str, tuple[int, str]], windows_made: dict[str, int] | None = None) -> bytes:
    """A zip of entries made on Unix, each with its mode (external_attr >> 16) as `zip -y` stores them, then of
    entries made on Windows (name -> MS-DOS attributes)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, (mode, content) in entries.items():
            info = zipfile.ZipInfo(name, DATA_TIME)
            info.create_system = 3
            info.external_attr = mode << 16 | (0x10 if name.endswith("/") else 0)
            archive.writestr(info, content)
        for name, attributes in (windows_made or {}).items():
            info = zipfile.ZipInfo(name, DATA_TIME)
            info.create_system = 0
            info.external_attr = attributes
            archive.writestr(info, "made on Windows")
    return buffer.getvalue()


def _modes(data: bytes) -> dict[str, int]:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        return {info.filename: info.external_attr >> 16 for info in archive.infolist()}


def _run_step(cloud: server.LocalCloud, path: str, tmp_path: Path, name: str, **parameters: str) -> Any:
    """Run the Linux step like the agent: `sh _script.sh` in its own directory with SSM_<Name> variables."""
    work = tmp_path / name
    (work / "tmp").mkdir(parents=True)
    (work / "_script.sh").write_bytes(SCRIPT.read_bytes())
    names = ("Command", "WorkingDirectory", "InputBucket", "InputKey", "OutputBucket", "OutputKey",
             "OutputArtifactPath", "KmsKeyId", "PipelineName", "PipelineExecutionId", "PipelineArn")  # fmt: skip
    env = {
        **cloud.env(),
        "PATH": path,
        "HOME": str(work),
        "TMPDIR": str(work / "tmp"),
        "LANG": "C.UTF-8",
        "SSM_JobId": JOB_ID,
        **{f"SSM_{parameter}": parameters.get(parameter, "") for parameter in names},
    }
    return subprocess.run(["sh", "_script.sh"], cwd=work, env=env, capture_output=True, text=True, timeout=120)


def _job(cloud: server.LocalCloud, path: str, tmp_path: Path, name: str, source: bytes, command: str) -> Any:
    """One job: `source` as the input artifact, the whole working directory as the output artifact."""
    _s3(cloud).put_object(Bucket=BUCKET, Key=f"{name}/input.zip", Body=source)
    return _run_step(
        cloud, path, tmp_path, name,
        Command=command,
        WorkingDirectory=str(tmp_path / name / "workspace"),
        InputBucket=BUCKET, InputKey=f"{name}/input.zip",
        OutputBucket=BUCKET, OutputKey=f"{name}/output.zip", OutputArtifactPath=".",
    )  # fmt: skip


def _output(cloud: server.LocalCloud, name: str) -> bytes:
    return _s3(cloud).get_object(Bucket=BUCKET, Key=f"{name}/output.zip")["Body"].read()


def test_an_executable_build_script_runs_and_every_mode_survives_the_round_trip(cloud, step_path, tmp_path):
    path, _ = step_path

    source = _zip(SOURCE, {name: attributes for name, (attributes, _) in WINDOWS_MADE.items()})
    first = _job(cloud, path, tmp_path, "first", source, "./build.sh")

    assert first.returncode == 0, first.stderr
    assert first.stdout.rstrip().endswith("ec2-action: done")
    output = _output(cloud, "first")
    expected = {name: mode for name, (mode, _) in SOURCE.items()} | BUILT
    expected |= {name: mode for name, (_, mode) in WINDOWS_MADE.items()}
    assert {name: oct(mode) for name, mode in _modes(output).items()} == {
        name: oct(mode) for name, mode in expected.items()
    }
    with zipfile.ZipFile(io.BytesIO(output)) as archive:
        assert archive.read("latest") == b"tools/run"  # a link stays a link, with its target
        assert archive.read("out/tool-link") == b"bin/tool"
        assert archive.getinfo("src/data.txt").date_time == DATA_TIME  # unzipped with its time

    # The output of one job as the input of the next: unzipped and zipped again, nothing changes.
    second = _job(cloud, path, tmp_path, "second", output, "test -x ./build.sh && test -x ./out/bin/tool")

    assert second.returncode == 0, second.stderr
    assert _modes(_output(cloud, "second")) == _modes(output)


OUTSIDE_CASES = {
    "dot-dot": lambda outside: {"../outside/escaped.txt": (stat.S_IFREG | 0o644, "x")},
    "absolute": lambda outside: {f"{outside}/absolute.txt": (stat.S_IFREG | 0o644, "x")},
    "through-a-link": lambda outside: {
        "link": (stat.S_IFLNK | 0o777, str(outside)),
        "link/planted.txt": (stat.S_IFREG | 0o644, "x"),
    },
    "a-folder-mode-through-a-link": lambda outside: {
        "link": (stat.S_IFLNK | 0o777, str(outside)),
        "link/": (stat.S_IFDIR | 0o777, ""),
    },
}


@pytest.mark.parametrize("case", OUTSIDE_CASES)
def test_no_entry_lands_outside_the_working_directory(cloud, step_path, tmp_path, case):
    path, archivers = step_path
    outside = tmp_path / "job" / "outside"  # beside the working directory, tmp_path / "job" / "workspace"
    outside.mkdir(parents=True)
    outside.chmod(0o755)
    source = _zip({"build.sh": SOURCE["build.sh"], **OUTSIDE_CASES[case](outside)})

    result = _job(cloud, path, tmp_path, "job", source, "true")

    assert list(outside.iterdir()) == []
    assert stat.S_IMODE(outside.stat().st_mode) == 0o755
    if not archivers:  # Python refuses what unzip refuses or rewrites (it drops '../' and a leading '/')
        assert result.returncode == 66, result.stderr
        assert "ec2-action: refusing the zip entry" in result.stderr
        assert result.stderr.rstrip().endswith("ec2-action: the input artifact is not a valid zip file")
