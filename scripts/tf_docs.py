#!/usr/bin/env python3
"""Write the inputs and outputs tables of the root module and of each submodule into their README.md.

The tables go between `<!-- BEGIN_TF_DOCS -->` and `<!-- END_TF_DOCS -->`; everything else in the README is left
alone. A README without the markers gets them appended; a missing README is created with only the markers.

    python scripts/tf_docs.py           # rewrite the tables
    python scripts/tf_docs.py --check   # exit 1, naming the stale READMEs, if a table is out of date

Needs only the standard library and python-hcl2 (`import hcl2`).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path
from typing import Any

import hcl2

REPO_ROOT = Path(__file__).resolve().parents[1]
BEGIN = "<!-- BEGIN_TF_DOCS -->"
END = "<!-- END_TF_DOCS -->"
PARSE_OPTIONS = hcl2.SerializationOptions(
    with_comments=False,
    explicit_blocks=False,
    preserve_heredocs=False,
    strip_string_quotes=True,
)


def module_dirs(repo_root: Path = REPO_ROOT) -> list[Path]:
    """The root module and every submodule under modules/."""
    return [repo_root, *sorted(path for path in (repo_root / "modules").iterdir() if path.is_dir())]


def label(name: str) -> str:
    """A block label as hcl2 gives it, without quotes."""
    return name.strip('"')


def load_blocks(directory: Path, kind: str) -> dict[str, dict[str, Any]]:
    """Every block of one kind (variable, output, resource, module...) in a directory's .tf files, by label.

    Resources are keyed "type.name".
    """
    blocks: dict[str, dict[str, Any]] = {}
    for path in sorted(directory.glob("*.tf")):
        parsed = hcl2.loads(path.read_text(), serialization_options=PARSE_OPTIONS)
        for entry in parsed.get(kind, []):
            for first, body in entry.items():
                if kind in {"resource", "data"}:
                    for name, attributes in body.items():
                        blocks[f"{label(first)}.{label(name)}"] = attributes
                else:
                    blocks[label(first)] = body
    return blocks


def expression(value: Any) -> str:
    """An HCL expression as hcl2 serialized it, as HCL text: "${list(string)}" -> list(string)."""
    if isinstance(value, str) and value.startswith("${") and value.endswith("}"):
        value = value[2:-1]
    return " ".join(str(value).split())


def hcl_value(value: Any) -> str:
    """A default value written as HCL."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return json.dumps(value)
    if isinstance(value, str):
        return expression(value) if value.startswith("${") else json.dumps(value)
    if isinstance(value, list):
        return "[" + ", ".join(hcl_value(item) for item in value) + "]"
    if isinstance(value, dict):
        items = ", ".join(f"{label(key)} = {hcl_value(item)}" for key, item in value.items())
        return "{" + items + "}" if items else "{}"
    return str(value)


def cell(text: str) -> str:
    """Text fit for one Markdown table cell."""
    return " ".join(text.split()).replace("|", "\\|")


def code_cell(text: str) -> str:
    return f"`{cell(text)}`" if "`" not in text else f"<code>{cell(text)}</code>"


def unescape(text: str) -> str:
    """An HCL string's content with its escapes (\\" \\n ...) resolved; JSON's escapes are HCL's."""
    try:
        return json.loads(f'"{text}"', strict=False)
    except json.JSONDecodeError:
        return text


def description(block: dict[str, Any]) -> str:
    return re.sub(r"\s+", " ", unescape(str(block.get("description", "")))).strip()


def render(directory: Path) -> str:
    """The Markdown between the markers for one module directory."""
    variables = load_blocks(directory, "variable")
    outputs = load_blocks(directory, "output")
    lines = [BEGIN, "## Inputs", ""]
    if variables:
        lines += ["| Name | Description | Type | Default | Required |", "| --- | --- | --- | --- | :---: |"]
        ordered = sorted(variables.items(), key=lambda item: ("default" in item[1], item[0]))
        for name, block in ordered:
            has_default = "default" in block
            default = code_cell(hcl_value(block["default"])) if has_default else "n/a"
            lines.append(
                f"| `{name}` | {cell(description(block))} | {code_cell(expression(block.get('type', 'any')))} "
                f"| {default} | {'no' if has_default else 'yes'} |"
            )
    else:
        lines.append("No inputs.")
    lines += ["", "## Outputs", ""]
    if outputs:
        lines += ["| Name | Description |", "| --- | --- |"]
        lines += [f"| `{name}` | {cell(description(block))} |" for name, block in sorted(outputs.items())]
    else:
        lines.append("No outputs.")
    lines.append(END)
    return "\n".join(lines)


def updated_readme(current: str | None, table: str) -> str:
    """The README text with the table between the markers (appended, with the markers, when they are absent)."""
    if current is None:
        return table + "\n"
    if BEGIN in current and END in current:
        start = current.index(BEGIN)
        end = current.index(END, start) + len(END)
        return current[:start] + table + current[end:]
    return current.rstrip("\n") + "\n\n" + table + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="report stale READMEs instead of writing them")
    args = parser.parse_args(argv)

    stale = []
    for directory in module_dirs():
        readme = directory / "README.md"
        current = readme.read_text() if readme.exists() else None
        wanted = updated_readme(current, render(directory))
        if wanted == current:
            continue
        stale.append(readme.relative_to(REPO_ROOT))
        if not args.check:
            readme.write_text(wanted)
    if args.check and stale:
        names = ", ".join(str(path) for path in stale)
        print(f"Inputs/outputs tables are out of date in {names}: run python scripts/tf_docs.py", file=sys.stderr)
        return 1
    for path in [] if args.check else stale:
        print(f"updated {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
