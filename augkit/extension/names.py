"""Names that cannot escape a folder, and messages that cannot leak one.

Class names become folder and file names (exports, grids): only names that cannot escape a folder.

A class name enters augkit from a folder name, a ``label_map`` value, a ``labels_csv`` cell, a
``class_order`` entry or a checkpoint; wherever it enters, :func:`check_class_name` refuses what
could resolve outside the folder it is joined to (separators, ``..``), be hidden (a leading dot)
or garble a listing (control characters). :func:`inside` joins and checks the result as well.
:func:`path_free` takes every path out of a message before it is recorded.
"""

from __future__ import annotations

import re
from pathlib import Path


def class_name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a class name, or None."""
    if not isinstance(name, str) or not name:
        return "a class name must be a non-empty string"
    if "/" in name or "\\" in name:
        return "a class name cannot hold a path separator (/ or \\)"
    if name.startswith("."):
        return "a class name cannot start with a dot (., .. or a hidden name)"
    if not name.isprintable() or name != name.strip():
        return "a class name must be printable, without control characters or surrounding spaces"
    if len(name.encode()) > 100:
        return "a class name must be at most 100 bytes"
    return None


def check_class_name(name: object, field: str) -> str:
    """``name`` if it can be a class name; else ``ValueError`` naming ``field`` and what to do."""
    problem = class_name_problem(name)
    if problem:
        raise ValueError(f"{field}: {name!r} is not a usable class name: {problem}; rename it")
    return name  # type: ignore[return-value]


def inside(base: Path, *parts: str) -> Path:
    """``base / parts...``, refused (``ValueError``) if it would resolve outside ``base``."""
    path = Path(base).joinpath(*parts)
    root = Path(base).resolve()
    if not path.resolve().is_relative_to(root):
        raise ValueError(f"{'/'.join(parts)!r} would be written outside its folder")
    return path


# a quoted string with a separator in it, or an unquoted run of characters with a separator in it that starts like a
# path (/, ~, ., a drive letter) or ends in a file extension; "JPEG/PNG/BMP/TIFF" or "train/val" in a message stay
_QUOTED_PATH = re.compile(r"""(['"`])[^'"`]*[/\\][^'"`]*\1""")
_BARE_PATH = re.compile(r"""(?<![\w<])(?:(?:[A-Za-z]:|~|\.{1,2})?[/\\][^\s'"`,;()\[\]<>]*"""
                        r"""|[^\s'"`,;()\[\]<>/\\]+(?:[/\\][^\s'"`,;()\[\]<>/\\]+)+\.[A-Za-z0-9]{1,8}\b)""")


def path_free(reason: str) -> str:
    """A reason with every path in it replaced by ``<path>``: file and folder names can hold patient
    names, and reasons reach skipped.csv, run.log, the report, the cache and the console."""
    return _BARE_PATH.sub("<path>", _QUOTED_PATH.sub(lambda m: f"{m.group(1)}<path>{m.group(1)}", reason))
