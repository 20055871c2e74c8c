"""Fingerprint of a run folder: SHA-256 of metrics.json, audit.json and every synthetic image.

Two runs of one recipe and seed on one machine must print the same lines; used to show that
a refactor changed no result:

    python benchmarks/run_fingerprint.py runs/tiny-20261201-210416
"""

import hashlib
import sys
from pathlib import Path


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(run: Path) -> dict[str, str]:
    images = sorted(p for p in (run / "synthetic").rglob("*") if p.is_file() and p.suffix in {".png", ".dcm", ".gz", ".nii"})
    joint = hashlib.sha256()
    for p in images:
        joint.update(p.relative_to(run).as_posix().encode() + b"\0" + sha(p).encode())
    return {
        "metrics.json": sha(run / "metrics.json"),
        "audit.json": sha(run / "audit.json") if (run / "audit.json").exists() else "absent",
        f"synthetic images ({len(images)})": joint.hexdigest(),
    }


if __name__ == "__main__":
    for name, digest in fingerprint(Path(sys.argv[1])).items():
        print(f"{digest}  {name}")
