"""The core stays small: nothing in augkit/ imports timm, MONAI or the default plugins.

Nor does it name them: plugin names live in augkit/config/defaults.py alone, and timm's classes
reach the core only from a plugin (e.g. efficientnetv2 hands ``synchronise`` its fused batch norm).
"""

import ast
import re
from pathlib import Path

import pytest

FORBIDDEN = ("augkit_plugins", "timm", "monai")
CORE = Path(__file__).parent.parent / "augkit"


def imported_modules(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module


def test_core_imports_no_plugin_timm_or_monai():
    offenders = [
        f"{path.name}: {mod}"
        for path in sorted(CORE.rglob("*.py"))
        for mod in imported_modules(path)
        if mod.split(".")[0] in FORBIDDEN
    ]
    assert CORE.is_dir() and len(list(CORE.rglob("*.py"))) > 5
    assert not offenders, offenders


DEFAULTS = CORE / "config" / "defaults.py"


def default_plugin_names() -> set[str]:
    """Every plugin name the augkit distribution registers (its entry points' plugins)."""
    import augkit

    return {info.name for info in augkit.get_plugin_manager().all() if info.distribution == "augkit"}


def string_constants(path: Path):
    """(line, text) of every string constant of a module, f-string parts and docstrings included."""
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            yield node.lineno, node.value


def test_the_core_names_no_plugin_outside_the_defaults_table():
    names = default_plugin_names()
    assert {"acgan", "efficientnetv2", "real-classifier", "png", "paper"} <= names
    offenders = [
        f"{path.relative_to(CORE.parent)}:{line}: {text!r}"
        for path in sorted(CORE.rglob("*.py")) if path != DEFAULTS
        for line, text in string_constants(path)
        if text in names
    ]
    assert not offenders, "plugin names outside augkit/config/defaults.py:\n" + "\n".join(offenders)


def test_every_default_is_a_plugin_of_its_section(registry):
    from augkit.config.defaults import DEFAULT_PLUGINS, FOLDER_DATASET
    from augkit.config.recipe import ROLE_OF_SECTION

    for section, name in DEFAULT_PLUGINS.items():
        assert registry.get(ROLE_OF_SECTION[section], name)
    assert registry.get("dataset", FOLDER_DATASET)


def timm_class_names() -> set[str]:
    """The classes timm defines, less names that say nothing of timm (one capitalised word; torch.nn's own)."""
    import sys

    pytest.importorskip("timm")
    import timm.layers  # noqa: F401  imports timm.models too
    import torch.nn

    names = {
        name
        for module_name, module in list(sys.modules.items()) if module_name.split(".")[0] == "timm"
        for name, obj in vars(module).items()
        if isinstance(obj, type) and obj.__name__ == name and obj.__module__.split(".")[0] == "timm"
    }
    return {n for n in names if not re.fullmatch(r"[A-Z][a-z]+", n) and not hasattr(torch.nn, n)}


def test_the_core_names_no_timm_class():
    names = timm_class_names()
    assert "BatchNormAct2d" in names
    pattern = re.compile(r"\b(" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")\b")
    offenders = [
        f"{path.relative_to(CORE.parent)}:{number}: {match.group()!r}"
        for path in sorted(CORE.rglob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), start=1)
        for match in pattern.finditer(line)
    ]
    assert not offenders, "timm's classes named in augkit/ (a plugin hands them over):\n" + "\n".join(offenders)
