#!/usr/bin/env python3
"""Build the Lambda zips reproducibly (standard library only): the same sources give byte-identical zips.

  lambda_src/dist/ec2_action.zip           the ec2_action package (handlers ec2_action.handlers.<name>.handler)
  lambda_src/dist/dependencies_layer.zip   what the code imports beyond the runtime, under python/, from the wheels
                                           in layer-requirements.txt: aws-lambda-powertools (logs, metrics) and
                                           typing_extensions, aws-xray-sdk and wrapt (tracing, opt-in)

Usage: build.py [--check]   --check rebuilds into a temporary directory and fails if a committed zip differs.
The wheels are verified against the sha256 recorded in layer-requirements.txt; pip downloads only missing ones.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent
PACKAGE = ROOT / "ec2_action"
DIST = ROOT / "dist"
WHEEL_CACHE = ROOT / "build" / "wheels"
REQUIREMENTS = ROOT / "layer-requirements.txt"
CODE_ZIP, LAYER_ZIP = "ec2_action.zip", "dependencies_layer.zip"
METRICS_CATALOGUE = ROOT.parent / "modules" / "observability" / "metrics.json"
METRICS_CATALOGUE_ENTRY = "ec2_action/metrics.json"
PIP_PLATFORM = ["--platform", "manylinux2014_aarch64", "--python-version", "3.12", "--implementation", "cp"]

ZIP_TIME = (1980, 1, 1, 0, 0, 0)
FILE_MODE, DIR_MODE = 0o100644, 0o040755
DEFLATE_LEVEL = 9
SKIPPED_PARTS = frozenset({"__pycache__"})
SKIPPED_SUFFIXES = (".pyc", ".pyo")


def write_zip(target: Path, entries: dict[str, bytes]) -> None:
    """A zip of entries (name -> bytes), plus the directories they need, sorted, with fixed times and modes."""
    names = set(entries)
    for name in entries:
        parts = name.split("/")[:-1]
        names.update("/".join(parts[: i + 1]) + "/" for i in range(len(parts)))
    target.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(target, "w") as archive:
        for name in sorted(names):
            info = zipfile.ZipInfo(name, ZIP_TIME)
            info.create_system = 3  # unix, so the modes below are honoured
            if name.endswith("/"):
                info.external_attr = (DIR_MODE << 16) | 0x10
                archive.writestr(info, b"")
            else:
                info.external_attr = FILE_MODE << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                archive.writestr(info, entries[name], compresslevel=DEFLATE_LEVEL)


def _kept(relative: str) -> bool:
    return not (SKIPPED_PARTS & set(relative.split("/"))) and not relative.endswith(SKIPPED_SUFFIXES)


def code_entries() -> dict[str, bytes]:
    """The package's files, plus the metrics catalogue, so the Lambdas read the file Terraform's dashboard reads."""
    entries = {
        path.relative_to(ROOT).as_posix(): path.read_bytes()
        for path in PACKAGE.rglob("*")
        if path.is_file() and _kept(path.relative_to(ROOT).as_posix())
    }
    entries[METRICS_CATALOGUE_ENTRY] = METRICS_CATALOGUE.read_bytes()
    return entries


def pinned_wheels() -> dict[str, str]:
    """requirement -> sha256, from layer-requirements.txt."""
    pins = {}
    for line in REQUIREMENTS.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            requirement, _, digest = line.partition(" --hash=sha256:")
            pins[requirement.strip()] = digest.strip()
    return pins


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wheels() -> list[Path]:
    """The pinned wheels from the cache, downloading them (hash-checked by pip) only when one is missing."""
    pins = pinned_wheels()
    WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
    cached = {_sha256(path): path for path in WHEEL_CACHE.glob("*.whl")}
    if not set(pins.values()) <= set(cached):
        command = [sys.executable, "-m", "pip", "download", "--disable-pip-version-check", "--quiet",
                   "--only-binary=:all:", *PIP_PLATFORM, "--no-deps", "--require-hashes",
                   "-r", str(REQUIREMENTS), "-d", str(WHEEL_CACHE)]  # fmt: skip
        subprocess.run(command, check=True)
        cached = {_sha256(path): path for path in WHEEL_CACHE.glob("*.whl")}
    missing = [requirement for requirement, digest in pins.items() if digest not in cached]
    if missing:
        sys.exit(f"no wheel with the recorded sha256 for: {', '.join(missing)} (see {REQUIREMENTS.name})")
    return [cached[digest] for digest in pins.values()]


def layer_entries() -> dict[str, bytes]:
    entries = {}
    for wheel in wheels():
        with zipfile.ZipFile(wheel) as archive:
            for name in archive.namelist():
                if not name.endswith("/") and _kept(name):
                    entries[f"python/{name}"] = archive.read(name)
    return entries


def build(target_dir: Path) -> dict[str, Path]:
    built = {CODE_ZIP: target_dir / CODE_ZIP, LAYER_ZIP: target_dir / LAYER_ZIP}
    write_zip(built[CODE_ZIP], code_entries())
    write_zip(built[LAYER_ZIP], layer_entries())
    return built


def _entries_of(path: Path) -> Iterator[str]:
    with zipfile.ZipFile(path) as archive:
        yield from (info.filename for info in archive.infolist())


def check() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        failures = []
        for name, fresh in build(Path(scratch)).items():
            committed = DIST / name
            if not committed.exists():
                failures.append(f"{committed} is missing")
            elif committed.read_bytes() != fresh.read_bytes():
                changed = sorted(set(_entries_of(committed)) ^ set(_entries_of(fresh)))
                hint = f" (entries added or removed: {', '.join(changed[:10])})" if changed else ""
                failures.append(f"{committed} differs from a fresh build of the sources{hint}")
            else:
                print(f"{name}: up to date ({fresh.stat().st_size:,} bytes)")
    for failure in failures:
        print(f"error: {failure}; run `make build` and commit lambda_src/dist", file=sys.stderr)
    return 1 if failures else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="fail if the committed zips differ from a fresh build")
    if parser.parse_args().check:
        return check()
    for path in build(DIST).values():
        print(f"{path.relative_to(ROOT.parent)}: {path.stat().st_size:,} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
