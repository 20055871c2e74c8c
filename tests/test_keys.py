"""Sample keys name input files without revealing them; their owner can still find the file."""

import hashlib
import os
import subprocess
import sys

import numpy as np
from PIL import Image

from augkit.extension import keys


def test_keys_are_keyed_by_a_private_secret_and_stable_with_it(tmp_path, monkeypatch):
    rel = "virus/MRN-0012345_1.png"
    monkeypatch.setenv(keys.KEY_FILE_ENV, str(tmp_path / "one" / "sample-key"))
    first = keys.path_digest(rel)
    secret = tmp_path / "one" / "sample-key"
    assert secret.stat().st_mode & 0o777 == 0o600 and len(secret.read_bytes()) == 32
    assert first == keys.path_digest(rel)
    assert first != hashlib.sha256(rel.encode()).hexdigest()[:12]  # a guess cannot be confirmed by plain hashing
    monkeypatch.setenv(keys.KEY_FILE_ENV, str(tmp_path / "two" / "sample-key"))
    assert keys.path_digest(rel) != first  # another machine, another key
    # another process with the same secret file gives the same key (the owner's later runs)
    env = {**os.environ, keys.KEY_FILE_ENV: str(secret)}
    out = subprocess.run([sys.executable, "-c", f"from augkit.extension import keys; print(keys.path_digest({rel!r}))"],
                         env=env, capture_output=True, text=True, check=True).stdout.strip()
    assert out == first


def test_locate_finds_the_skipped_file_behind_a_key(tmp_path, monkeypatch, cli):
    monkeypatch.setenv(keys.KEY_FILE_ENV, str(tmp_path / "sample-key"))
    import augkit

    root = tmp_path / "data" / "nested"  # a source may name files relative to a folder inside its root
    for cls in ("normal", "virus"):
        (root / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((8, 8), 40 * i, np.uint8)).save(root / cls / f"MRN-77{i}.png")
    (root / "virus" / "MRN-779.png").write_bytes(b"not an image")
    source = augkit.build("dataset", "image-folder", root=root)
    samples = list(source.samples())
    assert len(samples) == 7 and not any("MRN" in s.key for s in samples)
    for s in samples:  # every key leads back to exactly its own file
        found = cli("locate", s.key, "--root", tmp_path / "data").stdout.split()
        assert len(found) == 1 and found[0].startswith(str(root / s.key.split("/")[0]))
    bad = f"virus/{keys.path_digest('virus/MRN-779.png')}"  # the key skipped.csv would list for the bad file
    assert cli("locate", bad, "--root", tmp_path / "data").stdout.split() == [str(root / "virus" / "MRN-779.png")]
    result = cli("locate", "virus/000000000000", "--root", tmp_path / "data", expect=2)
    assert "no file under" in result.output
    assert "not a sample key" in cli("locate", "virus/MRN-779", "--root", tmp_path, expect=2).output



def test_an_empty_short_or_shared_secret_is_replaced_not_accepted(tmp_path, monkeypatch, caplog):
    """An empty secret (a write that failed after create) would make every key computable by anyone."""
    for name, content, mode in (("empty", b"", 0o600), ("short", b"x" * 5, 0o600), ("shared", b"s" * 32, 0o644)):
        secret = tmp_path / name / "sample-key"
        secret.parent.mkdir()
        secret.write_bytes(content)
        secret.chmod(mode)
        monkeypatch.setenv(keys.KEY_FILE_ENV, str(secret))
        with caplog.at_level("WARNING", logger="augkit"):
            digest = keys.path_digest("virus/a.png")
        assert len(secret.read_bytes()) == 32 and secret.read_bytes() != content
        assert secret.stat().st_mode & 0o777 == 0o600
        assert digest == keys.path_digest("virus/a.png")
        assert "replaced by a new one" in caplog.text and str(tmp_path) not in caplog.text
        caplog.clear()
    assert not list(tmp_path.rglob("*.tmp"))  # created through a temporary file, which is gone
