"""Several processes, one run: ``torch.distributed`` set up from torchrun's environment.

``torchrun --nproc_per_node N -m augkit run RECIPE`` starts N copies of the command, each
with ``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``, ``LOCAL_WORLD_SIZE``, ``MASTER_ADDR`` and
``MASTER_PORT`` set. :func:`init` joins them into one process group when
``WORLD_SIZE > 1`` (``nccl`` when the run trains on CUDA GPUs, ``gloo`` on CPUs) and leaves a
single process exactly as it was: no process group, no collective, no thread change.
``close`` leaves the group at the end of the command.

Who does what (docs/distributed.md): every rank trains the generator (DDP), generates its
share of the synthetic batches and takes part in the classifier study (its share of the
trainings, or every training together with the others, with DDP); rank 0 alone writes files,
logs and progress bars. The helpers below are no-ops in a single process.
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

BACKENDS = ("gloo", "nccl")
# Rank 0 alone trains the selection judge, scores checkpoints, audits the synthetic images and
# writes the report while the other ranks wait in a collective: allow for long ones.
TIMEOUT = dt.timedelta(hours=4)


class DistributedError(RuntimeError):
    """A multi-process run that cannot work as asked (backend, devices, batch size ...)."""


@dataclass(frozen=True)
class World:
    """This process's place among the run's processes; ``World()`` is a single process."""

    rank: int = 0
    size: int = 1
    local_rank: int = 0
    local_size: int = 1

    @property
    def main(self) -> bool:
        """Rank 0: the one process that writes files, logs and progress bars."""
        return self.rank == 0


_alone = 0  # > 0 inside ``alone()``


def world() -> World:
    """The current process group as a :class:`World` (``World()`` when there is none, or inside :func:`alone`)."""
    if _alone or not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return World()
    return World(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                 int(os.environ.get("LOCAL_WORLD_SIZE", 1)))


@contextmanager
def alone() -> Iterator[None]:
    """Within: this process behaves as a single process (``world()`` is ``World()``, this module's collectives
    are no-ops; ``torch.distributed`` itself still reaches the whole group, so call none of it here).

    For work one rank does by itself while the others do something else: rank 0 training the
    audit's classifier, or each rank training its own share of the study's classifiers. A
    plugin that consults :func:`world` then trains on its own instead of waiting for peers.
    """
    global _alone
    _alone += 1
    try:
        yield
    finally:
        _alone -= 1


def launched() -> bool:
    """True when torchrun (or anything setting ``WORLD_SIZE`` > 1) started this process as one of several."""
    return int(os.environ.get("WORLD_SIZE", "1")) > 1


def backend_for(device: torch.device) -> str:
    """``nccl`` for CUDA training, ``gloo`` for CPUs; ``AUGKIT_DIST_BACKEND`` overrides (checked)."""
    chosen = os.environ.get("AUGKIT_DIST_BACKEND") or ("nccl" if device.type == "cuda" else "gloo")
    if chosen not in BACKENDS:
        raise DistributedError(f"AUGKIT_DIST_BACKEND={chosen!r}: use one of {', '.join(BACKENDS)}")
    if chosen == "nccl" and not torch.cuda.is_available():
        raise DistributedError("backend nccl needs CUDA GPUs, but torch sees none on this machine: "
                               "use gloo (unset AUGKIT_DIST_BACKEND, and device: cpu or auto)")
    if chosen == "nccl" and device.type != "cuda":
        raise DistributedError(f"backend nccl works on GPU tensors, but the generator trains on {device.type}: "
                               "unset AUGKIT_DIST_BACKEND (gloo), or set generator.options.device=cuda")
    if chosen == "gloo" and device.type == "cuda":
        raise DistributedError("backend gloo with the generator on cuda: augkit runs DDP on GPUs with nccl "
                               "(unset AUGKIT_DIST_BACKEND)")
    return chosen


def cores() -> int:
    """CPU cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def init(device: torch.device) -> World:
    """Join torchrun's process group (only when ``WORLD_SIZE`` > 1); return this process's :class:`World`.

    CUDA: one GPU per process, ``LOCAL_RANK`` picks it. CPU: each process gets
    ``cores // LOCAL_WORLD_SIZE`` threads (at least 1), so N processes do not oversubscribe the cores.
    """
    if not launched():
        return World()
    if dist.is_initialized():
        return world()
    missing = [k for k in ("RANK", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT") if k not in os.environ]
    if missing:
        raise DistributedError(f"WORLD_SIZE is {os.environ['WORLD_SIZE']} but {', '.join(missing)} is not set: "
                               "start several processes with torchrun (docs/distributed.md)")
    backend = backend_for(device)
    local_rank, local_size = int(os.environ["LOCAL_RANK"]), int(os.environ.get("LOCAL_WORLD_SIZE", 1))
    if device.type == "cuda" and local_size > torch.cuda.device_count():
        raise DistributedError(f"torchrun started {local_size} processes on this machine but torch sees "
                               f"{torch.cuda.device_count()} GPU(s): one process per GPU "
                               f"(--nproc_per_node {torch.cuda.device_count()})")
    if torch.cuda.is_available() and local_size <= torch.cuda.device_count():
        torch.cuda.set_device(local_rank)  # "cuda" is then this rank's GPU, for every plugin
    if device.type != "cuda":
        torch.set_num_threads(max(1, cores() // local_size))
    dist.init_process_group(backend, timeout=TIMEOUT)
    if dist.get_rank() != 0:  # rank 0 alone logs; a failing rank still says so (see ``failure``)
        import logging

        logger = logging.getLogger("augkit")
        logger.addHandler(logging.NullHandler())
        logger.propagate = False
    return world()


def close() -> None:
    """Leave the group once every rank is done (call it on success only: a failed peer never arrives).

    With gloo the group is not destroyed, and a process that was one of several should end
    through :func:`exit_now`: at the end of a finished 2-rank CPU run, C++ teardown (of the
    group, or of its threads at interpreter exit) aborted a rank about once in ten to twenty
    runs ("terminate called without an active exception", torch 2.14.1), after every result was
    written. NCCL groups are destroyed, as torch asks.
    """
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        if dist.get_backend() == "nccl":
            dist.destroy_process_group()


def exit_now(code: int = 0) -> None:
    """End this process at once after flushing logs and output, skipping C++ static teardown (see ``close``)."""
    import logging
    import sys

    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    os._exit(code)

def failure(exc: BaseException, here: World) -> str:
    """What a failing rank says before it stops (torchrun then stops the others and names the first failed rank)."""
    if isinstance(exc, getattr(dist, "DistBackendError", ())) or "Connection closed by peer" in str(exc):
        why = "lost contact with another rank (it failed or was stopped: see its message)"
    else:
        why = f"{type(exc).__name__}: {exc}"
    return f"rank {here.rank} of {here.size} failed: {why}"


# -- collectives: every rank calls them, in the same order ----------------------------------


def barrier() -> None:
    if world().size > 1:
        dist.barrier()


def broadcast(obj: Any, src: int = 0) -> Any:
    """Rank ``src``'s ``obj``, on every rank (pickled)."""
    if world().size == 1:
        return obj
    box = [obj]
    dist.broadcast_object_list(box, src=src)
    return box[0]


def all_gather(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (pickled)."""
    here = world()
    if here.size == 1:
        return [obj]
    out: list[Any] = [None] * here.size
    dist.all_gather_object(out, obj)
    return out


def gather(obj: Any) -> list[Any] | None:
    """Every rank's ``obj`` in rank order on rank 0; ``None`` on the others."""
    here = world()
    if here.size == 1:
        return [obj]
    out: list[Any] | None = [None] * here.size if here.main else None
    dist.gather_object(obj, out, dst=0)
    return out


def all_reduce_mean(values: torch.Tensor) -> torch.Tensor:
    """The mean over ranks of ``values``: a new tensor (``values`` itself in one process)."""
    return values if world().size == 1 else all_reduce_sum(values) / world().size


def all_reduce_sum(values: torch.Tensor) -> torch.Tensor:
    """The sum over ranks of ``values``: a new tensor on ``values``' device (``values`` itself in one process).

    nccl reduces GPU tensors only: a CPU tensor (a running total, a count) travels through this
    rank's GPU and back.
    """
    if world().size == 1:
        return values
    out = values.detach().clone()
    if dist.get_backend() == "nccl" and out.device.type != "cuda":
        out = out.to(torch.device("cuda", torch.cuda.current_device()))
    dist.all_reduce(out)
    return out.to(values.device)


def ddp(module: torch.nn.Module, device: torch.device, *, sync_buffers: bool) -> torch.nn.Module:
    """``module`` in torch's ``DistributedDataParallel``: gradients averaged over ranks at each backward.

    ``sync_buffers``: give every rank rank 0's buffers (batch-norm running statistics) before each
    forward pass; not needed when batch norm is synchronised (the statistics are already equal).
    """
    import inspect

    from torch.nn.parallel import DistributedDataParallel as DDP

    if world().size == 1:
        raise DistributedError("distributed.ddp() in a single process (or inside distributed.alone()): "
                               "train the module as it is")

    ids = [torch.cuda.current_device()] if device.type == "cuda" else None
    # torch >= 2.14 names it forward_sync_buffers (broadcast_buffers is deprecated); older torch has only the latter
    key = ("forward_sync_buffers" if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters
           else "broadcast_buffers")
    return DDP(module, device_ids=ids, **{key: sync_buffers})


def shared(folder: Path, *, fresh: bool = False) -> Path:
    """``folder`` (rank 0 made it, or a run being resumed), once every rank has checked that it sees it.

    On several machines the run folder must be on a filesystem they all share: rank 0 writes
    the checkpoints there and the others read them. Every rank raises the same error otherwise,
    and rank 0 removes a ``fresh`` folder it made for nothing (if still empty).
    """
    folder = Path(folder)
    if world().size == 1:
        return folder
    import socket

    seen = all_gather((folder.is_dir(), socket.gethostname()))
    blind = [f"rank {r} on {host}" for r, (ok, host) in enumerate(seen) if not ok]
    if blind:
        if fresh and world().main and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
        raise DistributedError(f"{', '.join(blind)} cannot see {folder}, which rank 0 on {seen[0][1]} "
                               f"{'made' if seen[0][0] else 'cannot see either'}: on several machines, --out "
                               "(and cache_dir) must be on a filesystem every machine shares (docs/distributed.md)")
    return folder


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now (for a rendezvous on this machine)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def shard(n: int, here: World | None = None) -> range:
    """Items ``0 .. n-1`` this rank takes: every ``size``-th, starting at its rank."""
    here = here or world()
    return range(here.rank, n, here.size)
