"""AC-GAN speed at the paper's shape: augkit vs a plain eager fp32 reference, side by side.

    python benchmarks/acgan_speed.py [--iterations 4] [--device cpu|cuda] [--size 112 --width 1024]

Baseline: ``benchmarks/reference_acgan.py``, the paper's architecture and training step as
plain eager fp32 PyTorch. Measured in the same process, interleaved round by round (so load
from elsewhere hits both alike): augkit's AC-GAN (`preset: paper`) in fp32 and in bf16
(autocast + channels-last, `precision: auto` on a CPU with AVX-512 BF16 or a GPU with bf16).
Also: generation images/s, achieved GFLOP/s (counted by torch.utils.flop_counter on one
reference iteration) next to the machine's measured matrix-product and convolution peaks.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from reference_acgan import ReferenceACGAN  # noqa: E402

from augkit.extension.roles import LabeledImages  # noqa: E402
from augkit_plugins.acgan import ACGAN  # noqa: E402

parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
parser.add_argument("--iterations", type=int, default=4, help="timed training iterations per implementation")
parser.add_argument("--generate", type=int, default=256, help="images generated per implementation")
parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
parser.add_argument("--size", type=int, default=112)
parser.add_argument("--width", type=int, default=1024)
parser.add_argument("--batch", type=int, default=32)
parser.add_argument("--compile", action="store_true", help="also time augkit bf16 with compile: true")
args = parser.parse_args()
dev = torch.device(args.device)


def sync() -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def timed(fn) -> float:
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return time.perf_counter() - start


def peak(kind: str, dtype: torch.dtype) -> float:
    """GFLOP/s of one large matrix product or convolution."""
    with torch.inference_mode():
        if kind == "matmul":
            a, b = torch.randn(4096, 4096, dtype=dtype, device=dev), torch.randn(4096, 4096, dtype=dtype, device=dev)
            flops, fn = 2 * 4096**3, lambda: a @ b
        else:  # the paper D's widest layer
            conv = torch.nn.Conv2d(512, 1024, 4, 2, 1, bias=False).to(dev, dtype, memory_format=torch.channels_last)
            x = torch.randn(32, 512, 14, 14, dtype=dtype, device=dev).contiguous(memory_format=torch.channels_last)
            flops, fn = 2 * 32 * 1024 * 49 * 512 * 16, lambda: conv(x)
        fn()
        return flops / min(timed(fn) for _ in range(3)) / 1e9


def reference_flops() -> float:
    from torch.utils.flop_counter import FlopCounterMode

    ref = ReferenceACGAN(width=args.width, batch_size=args.batch)
    real, y = torch.rand(args.batch, 3, args.size, args.size) * 2 - 1, torch.randint(3, (args.batch,))
    with FlopCounterMode(display=False) as counter:
        ref.step(real, y)
    return counter.get_total_flops() / 1e9


data = LabeledImages(torch.rand(256, 3, args.size, args.size) * 2 - 1, torch.randint(3, (256,)), ["a", "b", "c"])


def augkit_stepper(precision: str, compile_: bool = False):
    common = dict(iterations=32000, precision=precision, device=dev.type, log_every=10**6, compile=compile_)
    if (args.size, args.width, args.batch) == (112, 1024, 32):
        gan = ACGAN(preset="paper", **common)
    else:  # the paper's training at another shape
        gan = ACGAN(image_size=args.size, channels=3, width=args.width, batch_size=args.batch, optimizer="rmsprop",
                    diffaugment=[], ema=None, label_smoothing=0, balanced_batches=False, **common)
    it = gan.fit(data, seed=0)
    next(it)  # warm-up: first-iteration allocations (and compilation)
    return gan, lambda: next(it)


ref = ReferenceACGAN(width=args.width, batch_size=args.batch)
ref.G.to(dev)
ref.D.to(dev)
real_ref, y_ref = data.images[: args.batch].to(dev), data.labels[: args.batch].to(dev)


def ref_step():
    ref.step(real_ref, y_ref)


ref_step()  # warm-up
impls = {"reference (eager fp32)": ref_step}
gans = {}
for precision in ("fp32", "bf16"):
    gans[precision], impls[f"augkit {precision}"] = augkit_stepper(precision)
if args.compile:
    gans["bf16+compile"], impls["augkit bf16 + compile"] = augkit_stepper("bf16", True)

times: dict[str, list[float]] = {name: [] for name in impls}
for _ in range(args.iterations):  # interleaved: noise from elsewhere hits every implementation alike
    for name, fn in impls.items():
        times[name].append(timed(fn))

gflop = reference_flops() if dev.type == "cpu" else None
base = statistics.median(times["reference (eager fp32)"])
name_dev = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU, {torch.get_num_threads()} threads"
print(f"\nAC-GAN training iteration, {args.size} px, width {args.width}, batch {args.batch}, {name_dev}, "
      f"torch {torch.__version__}; median of {args.iterations} interleaved iterations")
print(f"{'implementation':28s} {'s/iter':>8s} {'vs reference':>13s}" + (f" {'eff. GFLOP/s':>13s}" if gflop else ""))
for name, ts in times.items():
    t = statistics.median(ts)
    print(f"{name:28s} {t:8.3f} {base / t:12.2f}x" + (f" {gflop / t:13.0f}" if gflop else ""))
if gflop:
    print(f"(eff. GFLOP/s: the reference iteration's {gflop:.0f} GFLOP, counted by torch.utils.flop_counter, over the "
          "time; augkit skips D's weight gradients in the G step, about 8% of that work)")

labels = torch.arange(args.generate) % 3
gen = {"reference (eager fp32)": lambda: ref.sample(labels.to(dev))}
for precision in ("fp32", "bf16"):
    gan = gans[precision]
    gen[f"augkit {precision}"] = (lambda g: lambda: [g.sample(labels[i : i + 64], seed=i) for i in range(0, len(labels), 64)])(gan)
for fn in gen.values():
    fn()  # warm-up
gen_times: dict[str, list[float]] = {name: [] for name in gen}
for _ in range(3):
    for name, fn in gen.items():
        gen_times[name].append(timed(fn))
gbase = args.generate / statistics.median(gen_times["reference (eager fp32)"])
print(f"\nGeneration, {args.generate} images (augkit in batches of 64)")
print(f"{'implementation':28s} {'images/s':>9s} {'vs reference':>13s}")
for name, ts in gen_times.items():
    rate = args.generate / statistics.median(ts)
    print(f"{name:28s} {rate:9.1f} {rate / gbase:12.2f}x")

print("\nPeaks of this machine (GFLOP/s): "
      + ", ".join(f"{kind} {str(dt).split('.')[-1]} {peak(kind, dt):.0f}"
                  for kind in ("matmul", "conv") for dt in (torch.float32, torch.bfloat16)))
