"""augkit inside a MONAI pipeline: a MONAI DenseNet121 trained on real + augkit synthetic data.

    python examples/monai_pipeline.py          # 44 s on 2 CPU cores (AVX2, 2026-12-07)
    python examples/monai_pipeline.py --smoke  # 20 s: every step at a quarter of the iterations, one epoch; what
                                               # the test suite runs (its numbers mean nothing)

1. real data: chest-phantom images through augkit's paper preprocessing, split by patient;
2. a small AC-GAN trained on the real training split only;
3. MONAI dictionary transforms on real items, synthetic items drawn live from the generator
   (`augkit.pipeline.GeneratorDataset`), mixed at a synthetic:real ratio (`augkit.pipeline.mix`);
4. `monai.networks.nets.DenseNet121(spatial_dims=2)` trained with `monai.data.DataLoader`,
   scored on the real test split with augkit's metrics.
"""

from __future__ import annotations

import argparse

import numpy as np
import torch
from monai.data import DataLoader
from monai.networks.nets import DenseNet121
from monai.transforms import Compose, RandAdjustContrastd, RandRotated

import augkit
from augkit.outputs.metrics import confusion_matrix, from_confusion
from augkit.pipeline import GeneratorDataset, TensorDataset, mix
from augkit.stages.splits import split_by_patient

parser = argparse.ArgumentParser(description="augkit inside a MONAI pipeline (DenseNet121, real + synthetic)")
parser.add_argument("--smoke", action="store_true", help="every step at a quarter of the AC-GAN's iterations and "
                    "one DenseNet epoch: checks that the pipeline runs, its numbers mean nothing")
smoke = parser.parse_args().smoke
SIZE, SEED = 32, 0
ITERATIONS, EPOCHS = (100, 1) if smoke else (400, 3)
torch.manual_seed(SEED)

# 1. real data, preprocessed and split by patient
source = augkit.build("dataset", "chest-phantom", counts={"normal": 80, "bacteria": 80, "virus": 24})
prep = augkit.build("preprocessor", "paper", image_size=SIZE)
samples = list(source.samples())
data = augkit.LabeledImages(
    torch.from_numpy(np.stack([prep(s.load()) for s in samples])),
    torch.tensor([s.label for s in samples]),
    source.classes,
    [s.group for s in samples],
)
split = split_by_patient(data.labels.tolist(), data.groups, val=0.15, test=0.25, seed=SEED)
train, test = data.subset(split.train), data.subset(split.test)
print("real training images per class:", dict(zip(train.classes, train.counts())))

# 2. a small generator on the training split only
gan = augkit.build("generator", "acgan", image_size=SIZE, width=64, iterations=ITERATIONS, batch_size=32)
for row in gan.fit(train, seed=SEED):
    if row["step"] % 100 == 0:
        print(f"AC-GAN step {row['step']}: d_loss {row['d_loss']:.2f} g_loss {row['g_loss']:.2f}")

# 3. MONAI transforms on every item; synthetic items live from the generator; mixed 1:1
augment = Compose([
    RandRotated(keys="image", range_x=0.15, prob=0.5, padding_mode="zeros"),
    RandAdjustContrastd(keys="image", prob=0.3, gamma=(0.8, 1.2)),
])
real = TensorDataset(train, transform=augment)
synthetic = GeneratorDataset(gan, [len(train)] * len(train.classes), seed=SEED, transform=augment)
train_set = mix(real, synthetic, ratio=1.0, seed=SEED)
loader = DataLoader(train_set, batch_size=32, shuffle=True, num_workers=0,
                    generator=torch.Generator().manual_seed(SEED))

# 4. a MONAI network, trained and scored on real test images
net = DenseNet121(spatial_dims=2, in_channels=1, out_channels=len(train.classes))
opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
for epoch in range(1, EPOCHS + 1):
    net.train()
    total = 0.0
    for batch in loader:
        loss = torch.nn.functional.cross_entropy(net(batch["image"]), batch["label"])
        opt.zero_grad()
        loss.backward()
        opt.step()
        total += loss.item() * len(batch["label"])
    print(f"DenseNet121 epoch {epoch}: train loss {total / len(train_set):.3f} on {len(train_set)} items")

net.eval()
with torch.inference_mode():
    pred = torch.cat([net(b["image"]).argmax(1) for b in DataLoader(TensorDataset(test), batch_size=64)])
m = from_confusion(confusion_matrix(test.labels.numpy(), pred.numpy(), len(test.classes)), test.classes)
print(f"real test split ({len(test)} images): accuracy {100 * m['accuracy']:.1f} %, macro F1 {m['f1']:.3f}")
