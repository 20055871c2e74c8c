"""The contract check of the exporter role: ``check_exporter``."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from augkit.extension.roles import Exporter, SyntheticBatch
from augkit.outputs.manifest import read_manifest
from augkit.testing._checker import _build, _Checker

MANIFEST_COLUMNS = ("file", "class", "generator", "seed", "index", "audit_flags")


def _batches(channels: int, seeds: tuple[int, int], value: float) -> Iterator[SyntheticBatch]:
    """What the runner passes an exporter, lazily: the second batch lost its image 1 to the audit."""
    g = torch.Generator().manual_seed(seeds[0])
    for labels, seed, index, flags in (
        (torch.tensor([0, 1, 0]), seeds[0], [0, 1, 2], [(), ("unfaithful",), ()]),
        (torch.tensor([1, 1]), seeds[1], [0, 2], [(), ()]),
    ):
        images = (value + 0.5 * torch.rand(len(labels), channels, 8, 8, generator=g)).clamp(-1, 1)
        yield SyntheticBatch(images, labels, seed, index, flags)


def _snapshot(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def check_exporter(cls: type[Exporter], tmp_dir: Path | str, **options: Any) -> None:
    """Check an Exporter, writing under ``tmp_dir`` (pytest's ``tmp_path``): ``cls`` subclasses
    ``augkit.Exporter``, its ``Options`` forbid unknown keys, and

    * ``export`` of two batches (an iterator of :class:`augkit.SyntheticBatch`, as the runner
      passes them) into a folder that does not exist yet returns the path of a ``manifest.csv``
      with at least the columns file, class, generator, seed, index, audit_flags: one row per
      image, with its class name, the provenance's generator and the batch's own seed, index
      and flags; every row's file (relative to the manifest's folder) exists and is distinct;
    * a second export into the same folder raises or refuses: the first export's files stay.
    """
    c = _Checker(cls)
    exporter = _build(c, cls, Exporter, options)
    channels = getattr(exporter.options, "channels", None) or 1
    out = Path(tempfile.mkdtemp(prefix="augkit-contract-", dir=tmp_dir)) / "export"
    classes, provenance = ["normal", "virus"], {"generator": "contract-gan", "generator_version": "1"}
    check = "export(two batches, classes, out_dir, provenance)"
    manifest = c.call(check, lambda: exporter.export(_batches(channels, (11, 12), -0.5), classes, out, provenance))
    c.expect(isinstance(manifest, (str, Path)) and Path(manifest).name == "manifest.csv" and Path(manifest).is_file(),
             check, "the path of the manifest.csv it wrote", repr(manifest))
    manifest = Path(manifest)
    written = c.call(f"read_manifest({manifest.parent})", lambda: read_manifest(manifest.parent))
    rows, columns = written.rows, written.columns
    c.expect(set(MANIFEST_COLUMNS) <= set(columns), check, f"manifest.csv columns including {list(MANIFEST_COLUMNS)}", columns)
    c.expect(len(rows) == 5, check, "one manifest row per image: 5", len(rows))
    expected = sorted([("normal", "11"), ("virus", "11"), ("normal", "11"), ("virus", "12"), ("virus", "12")])
    got = sorted((r["class"], r["seed"]) for r in rows)
    c.expect(got == expected, check, f"(class, seed) of the rows {expected}", got)
    c.expect({r["generator"] for r in rows} == {"contract-gan"}, check, "the provenance's generator 'contract-gan'",
             lambda: sorted({r["generator"] for r in rows}))
    ids = sorted((int(r["seed"]), int(r["index"]), r.get("audit_flags", "")) for r in rows)
    expected_ids = [(11, 0, ""), (11, 1, "unfaithful"), (11, 2, ""), (12, 0, ""), (12, 2, "")]
    c.expect(ids == expected_ids, check, "each batch's own (seed, index, audit_flags) per row, as SyntheticBatch gives "
             f"them (indexes can skip): {expected_ids}", ids)
    files = [written.file(r) for r in rows]
    c.expect(all(p.is_file() for p in files) and len(set(files)) == len(files), check,
             "a distinct, existing file per row (relative to the manifest's folder)", [r["file"] for r in rows])

    before = _snapshot(out)
    try:
        cls(cls.Options(**options)).export(_batches(channels, (21, 22), 0.5), classes, out, provenance)
    except Exception:
        pass  # refusing is right
    after = _snapshot(out)
    changed = [name for name, digest in before.items() if after.get(name) != digest]
    c.expect(not changed, "a second export into the same folder",
             "it to raise or refuse, leaving the first export's files unchanged", f"changed or removed: {changed[:5]}")
