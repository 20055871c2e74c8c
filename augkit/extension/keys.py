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
import secrets
from pathlib import Path

KEY_FILE_ENV = "AUGKIT_KEY_FILE"


def key_file() -> Path:
    return Path(os.environ.get(KEY_FILE_ENV) or Path.home() / ".config" / "augkit" / "sample-key")


@functools.lru_cache(maxsize=None)
def _secret(path: Path) -> bytes:
    """The secret in ``path``, created (32 random bytes, owner-only) on first use.

    If it cannot be written, a secret for this process alone: keys then differ between runs,
    which loses nothing but the owner's ability to locate a skipped file later.
    """
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # two processes at once: one wins
        with os.fdopen(fd, "wb") as f:
            f.write(secrets.token_bytes(32))
    except FileExistsError:
        pass
    except OSError:
        return secrets.token_bytes(32)
    return path.read_bytes()


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
