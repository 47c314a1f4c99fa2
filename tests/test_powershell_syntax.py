"""The PowerShell syntax check of `make lint` (scripts/check_powershell.py): it passes on every script we ship and
fails on a broken one, naming its file and line."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
CHECKER = REPO_ROOT / "scripts" / "check_powershell.py"
STEP = REPO_ROOT / "ssm" / "windows" / "run-build.ps1"
# A line of the Windows step and the same line with a syntax error in it.
GOOD_LINE = "    if ($status -ne 0) {\n"
BROKEN_LINE = "    if ($status -ne ) {\n"


def _load_checker() -> ModuleType:
    spec = importlib.util.spec_from_file_location("check_powershell", CHECKER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


check_powershell = _load_checker()


def _run(*files: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), *map(str, files)], capture_output=True, text=True, cwd=REPO_ROOT, timeout=120
    )


def _broken_step(tmp_path: Path) -> tuple[Path, int]:
    """A copy of the Windows step with a syntax error, and the 1-based number of its broken line."""
    text = STEP.read_text()
    assert text.count(GOOD_LINE) == 1
    line = text[: text.index(GOOD_LINE)].count("\n") + 1
    broken = tmp_path / "run-build.ps1"
    broken.write_text(text.replace(GOOD_LINE, BROKEN_LINE))
    return broken, line


def test_every_script_we_ship_parses_and_none_is_left_out() -> None:
    result = _run()

    assert result.returncode == 0, result.stderr
    sources = [line.strip() for line in result.stdout.splitlines()[1:]]
    assert "ssm/windows/run-build.ps1" in sources
    assert "examples/windows-container-pipeline/source/build.ps1" in sources
    assert "modules/builder/user_data/windows.ps1" in sources
    assert "SSM document (modules/ssm_document_content) step BuildOnWindows" in sources
    tracked = subprocess.run(["git", "ls-files", "*.ps1"], cwd=REPO_ROOT, capture_output=True, text=True, check=True)
    assert set(tracked.stdout.split()) <= set(sources)


def test_a_broken_script_fails_the_check_naming_its_file_and_line(tmp_path: Path) -> None:
    broken, line = _broken_step(tmp_path)

    result = _run(broken)

    assert result.returncode == 1
    assert result.stderr.splitlines()[0] == f"{broken}:{line}:17: cannot parse '-ne'"
    assert _run(STEP).returncode == 0  # the same file unbroken passes


@pytest.mark.parametrize(
    ("script", "expected"),
    [
        ("if ($a) {\n    Write-Output 'a'\n", "2:21: missing '}' (to close what starts on line 1)"),
        ("$text = 'not closed\nWrite-Output 1\n", '1:8: cannot parse "\'not closed..."'),
        ("$table = @{ a = 1; b = }\n", "1:20: cannot parse 'b ='"),
        ("Write-Output 1\ntry { Remove-Item x }\n", "2:1: a try statement needs a catch or a finally block"),
    ],
    ids=["unclosed-brace", "unclosed-string", "hashtable-without-value", "try-alone"],
)
def test_each_kind_of_error_is_named_with_its_line(script: str, expected: str) -> None:
    errors = check_powershell.parse_errors(check_powershell.Script("x.ps1", script))

    assert errors != []
    assert str(errors[0]).startswith(f"x.ps1:{expected}")


def test_a_new_script_is_checked_before_it_is_committed_and_an_ignored_one_is_not(tmp_path: Path) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    (tmp_path / ".gitignore").write_text("build/\n")
    (tmp_path / "tracked.ps1").write_text("Write-Output 1\n")
    subprocess.run(["git", "add", "tracked.ps1"], cwd=tmp_path, check=True)
    (tmp_path / "modules" / "builder" / "user_data").mkdir(parents=True)
    (tmp_path / "modules" / "builder" / "user_data" / "windows.ps1").write_text("shutdown /s /t ${seconds}\n")
    (tmp_path / "build").mkdir()
    (tmp_path / "build" / "copy.ps1").write_text("if (\n")

    scripts = check_powershell.repository_scripts(tmp_path)

    assert [script.source for script in scripts] == ["modules/builder/user_data/windows.ps1", "tracked.ps1"]
    assert [check_powershell.parse_errors(script) for script in scripts] == [[], []]


def test_a_broken_step_is_caught_in_the_rendered_document(tmp_path: Path) -> None:
    shutil.copytree(REPO_ROOT / "ssm", tmp_path / "ssm")
    shutil.copytree(REPO_ROOT / "modules" / "ssm_document_content", tmp_path / "modules" / "ssm_document_content")
    broken, line = _broken_step(tmp_path)
    shutil.copy(broken, tmp_path / "ssm" / "windows" / "run-build.ps1")

    (step,) = check_powershell.document_scripts(tmp_path / "modules")

    assert step.source.endswith("step BuildOnWindows")
    assert [(error.line, error.what) for error in check_powershell.parse_errors(step)] == [(line, "cannot parse '-ne'")]
