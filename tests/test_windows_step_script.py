"""The Windows step (ssm/windows/run-build.ps1), checked by its structure: there is no PowerShell here to run it.

tree-sitter's PowerShell grammar parses it; the checks are what would otherwise show only on a Windows builder: a
syntax error, a command that is not there (a misspelt function, a function called before it is defined), the archive
cmdlets coming back, and failures that differ from the Linux step's.
"""

from __future__ import annotations

import json
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
    # The build's own code: "$step_status" differs from "$status" only for 194 (Linux's reboot code), as
    # Get-StepExitCode's only for 3010 and -1.
    return [
        (code.strip('"').replace("$step_status", "$status"), message)
        for code, message in re.findall(r'\bfail ("\$status"|"\$step_status"|\d+) "([^"]*)"', LINUX_SCRIPT.read_text())
    ]


def _windows_failures() -> list[tuple[str, str]]:
    """(exit code, message) of every Fail, written as the Linux step writes them: $SSM_X for $env:SSM_X, without
    the error record (': $_') that only PowerShell appends, and the build's own code for Get-StepExitCode's (it
    differs from it only for 3010 and -1, which bash cannot exit with)."""
    failures = []
    for name, node in _commands(_root()):
        if name == "Fail":
            code, message = _arguments(node)
            message = message[1:-1].removesuffix(": $_").replace("$env:", "$")
            failures.append((code.replace("(Get-StepExitCode $status)", "$status"), message))
    return failures


def test_failures_have_the_linux_steps_exit_codes_and_messages() -> None:
    linux = _linux_failures()

    assert len(linux) == 8
    assert _windows_failures() == linux


def test_a_build_exit_code_the_ssm_agent_reads_itself_fails_the_step_with_1() -> None:
    """3010 from a Windows step makes the SSM Agent reboot the instance and run the step again (a build that exits
    3010, as an installer asking for a reboot does, would run twice); -1 is the agent's code for a command stopped
    before its end. Every other code is passed on as the Linux step passes it on."""
    function = _functions(_root())["Get-StepExitCode"]
    (condition,) = [node for node in _walk(function) if node.type == "if_statement"]
    returns = [_text(node) for node in _walk(function) if node.type == "flow_control_statement"]

    assert _text(condition).startswith("if ($Status -eq 3010 -or $Status -eq -1) {")
    assert returns == ["return 1", "return $Status"]
    assert _text(function).startswith("function Get-StepExitCode([int] $Status) {")


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


# --- stop-on-error, native commands, parameters, encryption (as strict as the Linux step's checks) ----------------

TEMPLATE = REPO / "ssm" / "run-build.json.tftpl"
# The programs (not cmdlets, not functions) the step runs; each is run alone and its exit code checked at once.
NATIVE = {"powershell.exe"}
# Where an error may be let pass: removing the scratch folder at the very end (the Linux step's `rm -rf` is not
# checked either).
SILENCED = ["Remove-Item -LiteralPath $scratch -Recurse -Force -ErrorAction SilentlyContinue"]


def _statements(block: Node) -> list[Node]:
    """The statements of a statement list, in order."""
    return [child for child in block.children if child.is_named and child.type != "comment"]


def _statement_of(node: Node) -> Node:
    """The statement (a child of a statement_list) that holds node."""
    while node.parent is not None and node.parent.type != "statement_list":
        node = node.parent
    return node


def _document_parameters() -> dict[str, dict[str, str]]:
    text = TEMPLATE.read_text().replace("${linux_script_lines}", "[]").replace("${windows_script_lines}", "[]")
    return json.loads(text)["parameters"]


def test_stop_on_error_and_strict_mode_come_before_anything_runs() -> None:
    first = [_text(node) for node in _statements(next(c for c in _root().children if c.type == "statement_list"))]

    assert first[:3] == [
        "$ErrorActionPreference = 'Stop'",
        "$ProgressPreference = 'SilentlyContinue'",
        "Set-StrictMode -Version 3.0",
    ]
    assignments = [
        _text(node)
        for node in _walk(_root())
        if node.type == "assignment_expression" and "ErrorActionPreference" in _text(node.children[0])
    ]
    assert assignments == ["$ErrorActionPreference = 'Stop'"]  # never relaxed in the step
    silenced = [_text(node) for name, node in _commands(_root()) if re.search(r"-ErrorAction\b", _text(node))]
    assert silenced == SILENCED
    assert not any(node.type == "trap_statement" for node in _walk(_root()))


def test_every_error_caught_fails_the_job_or_retires_the_instance() -> None:
    """No catch block swallows an error: each ends the job with Fail, rethrows, or records why a pooled instance must
    be retired (its build's result unchanged, as on Linux)."""
    for node in _walk(_root()):
        if node.type == "catch_clause":
            body = _text(node)
            assert re.search(r"\bFail \d+ |\bthrow\b|\$retireReason = ", body), body


def test_every_native_command_runs_alone_and_its_exit_code_is_checked_at_once() -> None:
    """A native command's failure is not an error in Windows PowerShell 5.1: only $LASTEXITCODE tells. Each is the
    whole of its statement (not piped, no redirection: 5.1 turns a redirected program's stderr lines into error
    records, which 'Stop' makes terminating), the next statement reads $LASTEXITCODE, the one after tests it."""
    root = _root()
    functions = _functions(root)
    natives = [(name, node) for name, node in _commands(root) if name not in CMDLETS or name in NATIVE]
    natives = [(name, node) for name, node in natives if name not in functions]

    assert sorted({name for name, _ in natives}) == sorted(NATIVE)
    assert len(natives) == 2  # the build command and the reset command
    for _, node in natives:
        statement = _statement_of(node)
        assert _text(statement) == _text(node), "a native command is piped or assigned"
        assert not re.search(r"(^|\s)[1-6*]?>", _text(node)), "a native command's output is redirected"
        read, test = statement.next_named_sibling, statement.next_named_sibling.next_named_sibling
        variable = re.fullmatch(r"(\$\w+) = \$LASTEXITCODE", _text(read))
        assert variable, _text(read)
        assert test.type == "if_statement" and _text(test).startswith(f"if ({variable[1]} -ne 0) {{")
        assert re.search(rf"Fail \(Get-StepExitCode \{variable[1]}\)|\$retireReason = .*\{variable[1]}", _text(test))


def test_the_commands_run_with_stop_on_error_and_their_exit_code_kept() -> None:
    """The build and reset commands run in a child PowerShell from the file their parameter was written to (data,
    never script): stop-on-error, then the script's own exit code passed on (a script's `exit N`, or the
    $LASTEXITCODE its last program left)."""
    child = re.compile(
        r"& powershell\.exe -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command "
        r"\"`\$ErrorActionPreference = 'Stop'; & '\$\(\$(\w+)\.Replace\(\"'\", \"''\"\)\)'; "
        r"if \(`\$LASTEXITCODE\) \{ exit `\$LASTEXITCODE \}\""
    )
    calls = [child.fullmatch(_text(node)) for name, node in _commands(_root()) if name == "powershell.exe"]

    assert [match[1] for match in calls if match] == ["commandFile", "resetFile"]
    text = SCRIPT.read_text()
    assert "Set-Content -LiteralPath $commandFile -Value $env:SSM_Command -Encoding UTF8" in text
    assert "Set-Content -LiteralPath $resetFile -Value $env:SSM_ResetCommand -Encoding UTF8" in text


def _windows_parameters_read() -> set[str]:
    """The parameters the step reads: every $env:SSM_<Name> variable, in code or inside a string."""
    return {
        _text(node).removeprefix("$env:SSM_")
        for node in _walk(_root())
        if node.type == "variable" and _text(node).startswith("$env:SSM_")
    }


def test_every_parameter_is_read_from_its_environment_variable_and_never_pasted_into_code() -> None:
    """interpolationType ENV_VAR puts each parameter in $env:SSM_<Name>; a {{ Name }} in the script would paste the
    value into the code the agent runs. Values reach code only as files the child PowerShell runs."""
    parameters = _document_parameters()
    env_parameters = {name for name, spec in parameters.items() if spec.get("interpolationType") == "ENV_VAR"}
    linux = set(re.findall(r"\$\{?SSM_(\w+)", LINUX_SCRIPT.read_text()))
    text = SCRIPT.read_text()

    assert "{{" not in text
    assert _windows_parameters_read() == env_parameters == linux
    assert set(parameters) - env_parameters == {"executionTimeout"}  # digits only, the steps' timeoutSeconds
    assert not re.search(r"(?i)invoke-expression|\biex\b|scriptblock\]::create|-TypeDefinition|-EncodedCommand", text)
    for name, node in _commands(_root()):
        if name in NATIVE:
            assert "$env:" not in _text(node), "a parameter is pasted into a native command line"


def test_the_output_artifact_is_uploaded_with_sse_kms_as_on_linux() -> None:
    """Write-S3Object is the only S3 write; its splatted parameters ask for aws:kms, and the action's KmsKeyId (when
    set) under the parameter name of AWS Tools for PowerShell, as `--server-side-encryption aws:kms --ssekms-key-id`
    on Linux."""
    root = _root()
    writes = [(name, node) for name, node in _commands(root) if re.fullmatch(r"(?i)(write|copy)-s3object", name)]
    (upload,) = [node for node in _walk(root) if node.type == "assignment_expression" and _text(node).startswith(
        "$upload = @{")]  # fmt: skip
    entries = {
        _text(next(c for c in entry.children if c.type == "key_expression")): _text(entry.children[-1])
        for entry in _walk(upload)
        if entry.type == "hash_entry"
    }

    assert [_arguments(node) for _, node in writes] == [["@upload"]]
    assert entries == {
        "BucketName": "$env:SSM_OutputBucket",
        "Key": "$env:SSM_OutputKey",
        "File": "$outputZip",
        "ServerSideEncryption": "'aws:kms'",
    }
    assert (
        "if (-not [string]::IsNullOrEmpty($env:SSM_KmsKeyId)) {\n"
        "            $upload['ServerSideEncryptionKeyManagementServiceKeyId'] = $env:SSM_KmsKeyId\n"
        "        }"
    ) in SCRIPT.read_text()
    assert _statement_of(writes[0][1]).start_byte > upload.start_byte
    linux = LINUX_SCRIPT.read_text()
    assert "encryption=(--server-side-encryption aws:kms)" in linux
    assert 'encryption+=(--ssekms-key-id "$SSM_KmsKeyId")' in linux


# Progress lines only the Windows step writes: the Linux step stores a link as a link.
WINDOWS_ONLY_LINES = ["not following the link to a folder '$name' in OutputArtifactPath"]


def test_progress_lines_are_the_linux_steps() -> None:
    linux = re.findall(r'echo "ec2-action: ([^"]*)"(?! >&2)', LINUX_SCRIPT.read_text())
    windows = [
        _arguments(node)[0][1:-1].removeprefix("ec2-action: ").replace("$env:", "$")
        for name, node in _commands(_root())
        if name == "Write-Output"
    ]

    assert sorted(windows) == sorted(linux + WINDOWS_ONLY_LINES)
    assert sorted(linux) == sorted(
        [
            "running the reset command",
            "removing the leftover workspace $leftover",
            "job $JobId of pipeline '$PipelineName' in $workspace",
            "downloading the input artifact s3://$SSM_InputBucket/$SSM_InputKey",
            "running the build command",
            "the build command succeeded",
            "uploading the output artifact to s3://$SSM_OutputBucket/$SSM_OutputKey",
            "done",
        ]
    )


def test_the_documents_windows_step_is_the_file_byte_for_byte_and_ascii() -> None:
    """Terraform inlines the file's lines (split on "\\n") as the step's runCommand; the SSM Agent joins them into
    _script.ps1. The step is plain ASCII with "\\n" line ends: Windows PowerShell 5.1 reads a file without a byte order
    mark as the system's ANSI code page, so any other character would change on the way."""
    from harness import rendered

    steps = {step["name"]: step for step in json.loads(rendered.ssm_document())["mainSteps"]}
    data = SCRIPT.read_bytes()

    assert "\n".join(steps["BuildOnWindows"]["inputs"]["runCommand"]).encode() == data
    assert steps["BuildOnWindows"]["action"] == "aws:runPowerShellScript"
    assert steps["BuildOnWindows"]["precondition"] == {"StringEquals": ["platformType", "Windows"]}
    assert data.isascii() and b"\r" not in data and not data.startswith(b"\xef\xbb\xbf")


def test_every_test_the_design_parity_table_names_exists() -> None:
    """DESIGN.md's "Linux and Windows steps side by side" names the test of each row: each name is a test here."""
    design = (REPO / "DESIGN.md").read_text()
    section = design.split("### Linux and Windows steps side by side", 1)[1].split("\n## ", 1)[0]
    named = set(re.findall(r"\b(test_\w+\*?)`", section))
    defined = {
        name
        for path in (REPO / "tests").rglob("test_*.py")
        for name in re.findall(r"^def (test_\w+)\(", path.read_text(), re.MULTILINE)
    }

    assert len(named) >= 15
    missing = [name for name in named if not any(d == name or d.startswith(name.rstrip("*")) for d in defined)]
    assert missing == []
