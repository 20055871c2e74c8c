"""Finding files under a root, naming them without revealing them, and hashing their content."""

from __future__ import annotations

import hashlib
import logging
import os
import stat
from collections.abc import Iterable
from pathlib import Path

from pydantic import Field, field_validator

import augkit
from augkit.extension import keys

IGNORED_FOLDERS = frozenset({"__MACOSX"})  # macOS zip resource forks


log = logging.getLogger("augkit")


def is_hidden(name: str) -> bool:
    """``.DS_Store``, ``._foo.jpeg``, ``.git``, ``__MACOSX``: never data, never worth a warning."""
    return name.startswith(".") or name in IGNORED_FOLDERS


def existing_dir(value: Path, what: str) -> Path:
    """Validate a ``root``-like option: it must exist and be a folder. Made absolute, so that the
    paths inside ``load`` callables still work in a worker with another working directory."""
    path = Path(value).expanduser().absolute()
    if not path.exists():
        raise ValueError(f"{path} does not exist; give {what}")
    if not path.is_dir():
        raise ValueError(f"{path} is a file, not a folder; give {what}")
    return path


def walk_files(folder: Path, suffixes: Iterable[str] | None = None) -> list[Path]:
    """Every non-hidden file below ``folder`` (recursively), sorted; ``suffixes`` lower-case, with dot.

    A suffix may be compound (``.nii.gz``): the test is ``name.lower().endswith(suffix)``.
    Symlinked folders are followed (each real folder once, so a link loop ends); folders that
    cannot be read are counted in a warning (no path). Non-regular files and dangling links are
    listed like any file: reading them refuses them, so they reach skipped.csv with a reason.
    """
    ends = None if suffixes is None else tuple(s.lower() for s in suffixes)
    found, seen, unreadable = [], set(), []
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=True, onerror=unreadable.append):
        real = os.path.realpath(dirpath)
        if real in seen:  # a link back to a folder already walked
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not is_hidden(d))
        for name in filenames:
            if is_hidden(name) or (ends is not None and not name.lower().endswith(ends)):
                continue
            found.append(Path(dirpath) / name)
    if unreadable:
        log.warning("%d folder%s under the data root could not be read (%s): their files are not used",
                    len(unreadable), "s" if len(unreadable) > 1 else "",
                    ", ".join(sorted({e.strerror or type(e).__name__ for e in unreadable})))
    return sorted(found)


def relative(path: Path, root: Path) -> str:
    """The path relative to ``root`` with ``/`` separators: the same string on every OS."""
    return Path(os.path.relpath(path, root)).as_posix()


def sample_key(rel: str, class_name: str, reveal: bool) -> str:
    """``"<class>/<12 hex of a keyed hash of rel>"`` (``augkit.extension.keys``), or ``rel`` itself when the user opted in."""
    if reveal:
        return rel
    return f"{class_name}/{keys.path_digest(rel)}"


def reject(reason: str) -> None:
    """The ``load`` of a sample known to be unusable: the core skips it and records ``reason``."""
    raise ValueError(reason)


def _file_digest(path: Path) -> bytes:
    h = hashlib.sha256()
    try:
        if not stat.S_ISREG(os.stat(path).st_mode):
            return b"not-a-regular-file"  # a FIFO would block the read; it is skipped when loaded
    except OSError as exc:
        return f"unreadable:{exc.errno}".encode()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError as exc:  # unreadable now; it will be skipped, but a fixed file must change the hash
        return f"unreadable:{exc.errno}".encode()
    return h.digest()


def content_fingerprint(name: str, version: int, options: augkit.Options, root: Path, files: Iterable[Path]) -> str:
    """Plugin name and loader version, the options (without paths), and sha256 of every file used.

    Paths are left out of the options part and files are named relative to ``root``, so a
    moved data set keeps its cache; any changed, added or removed byte invalidates it.
    """
    paths = {field for field, value in options if isinstance(value, Path)}
    h = hashlib.sha256()
    for path in sorted(set(files)):
        rel = relative(path, root) if Path(path).is_relative_to(root) else Path(path).name
        h.update(rel.encode() + b"\0")
        h.update(_file_digest(Path(path)))
    return f"{name}/loader-v{version}/{options.model_dump_json(exclude=paths)}/{h.hexdigest()}"


class FileSourceOptions(augkit.DataSource.Options):
    """Options every file-based data source has: where the files are, and whether to name them."""

    root: Path = Field(description="The folder that holds the data set.")
    max_pixels: int = Field(
        50_000_000, ge=64, description="refuse (skip, with the reason) an image or frame of more pixels than this, read "
        "from its header before anything is decoded: a small file can claim a huge image")
    reveal_file_names: bool = Field(
        False,
        description=(
            "Use relative file paths as sample keys (in logs and skipped.csv). Off by default: "
            "file names often contain patient ids, so keys are '<class>/<12 hex of a keyed hash of the path>' "
            "(`augkit locate KEY --root DIR` finds the file)."
        ),
    )

    @field_validator("root")
    @classmethod
    def _root_is_a_folder(cls, value: Path) -> Path:
        return existing_dir(value, "the folder that holds the data set (see the plugin's documented layout)")
