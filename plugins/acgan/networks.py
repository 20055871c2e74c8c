"""The AC-GAN networks of the paper's section 3.3, generalised to any 7*2^k or 2^k size."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def base_size(image_size: int) -> int:
    """The side of the first feature map: 7 for 7*2^k sizes (the paper's 112), 4 for 2^k."""
    for base in (7, 4):
        ratio = image_size / base
        if image_size % base == 0 and ratio >= 2 and ratio == 2 ** round(math.log2(ratio)):
            return base
    raise ValueError(f"image_size {image_size} is neither 7*2^k nor 2^k (k >= 1): try 112, 56, 64 or 128")


def _widths(width: int, n_up: int) -> list[int]:
    # widest at the 7x7 (or 4x4) end, halving per stage: the paper's 1024 -> 512 -> 256 -> 128
    return [max(width // 2**i, 8) for i in range(n_up)]


class Generator(nn.Module):
    """z (latent_dim) + label -> image (channels, size, size) in [-1, 1]."""

    def __init__(self, n_classes: int, image_size: int, channels: int, width: int, latent_dim: int, embed_dim: int,
                 spectral_norm: bool = False):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        self.base = base_size(image_size)
        n_up = int(math.log2(image_size // self.base))
        widths = _widths(width, n_up)
        self.width = width
        self.noise = sn(nn.Linear(latent_dim, width * self.base**2))  # the paper's 1024x7x7 dense
        self.label = nn.Sequential(nn.Embedding(n_classes, embed_dim), sn(nn.Linear(embed_dim, self.base**2)))
        layers: list[nn.Module] = []
        c_in = width + 1  # the label contributes one extra map
        for c_out in widths[1:]:  # batch norm stays beside spectral norm in G, as in SAGAN and BigGAN
            layers += [sn(nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)), nn.BatchNorm2d(c_out), nn.ReLU(True)]
            c_in = c_out
        layers += [sn(nn.ConvTranspose2d(c_in, channels, 4, 2, 1)), nn.Tanh()]
        self.up = nn.Sequential(*layers)

    def forward(self, z: Tensor, y: Tensor) -> Tensor:  # (N, latent), (N,) -> (N, C, S, S)
        b = self.base
        x = self.noise(z).view(-1, self.width, b, b)
        m = self.label(y).view(-1, 1, b, b)
        return self.up(torch.cat([x, m], 1))


class FastDropout(nn.Module):
    """Dropout whose mask costs one 64-bit random draw per four elements instead of one per element.

    Measured at the paper's shape in bf16 (same process, interleaved): 1.46 s per training
    iteration against 1.75 s with ``nn.Dropout`` (and 1.78 s with byte masks and
    ``masked_fill``). Each element is kept when 16 random bits reach a threshold: p is rounded
    to a multiple of 1/65536. The stream is torch's default generator, as with ``nn.Dropout``,
    so a seed (and a checkpoint's RNG state) fixes the masks.
    """

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.threshold = round(p * 65536) - 32768  # int16 bits below it are dropped
        self.scale = 1.0 / (1.0 - p)

    def forward(self, x: Tensor) -> Tensor:
        if not self.training or self.p == 0:
            return x
        n = x.numel()
        # the full int64 range: a bare random_() leaves the top bit 0, so every 4th int16 would be >= 0
        bits = torch.empty((n + 3) // 4, dtype=torch.int64, device=x.device).random_(-(2**63), 2**63 - 1)
        bits = bits.view(torch.int16)[:n]
        keep = bits >= self.threshold
        if x.dim() == 4 and not x.is_contiguous() and x.is_contiguous(memory_format=torch.channels_last):
            n_, c, h, w = x.shape  # lay the mask out as x is: elementwise ops stay on the fast path
            keep = keep.view(n_, h, w, c).permute(0, 3, 1, 2)
        else:
            keep = keep.view(x.shape)
        return x * keep * self.scale

    def extra_repr(self) -> str:
        return f"p={self.p}"


class Discriminator(nn.Module):
    """image -> (real/fake logit (N,), class logits (N, K)); strided convs, BN, LeakyReLU, dropout."""

    def __init__(
        self, n_classes: int, image_size: int, channels: int, width: int, dropout: float, spectral_norm: bool = False,
        class_embedding: int | None = None,
    ):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm if spectral_norm else (lambda m: m)
        base = base_size(image_size)
        n_up = int(math.log2(image_size // base))
        widths = _widths(width, n_up)[::-1]  # mirror of G: narrow at full resolution
        layers: list[nn.Module] = []
        c_in = channels
        for i, c_out in enumerate(widths):
            layers.append(sn(nn.Conv2d(c_in, c_out, 4, 2, 1, bias=i == 0 or spectral_norm)))
            # no batch norm on the input layer (DCGAN practice); spectral norm replaces it
            if i > 0 and not spectral_norm:
                layers.append(nn.BatchNorm2d(c_out))
            layers += [nn.LeakyReLU(0.2, True), FastDropout(dropout)]
            c_in = c_out
        self.features = nn.Sequential(*layers, nn.Flatten())
        n_features = c_in * base * base
        self.real_fake = sn(nn.Linear(n_features, 1))  # sigmoid lives in the loss
        # class logits (softmax lives in the loss), or a unit embedding beside unit class proxies (D2D-CE)
        self.classify = nn.Linear(n_features, class_embedding or n_classes)
        self.proxies = None if class_embedding is None else nn.Embedding(n_classes, class_embedding)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor]:
        h = self.features(x)
        cls = self.classify(h)
        return self.real_fake(h).squeeze(1), cls if self.proxies is None else F.normalize(cls.float(), dim=1)

    def unit_proxies(self) -> Tensor | None:
        return None if self.proxies is None else F.normalize(self.proxies.weight.float(), dim=1)

    def class_logits(self, cls: Tensor) -> Tensor:
        """Class scores of ``forward``'s second output: the logits, or cosines to the proxies."""
        return cls if self.proxies is None else cls @ self.unit_proxies().T


def init_weights(module: nn.Module) -> None:
    """DCGAN initialisation: N(0, 0.02) convolutions, N(1, 0.02) batch-norm scales."""
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        weight = module.parametrizations.weight.original if hasattr(module, "parametrizations") else module.weight
        nn.init.normal_(weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
