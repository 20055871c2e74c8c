"""Files that survive a kill: every write goes to a temporary file beside the target, then a rename.

A reader (``augkit resume``, ``augkit evaluate``) therefore sees the old content or the new,
never half of one. Plugins use :func:`atomic_save` for their checkpoints.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np


def _atomic(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Write through a temporary file in the same folder (owner-only, as ``mkstemp`` makes it), fsync it,
    rename it over ``path``, fsync the folder: after a kill or a power cut ``path`` is the old file or the
    new one, never part of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if not isinstance(exc, KeyboardInterrupt) and _interrupted(exc):
            # Ctrl-C inside torch.save: its zip writer fails on the way out ("unexpected pos") and that error
            # hides the interrupt, which the command reports as one (path is untouched: resume continues)
            raise KeyboardInterrupt from None
        raise
    _fsync_folder(path.parent)


def _interrupted(exc: BaseException) -> bool:
    """Whether a KeyboardInterrupt is in ``exc``'s chain of causes and contexts."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


def _fsync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (where the platform allows opening a folder)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_bytes(path: Path, write: Callable[[IO[bytes]], None]) -> None:
    """Whatever ``write(file)`` writes, to ``path`` atomically and owner-only (figures of real images)."""
    _atomic(path, write)


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    _atomic(path, lambda f: f.write(text.encode("utf-8")))


def shared_mode(*paths: Path) -> None:
    """Give ``paths`` the mode a plain ``open`` would (the umask's), not owner-only: files made to be shared."""
    mask = os.umask(0)
    os.umask(mask)
    for path in paths:
        os.chmod(path, 0o666 & ~mask)


def atomic_save(obj: object, path: Path) -> None:
    """``torch.save`` to a temporary file in the same folder, then rename: never a half-written file."""
    import torch

    _atomic(path, lambda f: torch.save(obj, f))


def _jsonable(x: Any) -> Any:
    if isinstance(x, (np.integer, np.floating)):
        return x.item()
    if isinstance(x, Path):
        return str(x)
    raise TypeError(f"not JSON-serialisable: {type(x).__name__}")


def write_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, default=_jsonable) + "\n")


def read_json(path: Path, default: Any = None) -> Any:
    """The JSON in ``path``, or ``default`` when there is no such file."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else default


def write_csv(rows: list[dict], path: Path) -> None:
    """Rows of dictionaries; the header is the union of their keys in first-seen order."""
    fields: list[str] = []
    for row in rows:
        fields += [k for k in row if k not in fields]
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fields)
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buffer.getvalue())


def read_csv(path: Path) -> list[dict]:
    """Rows written by :func:`write_csv`, numbers parsed back (empty cells dropped)."""
    if not Path(path).exists():
        return []

    def parse(v: str):
        for kind in (int, float):
            try:
                return kind(v)
            except ValueError:
                pass
        return v

    with open(path, newline="") as f:
        return [{k: parse(v) for k, v in row.items() if v != ""} for row in csv.DictReader(f)]


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
