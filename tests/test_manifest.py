import csv

import pytest

from augkit.outputs.manifest import FIELDS, ManifestWriter, read_manifest


def test_rows_columns_and_file_names(tmp_path):
    provenance = {"generator": "acgan", "generator_version": "2", "recipe_sha256": "r", "unrelated": "x"}
    with ManifestWriter(tmp_path / "out", provenance) as manifest:
        a0 = manifest.next_file("a", ".png")
        b0 = manifest.next_file("b", ".png")
        a1 = manifest.next_file("a", ".png")
        manifest.add(a0, "a", seed=5, index=0)
        manifest.add(b0, "b", seed=5, index=1, audit_flags=["near_duplicate", "low_contrast"])
        manifest.add(a1, "a", seed=6, index=0)
    assert [p.as_posix() for p in (a0, b0, a1)] == ["a/a_000000.png", "b/b_000000.png", "a/a_000001.png"]
    assert (tmp_path / "out/a").is_dir() and (tmp_path / "out/b").is_dir()
    assert manifest.path == tmp_path / "out/manifest.csv" and manifest.rows == 3
    with open(manifest.path, newline="") as f:
        reader = csv.DictReader(f)
        assert reader.fieldnames == FIELDS
        rows = list(reader)
    assert rows[1] == {
        "file": "b/b_000000.png",
        "class": "b",
        "generator": "acgan",
        "generator_version": "2",
        "checkpoint_sha256": "",  # missing provenance is an empty cell, never "None"
        "seed": "5",
        "index": "1",
        "recipe_sha256": "r",
        "audit_flags": "near_duplicate;low_contrast",
    }
    assert rows[0]["audit_flags"] == ""


def test_never_overwrites_a_manifest(tmp_path):
    with ManifestWriter(tmp_path, {}):
        pass
    with pytest.raises(FileExistsError):
        with ManifestWriter(tmp_path, {}):
            pass


def test_add_outside_with_is_an_error(tmp_path):
    with pytest.raises(RuntimeError, match="outside its `with` block"):
        ManifestWriter(tmp_path, {}).add("a.png", "a", seed=0, index=0)


def test_read_manifest_gives_back_what_was_written(tmp_path):
    with ManifestWriter(tmp_path, {"generator": "acgan", "classes": ["virus", "normal"]}) as manifest:
        for name in ("normal", "virus"):
            file = manifest.next_file(name, ".png")
            (tmp_path / file).write_bytes(b"")
            manifest.add(file, name, seed=3, index=0, audit_flags=["near_copy"])
    read = read_manifest(tmp_path)
    assert read.folder == tmp_path and read.columns == FIELDS and read.classes == ["virus", "normal"]
    assert [(r["file"], r["class"], r["seed"], r["audit_flags"]) for r in read.rows] == [
        ("normal/normal_000000.png", "normal", "3", "near_copy"), ("virus/virus_000000.png", "virus", "3", "near_copy")]
    assert read.file(read.rows[1]) == tmp_path / "virus/virus_000000.png"
    (tmp_path / "classes.json").unlink()
    assert read_manifest(tmp_path).classes is None  # an export without the label order
    with pytest.raises(FileNotFoundError, match="manifest.csv not found: give a folder written by an augkit exporter"):
        read_manifest(tmp_path / "virus")
