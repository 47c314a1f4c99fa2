"""The packaging: reproducible zips, what they hold, and that the committed ones match the sources."""

import importlib.util
import py_compile
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("lambda_build", ROOT / "lambda_src" / "build.py")
build = importlib.util.module_from_spec(spec)
spec.loader.exec_module(build)


def test_code_zip_is_byte_identical_across_builds(tmp_path: Path) -> None:
    # Bytecode beside the sources (as any import leaves it) must not reach the zip.
    py_compile.compile(str(ROOT / "lambda_src" / "ec2_action" / "__init__.py"), doraise=True)
    first, second = tmp_path / "a.zip", tmp_path / "b.zip"
    build.write_zip(first, build.code_entries())
    build.write_zip(second, dict(reversed(build.code_entries().items())))
    assert first.read_bytes() == second.read_bytes()
    with zipfile.ZipFile(first) as archive:
        assert not [name for name in archive.namelist() if "__pycache__" in name or name.endswith(".pyc")]


def test_entries_are_sorted_with_fixed_times_and_modes(tmp_path: Path) -> None:
    target = tmp_path / "code.zip"
    build.write_zip(target, build.code_entries())
    with zipfile.ZipFile(target) as archive:
        infos = archive.infolist()
    names = [info.filename for info in infos]
    assert names == sorted(names)
    assert "ec2_action/handlers/poll.py" in names and "ec2_action/handlers/" in names
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    modes = {info.filename: info.external_attr >> 16 for info in infos}
    assert {oct(m) for n, m in modes.items() if n.endswith("/")} == {"0o40755"}
    assert {oct(m) for n, m in modes.items() if not n.endswith("/")} == {"0o100644"}


def test_every_handler_module_is_packaged() -> None:
    with zipfile.ZipFile(ROOT / "lambda_src" / "dist" / "ec2_action.zip") as archive:
        names = set(archive.namelist())
    for handler in ("poll", "acquire", "wait_online", "run_command", "command_event", "release", "report", "reap"):
        assert f"ec2_action/handlers/{handler}.py" in names


def test_layer_vendors_powertools_xray_and_their_dependencies_but_not_the_runtimes_packages() -> None:
    with zipfile.ZipFile(ROOT / "lambda_src" / "dist" / build.LAYER_ZIP) as archive:
        tops = {name.split("/")[1] for name in archive.namelist() if name.startswith("python/") and name != "python/"}
    assert {"aws_lambda_powertools", "typing_extensions.py", "aws_xray_sdk", "wrapt"} <= tops
    assert not {"botocore", "boto3", "jmespath"} & tops


# What the Lambda Python runtime ships besides the standard library (boto3 and what it imports).
RUNTIME_PACKAGES = ("boto3", "botocore", "jmespath", "s3transfer", "dateutil", "six", "urllib3")


def handler_import_failures(code_zip: Path, layer_zip: Path, work: Path) -> dict[str, str]:
    """Each handler that does not import in a fresh interpreter that sees only the standard library, the runtime's
    packages, the layer and the code (as in Lambda), with its error."""
    runtime = work / "runtime"
    runtime.mkdir()
    for name in RUNTIME_PACKAGES:
        spec = importlib.util.find_spec(name)
        assert spec is not None and spec.origin is not None
        origin = Path(spec.origin)
        source = origin.parent if origin.name == "__init__.py" else origin
        (runtime / source.name).symlink_to(source)
    zipfile.ZipFile(code_zip).extractall(work / "code")
    zipfile.ZipFile(layer_zip).extractall(work / "layer")
    paths = [str(work / "code"), str(work / "layer" / "python"), str(runtime)]
    failures = {}
    for handler in sorted(path.stem for path in (work / "code" / "ec2_action" / "handlers").glob("[!_]*.py")):
        run = subprocess.run(
            [
                sys.executable,
                "-I",
                "-S",
                "-c",
                f"import sys; sys.path[:0] = {paths!r}; import ec2_action.handlers.{handler}",
            ],
            capture_output=True,
            text=True,
        )
        if run.returncode:
            failures[handler] = run.stderr.strip().splitlines()[-1]
    return failures


def test_every_handler_imports_with_only_the_runtime_the_layer_and_the_code(tmp_path: Path) -> None:
    dist = ROOT / "lambda_src" / "dist"
    assert handler_import_failures(dist / build.CODE_ZIP, dist / build.LAYER_ZIP, tmp_path) == {}


def test_check_fails_with_a_clear_message_when_a_committed_zip_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(build, "DIST", tmp_path)
    monkeypatch.setattr(build, "layer_entries", lambda: {"python/wrapt/__init__.py": b"# wrapt"})
    build.write_zip(tmp_path / "ec2_action.zip", build.code_entries())
    build.write_zip(tmp_path / build.LAYER_ZIP, build.layer_entries())
    assert build.check() == 0
    assert "ec2_action.zip: up to date" in capsys.readouterr().out

    stale = {**build.code_entries(), "ec2_action/removed.py": b""}
    build.write_zip(tmp_path / "ec2_action.zip", stale)
    assert build.check() == 1
    error = capsys.readouterr().err
    assert "ec2_action.zip differs from a fresh build" in error and "ec2_action/removed.py" in error
    assert "make build" in error
