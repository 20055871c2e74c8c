"""The quickstart end to end, per stage: `precision: auto` against the fp32 baseline, one after the other.

    python benchmarks/quickstart_stages.py [--recipe examples/quickstart.yaml] [--out DIR]

Baseline: the same recipe with ``--set precision=fp32`` (every network in fp32; the other
speed levers, which change no result, stay on). Both runs go through ``augkit run`` in a fresh
process each, on the same data cache, nothing else running (about 10 minutes on 2 cores).
Prints each stage's seconds (the run's ``timings.json``) and the wall time, with the ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--recipe", default=str(Path(__file__).parents[1] / "examples" / "quickstart.yaml"))
parser.add_argument("--out", default=None, help="parent folder of the two runs (default: a temporary folder)")
args = parser.parse_args()

out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="augkit-quickstart-bench-"))
augkit = [sys.executable, "-m", "augkit", "run", args.recipe, "--out", str(out)]
results = {}
for name, extra in (("baseline: precision fp32", ["--set", "precision=fp32"]), ("precision auto", [])):
    start = time.perf_counter()
    done = subprocess.run(augkit + extra, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{name}: augkit run failed:\n{done.stderr[-2000:]}")
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    timings = json.loads((run_dir / "timings.json").read_text())
    resolved = json.loads((run_dir / "environment.json").read_text())["resolved"]
    results[name] = {**timings, "wall time": wall, "resolved": resolved}

base = results["baseline: precision fp32"]
print(f"\n{Path(args.recipe).name}: seconds per stage (runs in {out})")
stages = [k for k in base if k != "resolved"]
print(f"{'stage':14s}" + "".join(f"{n:>26s}" for n in results) + f"{'ratio':>9s}")
for stage in stages:
    row = [r[stage] for r in results.values()]
    print(f"{stage:14s}" + "".join(f"{v:26.1f}" for v in row) + f"{row[0] / row[-1]:8.2f}x")
for name, r in results.items():
    print(f"{name}: {r['resolved']}")
if not args.out:
    shutil.rmtree(out, ignore_errors=True)
