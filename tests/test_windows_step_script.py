"""The Windows step (ssm/windows/run-build.ps1), checked by its structure: there is no PowerShell here to run it.

tree-sitter's PowerShell grammar parses it; the checks are what would otherwise show only on a Windows builder: a
syntax error, a command that is not there (a misspelt function, a function called before it is defined), the archive
cmdlets coming back, and failures that differ from the Linux step's.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "ssm" / "windows" / "run-build.ps1"
LINUX_SCRIPT = REPO / "ssm" / "linux" / "run-build.sh"
PARSER = Parser(Language(tree_sitter_powershell.language()))
# The cmdlets and programs the step may call: Windows PowerShell 5.1's and the AWS Tools for PowerShell's.
CMDLETS = {
    "Add-Type", "Join-Path", "New-Item", "New-Object", "Out-Null", "Read-S3Object", "Remove-Item", "Set-Content",
    "Set-Location", "Set-StrictMode", "Where-Object", "Write-Output", "Write-S3Object", "powershell.exe",
}  # fmt: skip


def _root() -> Node:
    return PARSER.parse(SCRIPT.read_bytes()).root_node


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _text(node: Node) -> str:
    return (node.text or b"").decode()


def _commands(root: Node) -> list[tuple[str, Node]]:
    """(name, node) of every command the script runs, in the order they appear."""
    found = []
    for node in _walk(root):
        if node.type == "command":
            name = next(n for n in _walk(node) if n.type == "command_name")
            found.append((_text(name), node))
    return found


def _functions(root: Node) -> dict[str, Node]:
    return {
        _text(next(n for n in node.children if n.type == "function_name")): node
        for node in _walk(root)
        if node.type == "function_statement"
    }


def _arguments(command: Node) -> list[str]:
    elements = next((n for n in command.children if n.type == "command_elements"), None)
    return [_text(n) for n in elements.children if n.type != "command_argument_sep"] if elements else []


def test_the_windows_step_parses() -> None:
    errors = [
        f"line {node.start_point.row + 1}: {_text(node)[:80]!r}"
        for node in _walk(_root())
        if node.type == "ERROR" or node.is_missing
    ]

    assert errors == []


def test_every_command_is_a_known_cmdlet_or_a_function_defined_above_it() -> None:
    root = _root()
    functions = _functions(root)

    unknown = [
        f"line {node.start_point.row + 1}: {name}"
        for name, node in _commands(root)
        if name not in CMDLETS and (name not in functions or functions[name].start_byte > node.start_byte)
    ]

    assert unknown == []
    assert set(functions) >= {"Fail", "Expand-InputArtifact", "Compress-OutputArtifact"}


def test_the_artifacts_are_not_zipped_with_the_archive_cmdlets() -> None:
    # In Windows PowerShell 5.1 (Microsoft.PowerShell.Archive 1.0.1) Expand-Archive and Compress-Archive stop at paths
    # of 260 characters without LongPathsEnabled; Compress-Archive writes '\' in the names of nested entries (unzip
    # on Linux then fails the next action), leaves hidden files and folders out, and stops at files of 2 GB.
    names = {name for name, _ in _commands(_root())}

    assert names.isdisjoint({"Expand-Archive", "Compress-Archive", "Test-Path", "Get-ChildItem"})


def _linux_failures() -> list[tuple[str, str]]:
    return [
        (code.strip('"'), message)
        for code, message in re.findall(r'\bfail ("\$status"|\d+) "([^"]*)"', LINUX_SCRIPT.read_text())
    ]


def _windows_failures() -> list[tuple[str, str]]:
    """(exit code, message) of every Fail, written as the Linux step writes them: $SSM_X for $env:SSM_X, without
    the error record (': $_') that only PowerShell appends."""
    failures = []
    for name, node in _commands(_root()):
        if name == "Fail":
            code, message = _arguments(node)
            message = message[1:-1].removesuffix(": $_").replace("$env:", "$")
            failures.append((code, message))
    return failures


def test_failures_have_the_linux_steps_exit_codes_and_messages() -> None:
    linux = _linux_failures()

    assert len(linux) == 8
    assert _windows_failures() == linux


# --- pooled instances (Pooled=true) ---------------------------------------------------------------------------------

RETIRE_REASON = re.compile(r"ec2-action: retire-instance: |the reset command exited \$\{?\w+\}?")


def _job_block() -> tuple[Node, Node]:
    """(the body, the finally block) of the try statement that runs the job: the one that uploads the output."""
    for node in _walk(_root()):
        if node.type == "try_statement" and node.children[-1].type == "finally_clause":
            body, final = node.children[1], node.children[-1]
            if any(name == "Write-S3Object" for name, _ in _commands(body)):
                return body, final
    raise AssertionError("no try statement uploads the output artifact")


def _calls(block: Node) -> list[str]:
    """Each command in the block as 'name first-argument', in order."""
    return [" ".join([name, *_arguments(node)[:1]]) for name, node in _commands(block)]


def test_a_pooled_job_removes_leftovers_before_it_creates_its_workspace() -> None:
    body, _ = _job_block()
    calls = _calls(body)

    assert calls.index("Remove-Tree $leftover") < calls.index("New-Item -ItemType")
    assert "if ($leftover -ne $defaultWorkspace)" in _text(body)


def test_a_pooled_job_is_cleaned_up_after_the_upload_whatever_its_outcome() -> None:
    # The finally block runs on success, on Fail (exit inside try) and on an unexpected error alike.
    _, final = _job_block()
    calls = _calls(final)

    assert calls == [
        "Set-Location -LiteralPath",
        "Remove-Tree $defaultWorkspace",
        "Join-Path $scratch",
        "Set-Content -LiteralPath",
        "Write-Output 'ec2-action: running the reset command'",
        "powershell.exe -NoProfile",
        "Remove-Item -LiteralPath",
    ]
    assert "if ($pooled) {" in _text(final)
    assert "$env:SSM_ResetCommand" in _text(final)


def test_the_build_status_survives_the_reset_command() -> None:
    """The reset command's exit code ($LASTEXITCODE) must not become the step's: Fail records the build's, the job's
    end records 0, and the finally block exits with it (never when an unexpected error is on its way out)."""
    fail = _functions(_root())["Fail"]
    _, final = _job_block()
    last = next(node for node in final.children[-1].children if node.type == "statement_list").children[-1]

    assert [_text(node) for node in _walk(fail) if node.type == "assignment_expression"] == [
        "$script:exitStatus = $Code"
    ]
    assert _text(last).startswith("if ($pooled -and $null -ne $exitStatus) {")
    assert _calls(last) == [] and _text(last).rstrip("} \n").endswith("exit $exitStatus")
    assert "$exitStatus = 0" in SCRIPT.read_text()


def test_the_retire_line_is_the_linux_steps() -> None:
    windows = RETIRE_REASON.findall(SCRIPT.read_text())
    linux = RETIRE_REASON.findall(LINUX_SCRIPT.read_text())

    assert [reason.split("$")[0] for reason in windows] == [reason.split("$")[0] for reason in linux]
    assert windows[-1] == "ec2-action: retire-instance: "
    assert '[Console]::Error.WriteLine("ec2-action: retire-instance: $retireReason")' in SCRIPT.read_text()
