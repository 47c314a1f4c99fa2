"""The registry of moto overrides (emulator.patches): every one listed once, applied once, against the pinned moto."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import tomllib
from pathlib import Path

import pytest

from emulator import patches
from emulator.patches import ADDS, REPLACES, MotoVersionError, Override

ROOT = Path(__file__).resolve().parents[2]
EMULATOR = ROOT / "tests" / "emulator"


def test_another_moto_version_fails_at_once_naming_the_pinned_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "5.3.0" if name == "moto" else "0")
    with pytest.raises(MotoVersionError, match=r"extends moto 5\.2\.5 .*but moto 5\.3\.0 is installed"):
        patches.check_moto_version()


def test_apply_checks_the_version_before_it_changes_anything(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.metadata, "version", lambda name: "4.0.0")
    monkeypatch.setattr(patches, "_applied", False)
    never = Override("moto.core.responses:BaseResponse.call_action", REPLACES, "-", "-", lambda original: 1 / 0)
    monkeypatch.setattr(patches, "OVERRIDES", [never])
    with pytest.raises(MotoVersionError, match=r"moto 4\.0\.0 is installed"):
        patches.apply()


def test_the_pin_is_the_one_pyproject_and_the_lock_install() -> None:
    dev = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["dev"]
    assert f"moto[server]=={patches.MOTO_VERSION}" in dev
    assert re.search(
        rf"^moto(\[server\])?=={re.escape(patches.MOTO_VERSION)}\b", (ROOT / "requirements.lock").read_text(), re.M
    )
    assert importlib.metadata.version("moto") == patches.MOTO_VERSION


def test_every_override_is_in_place_once_and_a_second_apply_changes_nothing() -> None:
    patches.apply()
    values = {o.target: patches._resolve(o.target) for o in patches.OVERRIDES}
    current = {target: getattr(owner, name) for target, (owner, name) in values.items()}
    patches.apply()
    assert {target: getattr(owner, name) for target, (owner, name) in values.items()} == current
    targets = [o.target for o in patches.OVERRIDES]
    assert len(targets) == len(set(targets)), "an override is listed twice"
    for override in patches.OVERRIDES:
        original = patches.ORIGINALS[override.target]
        assert (original is None) == (override.kind == ADDS), override.target
        if override.kind not in (patches.CONFIGURES,):
            assert current[override.target] is not original, f"{override.target} still has moto's own"
        assert override.provides and override.why, override.target


def test_an_override_that_no_longer_fits_moto_fails_with_its_target() -> None:
    added_twice = Override("moto.codepipeline.models:CodePipelineBackend.create_pipeline", ADDS, "-", "-", lambda o: o)
    with pytest.raises(
        MotoVersionError, match=r"already has moto\.codepipeline\.models:CodePipelineBackend\.create_pipeline"
    ):
        added_twice.apply()
    gone = Override("moto.codepipeline.models:CodePipelineBackend.no_such_method", REPLACES, "-", "-", lambda o: o)
    with pytest.raises(MotoVersionError, match="no longer has"):
        gone.apply()


def _moto_names(tree: ast.Module) -> set[str]:
    """Names a module binds to moto objects (from moto... import X, import moto...)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("moto"):
            names |= {alias.asname or alias.name for alias in node.names}
        elif isinstance(node, ast.Import):
            names |= {
                (alias.asname or alias.name).split(".")[0] for alias in node.names if alias.name.startswith("moto")
            }
    return names


def _changes_to_moto(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    moto = _moto_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "setattr":
            found.append(f"{path.name}:{node.lineno} setattr")
        targets = (
            node.targets if isinstance(node, ast.Assign) else [node.target] if isinstance(node, ast.AugAssign) else []
        )
        for target in targets:
            base = target
            while isinstance(base, ast.Attribute):
                base = base.value
            if isinstance(target, ast.Attribute) and isinstance(base, ast.Name) and base.id in moto:
                found.append(f"{path.name}:{node.lineno} assigns {ast.unparse(target)}")
    return found


def test_no_module_but_the_registry_changes_moto() -> None:
    modules = [path for path in EMULATOR.rglob("*.py") if path.name != "patches.py"]
    assert len(modules) > 20
    assert [change for path in modules for change in _changes_to_moto(path)] == []


def test_the_scan_sees_a_change_to_moto(tmp_path: Path) -> None:
    sneaky = tmp_path / "sneaky.py"
    sneaky.write_text(
        "from moto.ec2.models import EC2Backend\nEC2Backend.run_instances = None\nsetattr(EC2Backend, 'x', 1)\n"
    )
    assert sorted(_changes_to_moto(sneaky)) == ["sneaky.py:2 assigns EC2Backend.run_instances", "sneaky.py:3 setattr"]
