"""``check_distributed``: a Generator or Classifier trained over several CPU processes, as torchrun starts them.

Each rank is a new interpreter running ``python -m augkit.testing JOB`` (``augkit/testing/__main__.py``),
which calls :func:`_distributed_rank`.
"""

from __future__ import annotations

import pickle
import tempfile
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from augkit.extension.roles import Classifier, Generator, Plugin
from augkit.testing._checker import _build, _check_rows, _check_tensor, _Checker, _labeled_images


def check_distributed(cls: type[Generator] | type[Classifier], *, processes: int = 2, timeout: float = 300,
                      **options: Any) -> None:
    """Check that a Generator or Classifier declaring ``supports_distributed`` trains over several processes.

    Starts ``processes`` (at least 2) CPU processes as torchrun would (gloo; ``RANK``,
    ``WORLD_SIZE`` ...; ``augkit.compute.distributed.init``; no GPU visible), each importing ``cls`` by
    its module and name (define it at module level of an importable module: a plugin package,
    or a test module on ``sys.path``), building it from ``options`` and fitting it on the data
    ``check_generator`` / ``check_classifier`` use. Then:

    * ``check_distributed(processes)`` accepts the options;
    * ``fit`` finishes on every rank (a rank that raises is named, with its traceback);
    * every rank yields the same rows (steps and values; keys naming wall time, ``sec`` or
      ``time``, are not compared);
    * every rank ends with the same model: ``sample(labels, seed=0)`` (a generator) or
      ``predict_proba(images)`` (a classifier) are identical on every rank.

    It takes some seconds: each process imports torch. ``timeout`` bounds the whole check.
    """
    import importlib

    c = _Checker(cls)
    c.expect(isinstance(processes, int) and processes >= 2, "processes", "at least 2 (one process checks nothing)",
             processes)
    role = Generator if isinstance(cls, type) and issubclass(cls, Generator) else Classifier
    with torch.random.fork_rng(devices=[]):
        plugin = _build(c, cls, role, options)
    c.expect(getattr(cls, "supports_distributed", False) is True, "supports_distributed",
             "True (the check trains over several processes; without it augkit never asks that)",
             repr(getattr(cls, "supports_distributed", None)))
    c.call(f"check_distributed({processes})", lambda: plugin.check_distributed(processes))

    def importable() -> bool:
        found: Any = importlib.import_module(cls.__module__)
        for part in cls.__qualname__.split("."):
            found = getattr(found, part)
        return found is cls

    where = f"{cls.__module__}.{cls.__qualname__}"
    c.expect("<locals>" not in cls.__qualname__ and cls.__module__ != "__main__" and c.call("import", importable),
             "import by name", f"{where} importable in a new process (define the class at module level of an "
             "importable module, not in a function or a script run as __main__)", "not importable")
    c.call("options pickle (they travel to the processes)", lambda: pickle.dumps(options))

    with tempfile.TemporaryDirectory(prefix="augkit-contract-") as tmp:
        for attempt in range(3):  # a free port can be taken between finding it and binding it: try another
            failure = _run_ranks(cls, role, options, processes, timeout, Path(tmp) / f"attempt{attempt}")
            if failure is None or "address already in use" not in failure.lower():
                break
        c.expect(failure is None, f"fit over {processes} processes", "every rank to finish", failure)
        results = [torch.load(Path(tmp) / f"attempt{attempt}" / f"rank{r}.pt", weights_only=False)
                   for r in range(processes)]

    def comparable(rows: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if "sec" not in k and "time" not in k} for row in rows]

    what = "sample(labels, seed=0)" if role is Generator else "predict_proba(images)"
    for r, result in enumerate(results):
        _check_rows(c, result["rows"], f"fit over {processes} processes, rank {r}")
        _check_tensor(c, result["out"], f"{what} on rank {r}", (None,) * result["out"].dim()
                      if isinstance(result["out"], Tensor) else (), "as on one process")
    first = comparable(results[0]["rows"])
    for r, result in enumerate(results[1:], 1):
        rows = comparable(result["rows"])
        differ = next((i for i, (a, b) in enumerate(zip(first, rows)) if a != b), min(len(first), len(rows)))
        c.expect(rows == first, f"fit over {processes} processes",
                 f"rank {r} to yield rank 0's rows (log the values of the whole batch, the same on every rank)",
                 lambda: f"row {differ}: rank 0 {first[differ] if differ < len(first) else 'none'}, "
                         f"rank {r} {rows[differ] if differ < len(rows) else 'none'}")
        c.same(results[0]["out"], result["out"], f"{what} on every rank after fit over {processes} processes",
               f"rank {r} to give rank 0's result (every rank must end with the same weights)")


def _run_ranks(cls: Any, role: type[Plugin], options: dict[str, Any], processes: int, timeout: float,
               folder: Path) -> str | None:
    """Start the ranks of ``check_distributed`` in ``folder``; None when all finish, else what went wrong."""
    import os
    import subprocess
    import sys
    import time

    from augkit.compute.distributed import free_port

    folder.mkdir(parents=True)
    port = free_port()
    job = folder / "job.pkl"
    job.write_bytes(pickle.dumps({"module": cls.__module__, "name": cls.__qualname__, "options": options,
                                  "role": role.__name__, "out": str(folder)}))
    env = {k: v for k, v in os.environ.items() if k != "AUGKIT_DIST_BACKEND"}
    env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(processes),
               LOCAL_WORLD_SIZE=str(processes), CUDA_VISIBLE_DEVICES="",  # CPU processes, gloo, on any machine
               PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
    logs = [open(folder / f"rank{r}.log", "w") for r in range(processes)]  # files, not pipes: a chatty rank never blocks
    ranks = [subprocess.Popen([sys.executable, "-m", "augkit.testing", str(job)],
                              env={**env, "RANK": str(r), "LOCAL_RANK": str(r)}, stdout=log, stderr=subprocess.STDOUT)
             for r, log in enumerate(logs)]
    deadline, failed_at = time.monotonic() + timeout, None
    try:
        while any(rank.poll() is None for rank in ranks):
            now = time.monotonic()
            if failed_at is None and any(rank.returncode not in (None, 0) for rank in ranks):
                failed_at = now  # give the others a moment to write what they saw, then stop them
            if now > deadline or (failed_at is not None and now > failed_at + 10):
                break
            time.sleep(0.1)
    finally:
        for rank in ranks:
            if rank.poll() is None:
                rank.kill()
            rank.wait()
        for log in logs:
            log.close()
    if all(rank.returncode == 0 for rank in ranks):
        return None

    def said(r: int) -> str:
        error = folder / f"rank{r}-error.txt"
        return (error.read_text() if error.exists() else (folder / f"rank{r}.log").read_text())[-3000:]

    lost = ("connection reset", "connection closed", "broken pipe", "connection refused")
    failed = [r for r, rank in enumerate(ranks) if rank.returncode not in (0, None) and rank.returncode >= 0]
    # the root cause: a rank that failed by itself, not one that lost its peer
    cause = next((r for r in failed if not any(w in said(r).lower() for w in lost)), failed[0] if failed else None)
    if cause is None:
        return (f"a timeout after {timeout:g} s (a rank waiting in a collective the others never entered?); "
                f"rank 0 said: {said(0)[-1500:]}")
    return f"rank {cause} failed: {said(cause)}"


def _distributed_rank(job_path: str) -> None:
    """One rank of ``check_distributed`` (``python -m augkit.testing JOB``)."""
    import importlib
    import os
    import traceback

    from augkit.compute import distributed

    job = pickle.loads(Path(job_path).read_bytes())
    out = Path(job["out"])
    rank = int(os.environ["RANK"])
    try:
        cls: Any = importlib.import_module(job["module"])
        for part in job["name"].split("."):
            cls = getattr(cls, part)
        distributed.init(torch.device("cpu"))
        plugin = cls(cls.Options(**job["options"]))
        channels = getattr(plugin.options, "channels", None) or 1
        size = getattr(plugin.options, "image_size", None) or 16
        if job["role"] == "Generator":
            rows = list(plugin.fit(_labeled_images(channels, size, per_class=4, seed=0), seed=0))
            result = plugin.sample(torch.tensor([0, 1, 2, 2, 1, 0]), seed=0)
        else:
            val = _labeled_images(channels, size, per_class=2, seed=1)
            rows = list(plugin.fit(_labeled_images(channels, size, per_class=6, seed=0), val, seed=0))
            result = plugin.predict_proba(val.images)
        torch.save({"rows": rows, "out": result}, out / f"rank{rank}.pt")
        distributed.close()
    except BaseException:
        (out / f"rank{rank}-error.txt").write_text(traceback.format_exc())
        distributed.exit_now(1)
    distributed.exit_now(0)
