"""Shared fixtures: a fresh plugin manager and tiny in-memory plugins."""

from __future__ import annotations

import os
import types

import pytest
import torch

import augkit

if os.environ.get("PYTEST_XDIST_WORKER"):
    # one test process per core (pyproject's -n auto): each computes on one thread, and so do the processes it
    # starts (OMP_NUM_THREADS). With torch's default of a thread per core in each, two fought for 2 cores: the
    # suite took 15 min 28 s against 12 min 44 s in one process; on one thread each, 6 min 55 s against 10 min 46 s
    # (after cheaper grids and the MONAI example's --smoke; README, "Development")
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)


def pytest_xdist_auto_num_workers(config):
    """``-n auto``: one test process per core this process may use (not the host's count), at most 4 (each holds
    a gigabyte or two while a run trains); PYTEST_XDIST_AUTO_NUM_WORKERS, where set, decides instead."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    from augkit.compute.distributed import cores

    return max(1, min(4, cores()))


class ConstantGenerator(augkit.Generator):
    """A stand-in generator: every image is its class index scaled into [-1, 1]."""

    class Options(augkit.Generator.Options):
        image_size: int = 8
        channels: int = 1

    @property
    def classes(self):
        return [str(c) for c in range(self.n)]

    @property
    def steps_done(self):
        return 1 if hasattr(self, "n") else 0

    def fit(self, train, *, seed=0):
        self.n = len(train.classes)
        yield {"step": 1}

    def sample(self, labels, *, seed):
        s = self.options.image_size
        return (labels.float() / max(self.n - 1, 1) * 2 - 1)[:, None, None, None].expand(-1, 1, s, s).clone()

    def save(self, path):
        torch.save({"n": self.n}, path)

    @classmethod
    def load(cls, path):
        g = cls()
        g.n = torch.load(path)["n"]
        return g


def plugin_module(name: str, **hooks) -> types.ModuleType:
    """A plugin module built in memory: ``plugin_module("x", register_generators=fn)``."""
    module = types.ModuleType(name)
    for hook, fn in hooks.items():
        setattr(module, hook, augkit.hookimpl(fn))
    return module


@pytest.fixture
def registry():
    """A fresh plugin manager with the installed plugins (never a shared global)."""
    return augkit.get_plugin_manager()


@pytest.fixture
def tiny_images():
    torch.manual_seed(0)
    images = torch.rand(24, 1, 16, 16) * 2 - 1
    labels = torch.arange(24) % 3
    return augkit.LabeledImages(images, labels, ["a", "b", "c"], [f"p{i // 2}" for i in range(24)])


@pytest.fixture
def cli():
    """Run the CLI in-process: ``cli("plugins", "--json")`` -> a click Result (exit code checked)."""
    from typer.testing import CliRunner

    from augkit.cli import app

    def invoke(*args, expect: int = 0):
        result = CliRunner().invoke(app, [str(a) for a in args])
        assert result.exit_code == expect, (result.exit_code, result.output, result.exception)
        return result

    return invoke


@pytest.fixture
def circle_images():
    """``write(root, {"yes": 16, "no": 8}, n=16, size=48)``: a class-per-folder tree of ``n`` grey disc images
    per class (radius + i % 3, so the images differ), ``scan00.png`` ... ; returns ``root``."""
    import numpy as np
    from PIL import Image

    def write(root, radii: dict[str, int], n: int = 16, size: int = 48):
        yy, xx = np.mgrid[:size, :size]
        for label, radius in radii.items():
            (root / label).mkdir(parents=True)
            for i in range(n):
                img = ((np.hypot(yy - size // 2, xx - size // 2) < radius + i % 3) * 200 + 30).astype(np.uint8)
                Image.fromarray(img).save(root / label / f"scan{i:02d}.png")
        return root

    return write
