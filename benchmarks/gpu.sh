#!/usr/bin/env bash
# The CUDA measurements of docs/benchmarks.md, in one go, in under 10 minutes on one GPU.
#
#   bash benchmarks/gpu.sh [OUT_DIR]      # in the repository, with augkit installed (README)
#
# 1. AC-GAN at the paper's shape: plain eager fp32 reference vs augkit fp32 / bf16 / bf16 +
#    torch.compile: seconds per iteration and generation images/s (benchmarks/acgan_speed.py).
# 2. EfficientNetV2-S training images/s at 112 px vs a plain timm loop (classifier_speed.py).
# 3. The chest X-ray paper recipe end to end with its exact settings on phantom data of the
#    Kaggle set's size and class mix, for 2,000 of the 32,000 generator iterations and 5 of
#    the 50 classifier epochs; the printed estimate scales both up (linear in iterations and
#    epochs; early stopping makes the classifier part an upper bound).
# 4. On a machine with 2 GPUs or more (4 more minutes at most): the AC-GAN and EfficientNetV2-S
#    trained over 2 processes (DDP, nccl) against one GPU (distributed_speed.py).
# Everything lands in OUT_DIR (default gpu-bench-<time>); paste the three tables into
# docs/benchmarks.md with the GPU's name.
set -euo pipefail
out=${1:-gpu-bench-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$out"
python - <<'PY' | tee "$out/gpu.txt"
import torch
assert torch.cuda.is_available(), "no CUDA GPU: this script measures the GPU path"
print(torch.cuda.get_device_name(0), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB",
      "torch", torch.__version__, "CUDA", torch.version.cuda, "bf16", torch.cuda.is_bf16_supported())
PY
timeout 240 python benchmarks/acgan_speed.py --device cuda --iterations 30 --generate 4096 --compile | tee "$out/acgan.txt"
timeout 120 python benchmarks/classifier_speed.py --device cuda --variant tf_efficientnetv2_s --images 1024 \
  | tee "$out/classifier.txt"
paper_generator='{image_size: 112, channels: 3, width: 1024, latent_dim: 100, embed_dim: 50, batch_size: 32, optimizer: rmsprop, lr_g: 0.0001, lr_d: 0.0001, diffaugment: [], label_smoothing: 0.0, spectral_norm: false, loss: bce, ema: null, balanced_batches: false, iterations: 2000}'
timeout 300 augkit run examples/chest_xray_paper.yaml --out "$out/runs" \
  --set 'dataset={name: chest-phantom, options: {counts: {normal: 1583, bacteria: 2780, virus: 1493}, image_size: 256}}' \
  --set split.mode=patients --set "generator.options=$paper_generator" --set checkpoint_every=1000 \
  --set evaluation.seeds=1 --set 'evaluation.regimes=[real, fake, fake+real]' \
  --set classifier.options.epochs=5 --set classifier.options.min_epochs=5 \
  > "$out/run.txt" 2> "$out/run.log" || echo "the end-to-end run did not finish in 300 s: see $out/run.log"
python - "$out" <<'PY' | tee "$out/end_to_end.txt"
import json, sys, pathlib
runs = sorted(pathlib.Path(sys.argv[1], "runs").glob("*/timings.json"))
if runs:
    t = json.loads(runs[-1].read_text())
    print("stages (s):", t)
    gen, clf = 16 * t["generator"], 10 * (t["sample"] + t["classifiers"])  # 2,000 -> 32,000 its; 5 -> 50 epochs
    print(f"estimated chest X-ray paper recipe (32,000 iterations, up to 50 epochs, 3 regimes x 1 seed): "
          f"{(t['preprocess'] + gen + clf) / 60:.0f} min: generator {gen / 60:.0f} min, classifiers at most "
          f"{clf / 60:.0f} min (early stopping cuts that); x3 seeds for the recipe's default study")
PY
# 4. With two GPUs or more: both trainings over 2 processes (DDP, nccl) against one GPU.
if [ "$(python -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  timeout 240 python benchmarks/distributed_speed.py --device cuda --processes 2 --width 1024 --variant tf_efficientnetv2_s \
    | tee "$out/distributed.txt"
fi
