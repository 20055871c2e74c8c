"""Convolutions on tiny feature maps as plain tensor products, on the CPU.

At 56 px EfficientNetV2's last stages run on 4x4, 2x2 and 1x1 maps, where oneDNN's
convolution kernels (forward and, above all, backward) cost several times the arithmetic: a
1x1 convolution of a 16 x 1152 x 2 x 2 batch to 192 channels takes 4.1 ms forward and
backward on one thread, the same product as ``F.linear`` 1.3 ms; a 3x3 depthwise
convolution of 16 x 1152 x 2 x 2, 4.9 ms against 2.0 ms as the sum below. A whole training
step of ``tf_efficientnetv2_b0`` at 56 px is 1.3-1.4x faster with both (1.04-1.08x at 112
px; ``python benchmarks/classifier_speed.py``). The function is the convolution's; only the
rounding differs. Parameters and state dicts are untouched: the swap changes a module's
class, not its tensors, so checkpoints load either way.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

LINEAR_MAX_POSITIONS = 196  # 1x1 convolutions up to 14x14 maps (at 112 px, 28x28 ones were no faster)
DEPTHWISE_MAX_POSITIONS = 4  # depthwise up to 2x2 maps (at 4x4 oneDNN is already faster)

_taps: dict[tuple[int, int, int, int, int, int], Tensor] = {}


def _tap_index(h: int, w: int, kernel: tuple[int, int], padding: tuple[int, int]) -> Tensor:
    """[output position, input position] -> the kernel tap joining them, or the extra zero tap."""
    key = (h, w, *kernel, *padding)
    if key not in _taps:
        kh, kw = kernel
        index = torch.full((h * w, h * w), kh * kw, dtype=torch.long)
        for i in range(h):
            for j in range(w):
                for p in range(h):
                    for q in range(w):
                        di, dj = p - i + padding[0], q - j + padding[1]
                        if 0 <= di < kh and 0 <= dj < kw:
                            index[i * w + j, p * w + q] = di * kw + dj
        _taps[key] = index
    return _taps[key]


class SmallMapConv2d(nn.Conv2d):
    """``nn.Conv2d`` that, on a CPU and a tiny map, computes 1x1 and depthwise convolutions directly."""

    def forward(self, x: Tensor) -> Tensor:
        if x.device.type != "cpu" or self.stride != (1, 1) or self.dilation != (1, 1) or x.dim() != 4:
            return super().forward(x)
        b, c, h, w = x.shape
        if self.groups == 1 and self.kernel_size == (1, 1) and self.padding == (0, 0) and h * w <= LINEAR_MAX_POSITIONS:
            y = F.linear(x.permute(0, 2, 3, 1), self.weight.flatten(1), self.bias)
            return y.permute(0, 3, 1, 2)  # channels-last strides, as the convolution's output
        kh, kw = self.kernel_size
        if (self.groups == c == self.out_channels and h * w <= DEPTHWISE_MAX_POSITIONS
                and self.padding == ((kh - 1) // 2, (kw - 1) // 2) and kh % 2 and kw % 2):
            taps = torch.cat([self.weight.view(c, kh * kw), self.weight.new_zeros(c, 1)], 1)
            m = taps.t()[_tap_index(h, w, self.kernel_size, self.padding)]  # [out pos, in pos, c]
            y = (x.permute(0, 2, 3, 1).reshape(b, 1, h * w, c) * m).sum(2)
            if self.bias is not None:
                y = y + self.bias
            return y.view(b, h, w, c).permute(0, 3, 1, 2)
        return super().forward(x)


def use_small_map_convs(model: nn.Module) -> int:
    """Swap every plain zero-padded ``nn.Conv2d`` in ``model`` for :class:`SmallMapConv2d`; returns how many."""
    n = 0
    for module in model.modules():
        if type(module) is nn.Conv2d and module.padding_mode == "zeros" and isinstance(module.padding, tuple):
            module.__class__ = SmallMapConv2d
            n += 1
    return n
