"""The core stays small: nothing in augkit/ imports timm, MONAI or the default plugins."""

import ast
from pathlib import Path

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
