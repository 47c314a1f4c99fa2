#!/usr/bin/env python3
"""Syntax check of every PowerShell script the module ships, with tree-sitter's PowerShell grammar.

There is no PowerShell on the machines that build and test the module, so a PowerShell syntax error would otherwise
show only on a Windows builder, in a user's pipeline. `make lint` runs this over:

- every *.ps1 file in the repository (tracked, or new and not ignored): the SSM document's Windows step
  (ssm/windows/run-build.ps1), the Windows launch template's user data (modules/builder/user_data/windows.ps1, which
  the template wraps in `<powershell>` tags), the builder image's components, the examples' build scripts;
- the PowerShell inside the SSM document's aws:runPowerShellScript steps, as Terraform renders the document
  (modules/ssm_document_content): the lines the SSM Agent writes into its script file.

A parse error fails the check and is printed as `<source>:<line>:<column>: <what>`.

    python scripts/check_powershell.py            # everything above
    python scripts/check_powershell.py FILE...    # only these files

The grammar accepts some scripts PowerShell's own parser refuses (it is a grammar, not the parser); the one such
rule checked here besides it is PowerShell's "a try statement needs a catch or a finally block".
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tree_sitter_powershell
from tree_sitter import Language, Node, Parser

REPO_ROOT = Path(__file__).resolve().parents[1]
PARSER = Parser(Language(tree_sitter_powershell.language()))


@dataclass(frozen=True)
class Script:
    """A PowerShell script to check: where it comes from (a file, or what renders it) and its text."""

    source: str
    text: str


@dataclass(frozen=True)
class ParseError:
    source: str
    line: int
    column: int
    what: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}:{self.column}: {self.what}"


def _walk(node: Node) -> Iterator[Node]:
    yield node
    for child in node.children:
        yield from _walk(child)


def _excerpt(node: Node) -> str:
    text = (node.text or b"").decode(errors="replace").strip()
    first = text.splitlines()[0] if text else ""
    return first[:60] + ("..." if len(first) > 60 or "\n" in text else "")


def parse_errors(script: Script) -> list[ParseError]:
    """Every place the grammar cannot parse (or finds something missing), first to last, 1-based lines and columns.

    An ERROR node inside another is reported once, at the outer one: it is where the parse went wrong."""
    root = PARSER.parse(script.text.encode()).root_node
    found: list[ParseError] = []
    reported_up_to = -1
    for node in _walk(root):
        row, column = node.start_point.row + 1, node.start_point.column + 1
        if node.is_missing:
            opened = f" (to close what starts on line {node.parent.start_point.row + 1})" if node.parent else ""
            found.append(ParseError(script.source, row, column, f"missing {node.type!r}{opened}"))
        elif node.type == "ERROR" and node.start_byte >= reported_up_to:
            found.append(ParseError(script.source, row, column, f"cannot parse {_excerpt(node)!r}"))
            reported_up_to = node.end_byte
        elif node.type == "try_statement" and not any(
            child.type in ("catch_clauses", "catch_clause", "finally_clause") for child in node.children
        ):
            found.append(ParseError(script.source, row, column, "a try statement needs a catch or a finally block"))
    return found


def repository_scripts(repo_root: Path = REPO_ROOT) -> list[Script]:
    """Every *.ps1 file of the work tree that git tracks or would track (new files too, ignored ones not)."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard", "--", "*.ps1"],
        cwd=repo_root,
        check=True,
        capture_output=True,
    ).stdout.decode()
    paths = sorted({path for path in listed.split("\0") if path and (repo_root / path).is_file()})
    return [Script(path, (repo_root / path).read_text(encoding="utf-8-sig")) for path in paths]


def document_scripts(modules_dir: Path = REPO_ROOT / "modules") -> list[Script]:
    """The script of each aws:runPowerShellScript step of the SSM document as Terraform renders it (the tests'
    harness applies modules/ssm_document_content, which needs no provider): its runCommand lines joined with "\\n",
    as the SSM Agent writes them into the step's _script.ps1."""
    sys.path.insert(0, str(REPO_ROOT / "tests"))
    try:
        from harness import rendered
    finally:
        sys.path.remove(str(REPO_ROOT / "tests"))
    document = json.loads(rendered.ssm_document(modules_dir=modules_dir))
    source = "SSM document (modules/ssm_document_content) step {}"
    return [
        Script(source.format(step["name"]), "\n".join(step["inputs"]["runCommand"]))
        for step in document["mainSteps"]
        if step["action"] == "aws:runPowerShellScript"
    ]


def shipped_scripts(repo_root: Path = REPO_ROOT) -> list[Script]:
    return repository_scripts(repo_root) + document_scripts(repo_root / "modules")


def main(argv: list[str] | None = None) -> int:
    arguments = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    arguments.add_argument("files", nargs="*", type=Path, help="check only these files")
    files = arguments.parse_args(argv).files
    scripts = [Script(str(path), path.read_text(encoding="utf-8-sig")) for path in files] or shipped_scripts()
    errors = [error for script in scripts for error in parse_errors(script)]
    for error in errors:
        print(error, file=sys.stderr)
    if errors:
        print(f"PowerShell syntax: {len(errors)} error(s) in {len(scripts)} script(s)", file=sys.stderr)
        return 1
    print(f"PowerShell syntax: {len(scripts)} script(s) parse:")
    for script in scripts:
        print(f"  {script.source}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
