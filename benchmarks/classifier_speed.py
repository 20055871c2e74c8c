"""EfficientNetV2 training speed: augkit's classifier plugin vs a plain eager fp32 timm loop.

    python benchmarks/classifier_speed.py [--size 112] [--variant tf_efficientnetv2_b0] [--device cpu|cuda]

Baseline: the same timm model, optimizer and batches in a plain loop (default memory format,
fp32, no autocast). Compared side by side, interleaved epoch by epoch: augkit's
``efficientnetv2`` plugin ``fit`` (channels-last; ``precision: auto``, which is bf16 on a bf16
CPU from 96 px and on a bf16 GPU), the plugin forced to fp32, and forced to fp32 with
``small_map_convs: false`` (oneDNN's kernels on the 4x4-1x1 maps too: the lever's own ratio is
the fp32 row's rate over this one's). Augmentation is off in both, so
only the training step is compared; one epoch = ``--images`` images.
"""

from __future__ import annotations

import argparse
import statistics
import time

import timm
import torch
import torch.nn.functional as F

from augkit.extension.roles import LabeledImages
from augkit_plugins.efficientnetv2 import EfficientNetV2

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--size", type=int, default=112)
parser.add_argument("--variant", default="tf_efficientnetv2_b0")
parser.add_argument("--images", type=int, default=256, help="training images per epoch")
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--rounds", type=int, default=3, help="timed epochs per implementation")
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default, every core)")
args = parser.parse_args()
dev = torch.device(args.device)
if args.threads:
    torch.set_num_threads(args.threads)

g = torch.Generator().manual_seed(0)
train = LabeledImages(torch.rand(args.images, 1, args.size, args.size, generator=g) * 2 - 1,
                      torch.randint(3, (args.images,), generator=g), ["a", "b", "c"])
val = train.subset(torch.arange(args.batch))


def sync() -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def baseline():
    model = timm.create_model(args.variant, pretrained=False, num_classes=3, in_chans=1).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=0.01)

    def epoch():
        model.train()
        for i in range(0, args.images - args.batch + 1, args.batch):
            x, y = train.images[i : i + args.batch].to(dev), train.labels[i : i + args.batch].to(dev)
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync()

    return epoch


def plugin(precision: str, small_map_convs: bool = True):
    clf = EfficientNetV2(variant=args.variant, image_size=args.size, epochs=10**6, min_epochs=10**6, patience=10**6,
                         batch_size=args.batch, augment=False, precision=precision, device=dev.type,
                         small_map_convs=small_map_convs)
    rows = clf.fit(train, val, seed=0)

    def epoch():
        next(rows)
        sync()

    return clf, epoch


impls = {"baseline (timm, eager fp32)": baseline()}
auto, impls["augkit (precision auto)"] = plugin("auto")
_, impls["augkit (precision fp32)"] = plugin("fp32")
_, impls["augkit (fp32, oneDNN small maps)"] = plugin("fp32", small_map_convs=False)
for fn in impls.values():
    fn()  # warm-up epoch
times: dict[str, list[float]] = {k: [] for k in impls}
for _ in range(args.rounds):
    for name, fn in impls.items():
        start = time.perf_counter()
        fn()
        times[name].append(time.perf_counter() - start)

where = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
print(f"\n{args.variant} training at {args.size} px, batch {args.batch}, {where}; median of {args.rounds} interleaved "
      f"epochs of {args.images} images (augkit's epochs include one validation batch); auto -> {auto.precision}")
base = args.images / statistics.median(times["baseline (timm, eager fp32)"])
print(f"{'implementation':33s} {'images/s':>9s} {'vs baseline':>12s}")
for name, ts in times.items():
    rate = args.images / statistics.median(ts)
    print(f"{name:33s} {rate:9.1f} {rate / base:11.2f}x")
