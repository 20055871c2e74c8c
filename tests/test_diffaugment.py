import pytest
import torch

from augkit_plugins.acgan.diffaugment import AUGMENTATIONS, diff_augment, translation


@pytest.mark.parametrize("name", sorted(AUGMENTATIONS))
def test_each_policy_is_differentiable_seeded_and_shape_preserving(name):
    x = (torch.rand(4, 1, 16, 16) * 2 - 1).requires_grad_()
    a = diff_augment(x, [name], torch.Generator().manual_seed(0))
    b = diff_augment(x, [name], torch.Generator().manual_seed(0))
    assert a.shape == x.shape and torch.equal(a, b)
    a.sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def test_translation_shifts_whole_pixels_and_fills_with_background():
    x = torch.arange(16.0).view(1, 1, 4, 4) / 16
    for seed in range(20):
        out = translation(x, torch.Generator().manual_seed(seed), ratio=0.25)
        inside = out[out != -1]
        assert set(inside.tolist()) <= set(x.flatten().tolist())  # values moved, never interpolated
