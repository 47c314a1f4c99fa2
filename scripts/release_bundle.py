#!/usr/bin/env python3
"""Build the release bundle: the .tar.gz a release ships and a private module registry serves.

The bundle holds what Terraform reads when it uses the module, and the docs; nothing else (no tests, no venv, no
Python sources, no .terraform):
  *.tf, README.md, CHANGELOG.md, DESIGN.md, LICENSE                the root module and its docs
  modules/<name>/*.tf, README.md                                   the submodules
  examples/                                                        the examples, with their build sources
  docs/                                                            the pictures the documents show
  every file a module's .tf files read from "${path.module}/..."   the state machine (asl/), the SSM document's
  (templatefile, file, filename, ...), directly or via a local      template and scripts (ssm/), the built Lambda
                                                                    zips (lambda_src/dist/)
Files sit at the archive's root, as registries expect. The archive is reproducible like lambda_src/build.py's zips:
entries sorted, fixed mtime, owner and modes, gzip without a timestamp: the same tree gives the same bytes.

It fails, naming each file, when a referenced file or a document is missing (build the zips first: `make build`),
or when a relative link in a shipped Markdown file points at something the bundle does not ship.

Usage: release_bundle.py --output DIR   writes DIR/terraform-aws-codepipeline-ec2-action.tar.gz
Standard library only.
"""

from __future__ import annotations

import argparse
import fnmatch
import gzip
import io
import os
import re
import sys
import tarfile
from pathlib import Path, PurePosixPath

REPO_ROOT = Path(__file__).resolve().parents[1]
BUNDLE_NAME = "terraform-aws-codepipeline-ec2-action.tar.gz"

ROOT_DOCS = ("README.md", "CHANGELOG.md", "DESIGN.md", "LICENSE")
# Never shipped from examples/: what Terraform or Python leave behind in a working copy (see .gitignore).
LOCAL_LEFTOVERS = (".terraform", ".terraform.lock.hcl", "*.tfstate", "*.tfstate.*", "__pycache__", "*.pyc")

MTIME = 315532800  # 1980-01-01T00:00:00Z, the zips' fixed time
FILE_MODE, EXECUTABLE_MODE, DIR_MODE = 0o644, 0o755, 0o755

# "${path.module}/<path>", or "${local.<name>}/<path>" where the local is itself "${path.module}/<path>".
MODULE_PATH = re.compile(r'"\$\{path\.module\}(/[^"]*)"')
PATH_LOCAL = re.compile(r'(\w+)\s*=\s*"\$\{path\.module\}(/[^"]*)"')
LOCAL_PATH = re.compile(r'"\$\{local\.(\w+)\}(/[^"]*)"')
# [text](target) in Markdown, when the target is neither a URL nor an anchor.
RELATIVE_LINK = re.compile(r"\]\((?![a-z][a-z0-9+.-]*:|#)([^)#\s]+)")


class BundleError(Exception):
    """The bundle cannot be built; the message lists every problem."""


def module_dirs(root: Path) -> list[Path]:
    """The root module and every submodule under modules/."""
    return [root, *sorted(path for path in (root / "modules").iterdir() if path.is_dir())]


def _relative(root: Path, path: Path) -> str:
    """path relative to root, in POSIX form, with `..` resolved textually (the file need not exist)."""
    return Path(os.path.normpath(path)).relative_to(root).as_posix()


def referenced_files(root: Path) -> tuple[dict[str, str], list[str]]:
    """Files the modules' .tf files read via path.module: {path: the .tf file reading it}, and the problems found.

    A reference that resolves to a directory (e.g. a local naming the scripts' folder) is a prefix, not a file.
    """
    references: dict[str, str] = {}
    problems: list[str] = []
    for directory in module_dirs(root):
        sources = {path: path.read_text() for path in sorted(directory.glob("*.tf"))}
        path_locals = {name: suffix for text in sources.values() for name, suffix in PATH_LOCAL.findall(text)}
        for source, text in sources.items():
            suffixes = MODULE_PATH.findall(text)
            suffixes += [path_locals[name] + suffix for name, suffix in LOCAL_PATH.findall(text) if name in path_locals]
            reader = _relative(root, source)
            for suffix in suffixes:
                if "${" in suffix:
                    problems.append(f"{reader} reads a computed path (${{path.module}}{suffix}): name files literally")
                    continue
                target = Path(os.path.normpath(directory / suffix.lstrip("/")))
                if not target.is_relative_to(root):
                    problems.append(f"{reader} reads {target}, outside the module")
                elif not target.is_dir():
                    references.setdefault(_relative(root, target), reader)
    return references, problems


def _is_leftover(relative: str) -> bool:
    return any(fnmatch.fnmatch(part, pattern) for part in relative.split("/") for pattern in LOCAL_LEFTOVERS)


def _example_files(root: Path) -> list[str]:
    return [
        _relative(root, path)
        for path in (root / "examples").rglob("*")
        if path.is_file() and not _is_leftover(_relative(root, path))
    ]


def _broken_links(root: Path, files: set[str]) -> list[str]:
    """Relative links in shipped Markdown that point at nothing the bundle ships."""
    directories = {str(parent) for name in files for parent in PurePosixPath(name).parents}
    problems = []
    for name in sorted(file for file in files if file.endswith(".md") and (root / file).is_file()):
        for target in RELATIVE_LINK.findall((root / name).read_text()):
            resolved = os.path.normpath(PurePosixPath(name).parent / target)
            if resolved not in files and resolved not in directories:
                problems.append(f"{name} links to {target}, which the bundle does not ship")
    return problems


def bundle_files(root: Path = REPO_ROOT) -> list[str]:
    """Every file the bundle ships, relative to root, sorted; BundleError naming every required file missing."""
    root = root.resolve()
    references, problems = referenced_files(root)
    required = {name: "a document of the root module" for name in ROOT_DOCS}
    required.update({_relative(root, path): "the root module" for path in root.glob("*.tf")})
    for directory in module_dirs(root)[1:]:
        required.update({_relative(root, path): "a submodule" for path in directory.glob("*.tf")})
        required[_relative(root, directory / "README.md")] = "the submodule's document"
    required.update({name: "an example" for name in _example_files(root)})
    required.update(
        {_relative(root, path): "a picture of the docs" for path in (root / "docs").glob("*") if path.is_file()}
    )
    required.update({name: f"read by {reader}" for name, reader in references.items()})
    for name, why in sorted(required.items()):
        if not (root / name).is_file():
            hint = "; run `make build`" if name.startswith("lambda_src/dist/") else ""
            problems.append(f"{name} is missing ({why}{hint})")
    files = set(required)
    problems += _broken_links(root, files)
    if problems:
        raise BundleError("the release bundle cannot be built:\n" + "\n".join(f"  {p}" for p in problems))
    return sorted(files)


def _entry(name: str, kind: bytes, mode: int, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.mode, info.size, info.mtime = kind, mode, size, MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_bundle(root: Path, files: list[str], target: Path) -> None:
    """A .tar.gz of files (relative to root) and their directories, sorted, with fixed times, owners and modes."""
    directories = {str(parent) for name in files for parent in PurePosixPath(name).parents} - {"."}
    target.parent.mkdir(parents=True, exist_ok=True)
    with (
        target.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as compressed,
        tarfile.open(fileobj=compressed, mode="w", format=tarfile.PAX_FORMAT) as archive,
    ):
        for name in sorted(directories | set(files)):
            if name in directories:
                archive.addfile(_entry(name, tarfile.DIRTYPE, DIR_MODE))
                continue
            path = root / name
            data = path.read_bytes()
            mode = EXECUTABLE_MODE if path.stat().st_mode & 0o111 else FILE_MODE
            archive.addfile(_entry(name, tarfile.REGTYPE, mode, len(data)), io.BytesIO(data))


def build(output_dir: Path, root: Path = REPO_ROOT) -> Path:
    """Write the bundle into output_dir and return its path."""
    target = output_dir / BUNDLE_NAME
    write_bundle(root.resolve(), bundle_files(root), target)
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, required=True, help=f"directory to write {BUNDLE_NAME} into")
    try:
        target = build(parser.parse_args().output)
    except BundleError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    with tarfile.open(target) as archive:
        count = sum(1 for member in archive.getmembers() if member.isfile())
    print(f"{target}: {target.stat().st_size:,} bytes, {count} files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
