"""Does a one-thread classifier step get faster with reduced-precision arithmetic? fp32 against each mode.

    python benchmarks/classifier_math_modes.py [--size 56] [--batch 16] [--steps 60]

The study's classifier step as its workers run it (one thread; the plugin's network as ``fit`` builds it, timm's ``tf_efficientnetv2_b0``
with the plugin's small-map convolutions, channels-last, fused AdamW, batch 16 at 56 px), timed
in a fresh process per mode, one after the other: plain fp32 (the baseline), oneDNN's bf16
arithmetic for fp32 tensors (``torch.backends.mkldnn.{matmul,conv}.fp32_precision = "bf16"``),
``torch.set_float32_matmul_precision("medium")`` and bf16 autocast. Prints ms per step and the
ratio against fp32. docs/benchmarks.md ("The study in minutes").
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

MODES = ["fp32", "mkldnn-bf16", "matmul-medium", "autocast-bf16"]


def step_ms(mode: str, size: int, batch: int, steps: int) -> float:
    import torch
    import torch.nn.functional as F

    from augkit_plugins.efficientnetv2 import EfficientNetV2

    torch.set_num_threads(1)
    if mode == "mkldnn-bf16":
        torch.backends.mkldnn.matmul.fp32_precision = "bf16"
        torch.backends.mkldnn.conv.fp32_precision = "bf16"
    elif mode == "matmul-medium":
        torch.set_float32_matmul_precision("medium")
    torch.manual_seed(0)
    model = EfficientNetV2(image_size=size, precision="fp32", device="cpu")._create(3)  # the plugin's network, as fit builds it
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, fused=True)
    x = torch.randn(batch, 1, size, size).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 3, (batch,))
    autocast = torch.autocast("cpu", dtype=torch.bfloat16, enabled=mode == "autocast-bf16")

    def step():
        with autocast:
            loss = F.cross_entropy(model(x), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(10):  # warm-up: oneDNN's primitives are built on first use
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps * 1000


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=56)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--mode", choices=MODES, help=argparse.SUPPRESS)  # one mode, in this process
    args = parser.parse_args()
    if args.mode:
        print(step_ms(args.mode, args.size, args.batch, args.steps))
        sys.exit()
    base = None
    for mode in MODES:
        done = subprocess.run([sys.executable, __file__, "--mode", mode, "--size", str(args.size), "--batch",
                               str(args.batch), "--steps", str(args.steps)], capture_output=True, text=True, check=True)
        ms = float(done.stdout.strip().splitlines()[-1])
        base = base or ms
        print(f"{mode:14s} {ms:7.1f} ms/step  {base / ms:5.2f}x against fp32", flush=True)
