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


# The document's parameters other than JobId, with their defaults (ssm/run-build.json.tftpl): the agent passes
# every declared parameter, a default where the command gives none.
PARAMETER_DEFAULTS = {
    "Command": "", "WorkingDirectory": "", "InputBucket": "", "InputKey": "", "OutputBucket": "", "OutputKey": "",
    "OutputArtifactPath": "", "KmsKeyId": "", "PipelineName": "", "PipelineExecutionId": "", "PipelineArn": "",
    "Pooled": "false", "ResetCommand": "",
}  # fmt: skip


def _run_step(
    cloud: server.LocalCloud,
    path: str,
    tmp_path: Path,
    name: str,
    instance_tmp: Path | None = None,
    job_id: str = JOB_ID,
    **parameters: str,
) -> Any:
    """Run the Linux step like the agent: `sh _script.sh` in its own directory with SSM_<Name> variables. The
    instance's TMPDIR is the step's own unless instance_tmp names one that several steps share (a pooled instance)."""
    work = tmp_path / name
    work.mkdir(parents=True, exist_ok=True)
    if instance_tmp is None:
        instance_tmp = work / "tmp"
    instance_tmp.mkdir(parents=True, exist_ok=True)
    (work / "_script.sh").write_bytes(SCRIPT.read_bytes())
    env = {
        **cloud.env(),
        "PATH": path,
        "HOME": str(work),
        "TMPDIR": str(instance_tmp),
        "LANG": "C.UTF-8",
        "SSM_JobId": job_id,
        **{f"SSM_{parameter}": parameters.get(parameter, default) for parameter, default in PARAMETER_DEFAULTS.items()},
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


# --- pooled instances (Pooled=true): one job after another on the same instance ------------------------------------

OTHER_JOB_ID = "87654321-4321-4321-8321-210987654321"
RETIRE_LINE = "ec2-action: retire-instance: "


@pytest.fixture
def pooled_instance(tmp_path: Path) -> tuple[str, Path]:
    """(PATH with unzip and zip, the instance's TMPDIR) where another job left its workspace behind: a read-only folder
    and a link to a folder outside, whose files must survive."""
    path = _path_of(tmp_path / "bin", archivers=True)
    instance_tmp = tmp_path / "instance-tmp"
    leftover = instance_tmp / "codepipeline-ec2-action" / OTHER_JOB_ID
    (leftover / "src").mkdir(parents=True)
    (leftover / "src" / "secret.txt").write_text("the other job's")
    (leftover / "src").chmod(0o555)
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("not the job's")
    (leftover / "link").symlink_to(outside)
    return path, instance_tmp


def _pooled_job(cloud: server.LocalCloud, path: str, tmp_path: Path, instance_tmp: Path, name: str, command: str,
                reset: str, pooled: str = "true") -> Any:  # fmt: skip
    """One job on the pooled instance, in its default workspace, the workspace as its output artifact."""
    return _run_step(
        cloud, path, tmp_path, name, instance_tmp,
        Command=command, Pooled=pooled, ResetCommand=reset,
        OutputBucket=BUCKET, OutputKey=f"{name}/output.zip", OutputArtifactPath=".",
    )  # fmt: skip


def test_a_pooled_step_removes_leftovers_first_and_its_workspace_last_then_resets(cloud, pooled_instance, tmp_path):
    path, instance_tmp = pooled_instance
    root = instance_tmp / "codepipeline-ec2-action"
    command = (
        f'if [ -e "{root / OTHER_JOB_ID}" ]; then echo "the leftover is still there"; fi\n'
        "mkdir -p frozen && printf built >frozen/out.txt && chmod 0555 frozen"
    )
    reset = (
        'echo "resetting in $PWD"\n'
        'if [ -e "$WORKSPACE" ]; then echo "the workspace is still there"; fi\n'
        f"aws s3api head-object --bucket {BUCKET} --key pooled/output.zip >/dev/null && echo 'the output was uploaded'"
    )

    result = _pooled_job(cloud, path, tmp_path, instance_tmp, "pooled", command, reset)

    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert f"ec2-action: removing the leftover workspace {root / OTHER_JOB_ID}" in lines
    assert "the leftover is still there" not in lines
    assert lines[lines.index("ec2-action: done") + 1 :] == [
        "ec2-action: running the reset command",
        "resetting in /",
        "the output was uploaded",
    ]
    assert RETIRE_LINE not in result.stderr
    assert list(root.iterdir()) == []  # the leftover and the job's own workspace
    assert [entry.name for entry in instance_tmp.iterdir()] == ["codepipeline-ec2-action"]  # the scratch folder too
    assert (tmp_path / "outside" / "keep.txt").read_text() == "not the job's"  # the link was not followed
    with zipfile.ZipFile(io.BytesIO(_output(cloud, "pooled"))) as archive:
        assert archive.read("frozen/out.txt") == b"built"


@pytest.mark.parametrize(("command", "status"), [("true", 0), ("echo compiling; exit 3", 3)], ids=["passed", "failed"])
def test_a_failed_reset_asks_for_retirement_and_keeps_the_builds_status(cloud, pooled_instance, tmp_path, command,
                                                                        status):  # fmt: skip
    path, instance_tmp = pooled_instance

    result = _pooled_job(cloud, path, tmp_path, instance_tmp, "reset-fails", command, "echo pruning\nexit 7")

    assert result.returncode == status, result.stderr
    assert "ec2-action: running the reset command\npruning\n" in result.stdout
    assert result.stderr.splitlines()[-1] == f"{RETIRE_LINE}the reset command exited 7"
    assert list((instance_tmp / "codepipeline-ec2-action").iterdir()) == []
    if status:
        assert "ec2-action: the build command exited with code 3\n" in result.stderr


def test_a_step_that_is_not_pooled_leaves_the_instance_as_it_was(cloud, pooled_instance, tmp_path):
    path, instance_tmp = pooled_instance
    root = instance_tmp / "codepipeline-ec2-action"

    result = _pooled_job(cloud, path, tmp_path, instance_tmp, "ephemeral", "printf built >out.txt", "exit 7", "false")

    assert result.returncode == 0, result.stderr
    assert sorted(entry.name for entry in root.iterdir()) == sorted([OTHER_JOB_ID, JOB_ID])
    assert (root / JOB_ID / "out.txt").read_text() == "built"
    assert "reset" not in result.stdout and RETIRE_LINE not in result.stderr


@pytest.mark.parametrize(("code", "step_code"), [(3, 3), (194, 1)])
def test_the_step_exits_with_the_builds_code_but_never_the_agents_reboot_code(
    cloud, step_path, tmp_path, code, step_code
):
    """194 would make the SSM Agent reboot the instance and run the build again: the step fails with 1 instead."""
    path, _ = step_path

    result = _run_step(cloud, path, tmp_path, f"exit-{code}", Command=f"exit {code}",
                       WorkingDirectory=str(tmp_path / f"exit-{code}" / "workspace"))  # fmt: skip

    assert result.returncode == step_code
    assert result.stderr.splitlines()[-1] == f"ec2-action: the build command exited with code {code}"
