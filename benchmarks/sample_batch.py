"""Diffusion sampling speed against ``sample_batch`` (images denoised at once).

    python benchmarks/sample_batch.py [--batches 64 32 16 8] [--images 96] [--repeats 3] [--size 56]
                                      [--widths 16 32 64 64] [--attention 0 0 0 1] [--device auto]

Baseline: ``sample_batch: 64``, the plugin's only value until 2026-12-04. The plugin's CPU-size
UNet (the quickstart's), one training step so that the weights exist (speed does not depend on
them), then ``sample`` of ``--images`` images (96: what selection scores per checkpoint at the
default 32 per class and 3 classes) at each batch size, the sizes interleaved and repeated so
that a machine's drift hits them all alike; with guidance each pass runs twice the batch.
Prints each size's median seconds, its ratio against the baseline, and whether its images
equal the baseline's (up to rounding: another batch size may take other kernels).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

import augkit
from augkit.compute import accel
from augkit_plugins.diffusion import Diffusion

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--batches", type=int, nargs="+", default=[64, 32, 16, 8])
parser.add_argument("--images", type=int, default=96)
parser.add_argument("--repeats", type=int, default=3)
parser.add_argument("--size", type=int, default=56)
parser.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64, 64])
parser.add_argument("--attention", type=int, nargs="+", default=[0, 0, 0, 1])
parser.add_argument("--steps", type=int, default=20, help="sampling steps (the quickstart's 20)")
parser.add_argument("--device", default="auto")
args = parser.parse_args()

device = accel.resolve_device(args.device)
g = torch.Generator().manual_seed(0)
data = augkit.LabeledImages(torch.rand(48, 1, args.size, args.size, generator=g) * 2 - 1, torch.arange(48) % 3,
                            ["a", "b", "c"], [f"p{i}" for i in range(48)])
common = dict(image_size=args.size, widths=args.widths, attention=[bool(a) for a in args.attention],
              iterations=1, batch_size=8, sampling_steps=args.steps, device=args.device)
trained = Diffusion(**common)
list(trained.fit(data, seed=0))
models = {}
for b in args.batches:  # the same weights at every batch size
    models[b] = Diffusion(trained.options.model_copy(update={"sample_batch": b}))
    models[b]._classes, models[b].step = trained.classes, trained.step
    models[b]._build(3)
    models[b].net.load_state_dict(trained.net.state_dict())
    models[b].ema_net.load_state_dict(trained.ema_net.state_dict())
labels = torch.arange(args.images) % 3


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize()


print(f"{device.type}, {torch.get_num_threads()} threads, precision {trained.precision}; UNet widths {args.widths}, "
      f"{args.size} px, {args.steps} steps, guidance {trained.options.guidance}; {args.images} images, "
      f"{args.repeats} interleaved repeats", flush=True)
models[args.batches[-1]].sample(labels[:8], seed=0)  # warm
times: dict[int, list[float]] = {b: [] for b in args.batches}
images: dict[int, torch.Tensor] = {}
for _ in range(args.repeats):
    for b, model in models.items():
        sync()
        start = time.perf_counter()
        images[b] = model.sample(labels, seed=0)
        sync()
        times[b].append(time.perf_counter() - start)
base = statistics.median(times[args.batches[0]])
for b in args.batches:
    t = statistics.median(times[b])
    diff = (images[b] - images[args.batches[0]]).abs().max().item()
    print(f"sample_batch {b:3d}: {t:6.2f} s ({', '.join(f'{x:.1f}' for x in times[b])}), "
          f"{args.images / t:5.2f} images/s, {base / t:.2f}x sample_batch {args.batches[0]}; "
          f"largest pixel difference from it {diff:.1e}", flush=True)
