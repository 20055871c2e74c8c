"""A recipe end to end, per stage: a baseline setting against augkit's defaults, one after the other.

    python benchmarks/quickstart_stages.py [--recipe examples/quickstart.yaml] [--baseline KEY=VALUE ...] [--out DIR]

Baseline: the same recipe with ``--set`` for each ``--baseline`` value (default
``precision=fp32``: every network in fp32; the other speed levers stay on). Both runs go through
``augkit run`` in a fresh process each, on the same data cache, nothing else running. Prints
each stage's seconds (the run's ``timings.json``) and the wall time with the ratio, then each
run's verdict (the study's comparisons after Holm), so a faster setting that changes the answer
is seen.

The study in minutes (about 30 minutes on 2 cores; docs/benchmarks.md):

    python benchmarks/quickstart_stages.py --recipe benchmarks/study_600.yaml \\
        --baseline evaluation.budget=epochs evaluation.workers=1 classifier.options.width=1
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
parser.add_argument("--baseline", nargs="+", default=["precision=fp32"], metavar="KEY=VALUE",
                    help="the baseline's overrides of the recipe")
parser.add_argument("--out", default=None, help="parent folder of the two runs (default: a temporary folder)")
args = parser.parse_args()

out = Path(args.out) if args.out else Path(tempfile.mkdtemp(prefix="augkit-stages-bench-"))
augkit = [sys.executable, "-m", "augkit", "run", args.recipe, "--out", str(out)]
baseline = "baseline: " + " ".join(args.baseline)
results = {}
for name, extra in ((baseline, [a for kv in args.baseline for a in ("--set", kv)]), ("defaults", [])):
    start = time.perf_counter()
    done = subprocess.run(augkit + extra, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"{name}: augkit run failed:\n{done.stderr[-2000:]}")
    run_dir = Path(done.stdout.strip().splitlines()[-1])
    timings = json.loads((run_dir / "timings.json").read_text())
    resolved = json.loads((run_dir / "environment.json").read_text())["resolved"]
    metrics = run_dir / "metrics.json"
    verdict = json.loads(metrics.read_text()).get("verdict", []) if metrics.exists() else []
    results[name] = {"timings": {**timings, "wall time": wall}, "resolved": resolved, "verdict": verdict,
                     "folder": run_dir}

base, *_, last = results.values()
print(f"\n{Path(args.recipe).name}: seconds per stage (runs in {out})")
print(f"{'stage':14s}" + "".join(f"{n[:40]:>42s}" for n in results) + f"{'ratio':>9s}")
for stage in base["timings"]:
    row = [r["timings"].get(stage, float("nan")) for r in results.values()]
    print(f"{stage:14s}" + "".join(f"{v:42.1f}" for v in row) + f"{row[0] / max(row[-1], 1e-9):8.2f}x")
for name, r in results.items():
    print(f"\n{name} ({r['folder'].name}): {r['resolved']}")
    for line in r["verdict"] or ["(no study)"]:
        print(f"  {line}")
if not args.out:
    shutil.rmtree(out, ignore_errors=True)
