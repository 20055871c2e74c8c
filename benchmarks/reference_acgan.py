"""The baseline of the speed benchmarks: a plain, eager, fp32 PyTorch AC-GAN of the paper's shape.

Written the way a paper's code is usually written (nothing from augkit): the paper's
section 3.3 architecture (z 100 -> dense 1024x7x7, label -> embedding 50 -> dense 7x7, four
transposed convolutions 7 -> 112, batch norm + ReLU, tanh; a strided-convolution
discriminator with batch norm, LeakyReLU and dropout, two heads) and section 3.4's training
step (RMSProp 1e-4, batch 32; D on real and fake, then G). Default dtype, default memory
format, default optimizer implementation, no compilation.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class RefGenerator(nn.Module):
    def __init__(self, n_classes=3, channels=3, width=1024, latent=100, embed=50):
        super().__init__()
        self.width = width
        self.fc = nn.Linear(latent, width * 7 * 7)
        self.emb = nn.Embedding(n_classes, embed)
        self.emb_fc = nn.Linear(embed, 7 * 7)
        self.net = nn.Sequential(
            nn.ConvTranspose2d(width + 1, width // 2, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 2), nn.ReLU(),
            nn.ConvTranspose2d(width // 2, width // 4, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 4), nn.ReLU(),
            nn.ConvTranspose2d(width // 4, width // 8, 4, 2, 1, bias=False), nn.BatchNorm2d(width // 8), nn.ReLU(),
            nn.ConvTranspose2d(width // 8, channels, 4, 2, 1), nn.Tanh(),
        )

    def forward(self, z, y):
        x = self.fc(z).view(-1, self.width, 7, 7)
        m = self.emb_fc(self.emb(y)).view(-1, 1, 7, 7)
        return self.net(torch.cat([x, m], 1))


class RefDiscriminator(nn.Module):
    def __init__(self, n_classes=3, channels=3, width=1024, dropout=0.25):
        super().__init__()
        w = [width // 8, width // 4, width // 2, width]
        self.net = nn.Sequential(
            nn.Conv2d(channels, w[0], 4, 2, 1), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            nn.Conv2d(w[0], w[1], 4, 2, 1, bias=False), nn.BatchNorm2d(w[1]), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            nn.Conv2d(w[1], w[2], 4, 2, 1, bias=False), nn.BatchNorm2d(w[2]), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            nn.Conv2d(w[2], w[3], 4, 2, 1, bias=False), nn.BatchNorm2d(w[3]), nn.LeakyReLU(0.2), nn.Dropout(dropout),
            nn.Flatten(),
        )
        self.adv = nn.Linear(width * 7 * 7, 1)
        self.aux = nn.Linear(width * 7 * 7, n_classes)

    def forward(self, x):
        h = self.net(x)
        return self.adv(h).squeeze(1), self.aux(h)


class ReferenceACGAN:
    """One training iteration = D on a real and a fake batch, then G; as in most AC-GAN code."""

    def __init__(self, n_classes=3, channels=3, width=1024, image_size=112, batch_size=32, seed=0):
        assert image_size == 112, "the reference is the paper's 112-px network"
        torch.manual_seed(seed)
        self.G, self.D = RefGenerator(n_classes, channels, width), RefDiscriminator(n_classes, channels, width)
        self.opt_g = torch.optim.RMSprop(self.G.parameters(), lr=1e-4)
        self.opt_d = torch.optim.RMSprop(self.D.parameters(), lr=1e-4)
        self.n_classes, self.batch_size = n_classes, batch_size

    def step(self, real, y_real):
        b = self.batch_size
        z = torch.randn(b, 100)
        y_fake = torch.randint(self.n_classes, (b,))
        fake = self.G(z, y_fake)
        adv_r, aux_r = self.D(real)
        adv_f, aux_f = self.D(fake.detach())
        d_loss = (F.binary_cross_entropy_with_logits(adv_r, torch.ones(b))
                  + F.binary_cross_entropy_with_logits(adv_f, torch.zeros(b))
                  + F.cross_entropy(aux_r, y_real) + F.cross_entropy(aux_f, y_fake))
        self.opt_d.zero_grad()
        d_loss.backward()
        self.opt_d.step()
        adv_g, aux_g = self.D(fake)
        g_loss = F.binary_cross_entropy_with_logits(adv_g, torch.ones(b)) + F.cross_entropy(aux_g, y_fake)
        self.opt_g.zero_grad()
        g_loss.backward()
        self.opt_g.step()
        return d_loss.item(), g_loss.item()

    @torch.no_grad()
    def sample(self, labels):
        self.G.eval()
        out = self.G(torch.randn(len(labels), 100), labels)
        self.G.train()
        return out
