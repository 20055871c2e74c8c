"""Sample keys: names for input files that reveal nothing, yet let their owner find the file.

A file-based data source names each sample ``<class>/<12 hex>``: an HMAC-SHA256 of the file's
path relative to the data root, keyed with a secret that lives only on this machine
(``$AUGKIT_KEY_FILE`` or ``~/.config/augkit/sample-key``, created on first use, owner-only).
An unkeyed hash of a file name built from a record number could be confirmed by hashing
guesses; this one cannot without the secret. ``augkit locate KEY --root DIR`` finds the file.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import os
import re
import logging
import secrets
import stat
from pathlib import Path

KEY_FILE_ENV = "AUGKIT_KEY_FILE"


def key_file() -> Path:
    return Path(os.environ.get(KEY_FILE_ENV) or Path.home() / ".config" / "augkit" / "sample-key")


SECRET_BYTES = 32
log = logging.getLogger("augkit")


@functools.lru_cache(maxsize=None)
def _secret(path: Path) -> bytes:
    """The secret in ``path``, created (32 random bytes, owner-only) on first use.

    It is created atomically (written in full to a temporary file, then linked into place, so no
    process ever reads a partial or empty secret) and checked at every load: exactly 32 bytes and
    readable by its owner alone. A secret that fails the check would make keys computable (empty)
    or readable by others: it is replaced, with a warning (keys made with it no longer match). If
    no secret can be written, one for this process alone: keys then differ between runs, which
    loses nothing but the owner's ability to locate a skipped file later.
    """
    for _ in range(3):
        try:
            return _checked(path)
        except FileNotFoundError:
            pass
        try:
            _create(path)
        except FileExistsError:
            continue  # another process made it first: read theirs
        except OSError:
            break
    log.warning("augkit's sample-key secret (%s) cannot be kept: keys of this process cannot be located later",
                KEY_FILE_ENV)
    return secrets.token_bytes(SECRET_BYTES)


def _checked(path: Path) -> bytes:
    """The secret, if it is sound; a sound replacement (and a warning) if it is not."""
    mode = path.stat().st_mode
    data = path.read_bytes()
    problem = (f"holds {len(data)} bytes instead of {SECRET_BYTES}" if len(data) != SECRET_BYTES
               else "can be read by other users" if mode & (stat.S_IRWXG | stat.S_IRWXO) else None)
    if problem is None:
        return data
    log.warning("augkit's sample-key secret %s: replaced by a new one (keys in earlier runs' skipped.csv no longer "
                "locate their files)", problem)
    path.unlink()
    _create(path)
    return _checked(path)


def _create(path: Path) -> None:
    """32 random bytes at ``path``, owner-only, all or nothing; FileExistsError if another process won."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(SECRET_BYTES))
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # atomic, and fails if the secret exists: two processes at once, one wins
    finally:
        tmp.unlink(missing_ok=True)


def path_digest(rel: str) -> str:
    """12 hex digits of HMAC-SHA256(this machine's secret, rel)."""
    return hmac.new(_secret(key_file()), rel.encode(), hashlib.sha256).hexdigest()[:12]


def locate(key: str, root: Path) -> list[Path]:
    """The files under ``root`` whose sample key is ``key`` (``<class>/<12 hex>``; DICOM frames ``.../f<n>``).

    Each file's path is tried relative to ``root`` and to every folder in between: a source may
    name files relative to a folder inside its root (the Kaggle layout's ``chest_xray/``).
    """
    digest = next((part for part in key.split("/") if re.fullmatch(r"[0-9a-f]{12}", part)), None)
    if digest is None:
        raise ValueError(f"{key!r} is not a sample key (<class>/<12 hex digits>)")
    root = Path(root)
    found = []
    for dirpath, _, filenames in os.walk(root):
        for name in filenames:
            path = Path(dirpath) / name
            bases = [root, *(parent for parent in path.parents if root in parent.parents)]
            if any(path_digest(path.relative_to(base).as_posix()) == digest for base in bases):
                found.append(path)
    return sorted(found)
