#!/usr/bin/env bash
# The CUDA measurements of docs/benchmarks.md, in one go, in under 10 minutes on one GPU.
#
#   bash benchmarks/gpu.sh [OUT_DIR] [SECONDS]   # in the repository, with augkit installed (README)
#
# `python` and `augkit` must be the environment's that has torch: put its bin/ first on PATH
# (a symbolic link to a virtual environment's python from elsewhere loses the environment).
#
# Parts in order of what they answer, each under its own time limit, stopping when SECONDS
# (default 540) are spent, so a short lease still returns the first ones:
# 1. Diffusion at the GPU recipes' size (112 px, widths 64-128-256-256, attention at the two
#    lowest levels, 2 residual blocks, batch 64): training s/step and sampling images/s of the
#    plugin (fp32, bf16 + channels-last) against a plain MONAI-tutorial loop of the same UNet
#    (DDPM, 1,000 steps, eager fp32) (benchmarks/diffusion_speed.py).
# 2. examples/diffusion_chest_gpu.yaml end to end on chest phantoms (counts in the Kaggle
#    set's ratio, 1,000 images) for 2,000 of its 40,000 iterations and 3 of its 50 classifier
#    epochs, 3 regimes x 1 seed; the printed estimate scales both up.
# 3. examples/diffusion_brain_gpu.yaml (128 px) for 500 iterations and 2 epochs: that it runs.
# 4. AC-GAN at the paper's shape: plain eager fp32 reference vs augkit fp32 / bf16: seconds per
#    iteration and generation images/s (benchmarks/acgan_speed.py; add --compile for a row more).
# 5. EfficientNetV2-S training images/s at 112 px vs a plain timm loop (classifier_speed.py).
# 6. The chest X-ray paper recipe (AC-GAN) with its exact settings on phantoms of the Kaggle
#    set's size for 2,000 of its 32,000 iterations and 5 of its 50 epochs, with an estimate.
# 7. On a machine with 2 GPUs or more: both trainings over 2 processes (DDP, nccl).
# Everything lands in OUT_DIR (default gpu-bench-<time>); paste the tables into
# docs/benchmarks.md with the GPU's name.
set -uo pipefail
out=${1:-gpu-bench-$(date +%Y%m%d-%H%M%S)}
deadline=$(( $(date +%s) + ${2:-540} ))
mkdir -p "$out"
export PYTHONUNBUFFERED=1

part() {  # part NAME LIMIT COMMAND...: runs COMMAND for at most LIMIT s, and never past the deadline
  local name=$1 limit=$2 left; shift 2
  left=$(( deadline - $(date +%s) ))
  if [ "$left" -lt 30 ]; then echo "== $name: skipped, ${left} s left" | tee -a "$out/parts.txt"; return; fi
  [ "$limit" -gt "$left" ] && limit=$left
  local start=$(date +%s)
  echo "== $name (at most $limit s)"
  timeout "$limit" "$@"
  echo "== $name: exit $?, $(( $(date +%s) - start )) s" | tee -a "$out/parts.txt"
}

estimate() {  # estimate RUN_DIR ITERATION_FACTOR EPOCH_FACTOR LABEL
  python - "$@" <<'PY'
import json, sys, pathlib
runs, fi, fe, label = pathlib.Path(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
found = sorted(runs.glob("*/timings.json"))
if not found:
    print(f"{label}: no finished run under {runs}")
    raise SystemExit
t = json.loads(found[-1].read_text())
print(f"{label} stages (s):", {k: round(v, 1) for k, v in t.items()})
gen, clf = fi * t["generator"], fe * t["classifiers"]  # checkpoint scoring scales with iterations too: an upper bound
print(f"{label} estimated in full: {(t['preprocess'] + gen + t['sample'] + clf) / 60:.0f} min: generator at most "
      f"{gen / 60:.0f} min, classifiers at most {clf / 60:.0f} min (early stopping cuts that), per seed of the study")
PY
}

python - <<'PY' | tee "$out/gpu.txt" || { echo "no CUDA, torch or augkit in $(command -v python): see this script's header"; exit 1; }
import torch, augkit, monai
assert torch.cuda.is_available(), "no CUDA GPU: this script measures the GPU path"
print(torch.cuda.get_device_name(0), f"{torch.cuda.get_device_properties(0).total_memory / 2**30:.0f} GiB",
      "torch", torch.__version__, "CUDA", torch.version.cuda, "bf16", torch.cuda.is_bf16_supported())
PY

part diffusion-speed 100 python benchmarks/diffusion_speed.py --device cuda --size 112 --widths 64 128 256 256 \
  --attention 0 0 1 1 --res-blocks 2 --batch 64 --images 256 --steps 20 --baseline-steps 100 \
  2>&1 | tee "$out/diffusion_speed.txt"

chest='{name: chest-phantom, options: {counts: {normal: 270, bacteria: 475, virus: 255}, image_size: 256, difficulty: 0.85}}'
part diffusion-chest 200 augkit run examples/diffusion_chest_gpu.yaml --out "$out/diffusion_chest" \
  --set "dataset=$chest" --set split.mode=patients \
  --set generator.options.iterations=2000 --set checkpoint_every=1000 \
  --set evaluation.seeds=1 --set 'evaluation.regimes=[real, fake, fake+real]' \
  --set classifier.options.epochs=3 --set classifier.options.min_epochs=3 \
  > "$out/diffusion_chest.txt" 2> "$out/diffusion_chest.log"
estimate "$out/diffusion_chest" 20 16.7 diffusion-chest-gpu | tee "$out/estimates.txt"

brain='{name: brain-phantom, options: {counts: {tumor: 155, no_tumor: 98}, image_size: 256}}'
part diffusion-brain 80 augkit run examples/diffusion_brain_gpu.yaml --out "$out/diffusion_brain" \
  --set "dataset=$brain" --set generator.options.iterations=500 --set checkpoint_every=250 \
  --set evaluation.seeds=1 --set 'evaluation.regimes=[real, fake]' \
  --set classifier.options.epochs=2 --set classifier.options.min_epochs=2 \
  > "$out/diffusion_brain.txt" 2> "$out/diffusion_brain.log"
estimate "$out/diffusion_brain" 60 25 diffusion-brain-gpu | tee -a "$out/estimates.txt"

part acgan-speed 100 python benchmarks/acgan_speed.py --device cuda --iterations 30 --generate 4096 \
  2>&1 | tee "$out/acgan.txt"
part classifier-speed 90 python benchmarks/classifier_speed.py --device cuda --variant tf_efficientnetv2_s \
  --images 1024 2>&1 | tee "$out/classifier.txt"

paper_generator='{image_size: 112, channels: 3, width: 1024, latent_dim: 100, embed_dim: 50, batch_size: 32, optimizer: rmsprop, lr_g: 0.0001, lr_d: 0.0001, diffaugment: [], label_smoothing: 0.0, spectral_norm: false, loss: bce, ema: null, balanced_batches: false, iterations: 2000}'
part acgan-paper 300 augkit run examples/chest_xray_paper.yaml --out "$out/runs" \
  --set 'dataset={name: chest-phantom, options: {counts: {normal: 1583, bacteria: 2780, virus: 1493}, image_size: 256}}' \
  --set split.mode=patients --set "generator.options=$paper_generator" --set checkpoint_every=1000 \
  --set evaluation.seeds=1 --set 'evaluation.regimes=[real, fake, fake+real]' \
  --set classifier.options.epochs=5 --set classifier.options.min_epochs=5 \
  > "$out/run.txt" 2> "$out/run.log"
estimate "$out/runs" 16 10 chest-xray-paper | tee -a "$out/estimates.txt"

if [ "$(python -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  part distributed 240 python benchmarks/distributed_speed.py --device cuda --processes 2 --width 1024 \
    --variant tf_efficientnetv2_s 2>&1 | tee "$out/distributed.txt"
fi
cat "$out/parts.txt"
