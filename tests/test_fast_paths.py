"""The speed levers change no result beyond tolerance: bf16 autocast, channels-last, the fast dropout."""

import copy

import pytest
import torch

from augkit.compute import accel
from augkit.extension.roles import LabeledImages
from augkit_plugins.acgan import ACGAN
from augkit_plugins.acgan.networks import FastDropout
from augkit_plugins.efficientnetv2 import EfficientNetV2

needs_bf16 = pytest.mark.skipif(not accel.bf16_supported(torch.device("cpu")),
                                reason="this CPU has no bf16 support: auto resolves to fp32 and there is no fast path")


def bright_dark(n_per_class: int = 64, size: int = 16) -> LabeledImages:
    """Class 0: dark images, class 1: bright ones, both with texture: conditioning is easy to check."""
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(2).repeat_interleave(n_per_class)
    base = torch.where(labels == 1, 0.5, -0.5)[:, None, None, None]
    images = (base + 0.25 * torch.randn(len(labels), 1, size, size, generator=g)).clamp(-1, 1)
    return LabeledImages(images, labels, ["dark", "bright"])


def train(precision: str, iterations: int = 150):
    gan = ACGAN(image_size=16, width=32, iterations=iterations, batch_size=16, log_every=10, precision=precision,
                optimizer="adam", lr_g=2e-4, lr_d=2e-4)
    rows = [r for r in gan.fit(bright_dark(), seed=0) if "d_loss" in r]
    return gan, rows


def test_fast_dropout_drops_p_keeps_the_mean_and_follows_the_seed():
    drop = FastDropout(0.25).train()
    x = torch.ones(8, 16, 32, 32)
    torch.manual_seed(0)
    y = drop(x)
    assert (y == 0).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert y.mean().item() == pytest.approx(1.0, abs=0.02)  # survivors are scaled by 1 / (1 - p)
    torch.manual_seed(0)
    assert torch.equal(drop(x), y)
    cl = drop(x.contiguous(memory_format=torch.channels_last))
    assert cl.shape == x.shape and (cl == 0).float().mean().item() == pytest.approx(0.25, abs=0.01)
    assert torch.equal(drop.eval()(x), x)


@needs_bf16
def test_bf16_losses_stay_near_fp32_and_samples_stay_class_conditional():
    fp32, rows32 = train("fp32")
    bf16, rows16 = train("bf16")
    assert fp32.precision == "fp32" and bf16.precision == "bf16"
    assert bf16.G.noise.weight.dtype == torch.float32  # mixed precision: the weights stay fp32
    # GAN trajectories are chaotic; their loss levels over the last third are not
    for key in ("d_loss", "g_loss"):
        late32 = sum(r[key] for r in rows32[-5:]) / 5
        late16 = sum(r[key] for r in rows16[-5:]) / 5
        assert late16 == pytest.approx(late32, rel=0.25, abs=0.15), (key, late32, late16)
    labels = torch.arange(2).repeat_interleave(32)
    for gan in (fp32, bf16):
        images = gan.sample(labels, seed=1)
        assert images.dtype == torch.float32 and images.is_contiguous()
        brightness = images.mean((1, 2, 3))
        recognised = (brightness > 0).long()
        assert (recognised == labels).float().mean() >= 0.9
    assert torch.equal(bf16.sample(labels, seed=1), bf16.sample(labels, seed=1))  # still deterministic


@needs_bf16
def test_auto_precision_is_what_was_measured_to_pay():
    assert ACGAN(image_size=16, width=16).precision == "bf16"
    assert EfficientNetV2(image_size=56).precision == "fp32"  # at 56 px fp32 channels-last was faster
    assert EfficientNetV2(image_size=112).precision == "bf16"
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="no CUDA GPU"):
            _ = ACGAN(device="cuda").device


@needs_bf16
def test_bf16_classifier_predicts_like_fp32_with_the_same_weights():
    data = bright_dark(16, 32)
    clf = EfficientNetV2(variant="test_efficientnet", epochs=2, batch_size=8, image_size=32, precision="fp32")
    list(clf.fit(data, data, seed=0))
    p32 = clf.predict_proba(data.images)
    clf.options = type(clf.options).model_validate({**clf.options.model_dump(), "precision": "bf16"})
    p16 = clf.predict_proba(data.images)
    assert p16.dtype == torch.float32
    assert (p16 - p32).abs().max() < 0.05
    assert clf.features(data.images).dtype == torch.float32


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
@pytest.mark.parametrize("kind", ["1x1", "1x1 bias", "depthwise", "depthwise bias", "depthwise 5x5", "3x3 dense"])
def test_small_map_convolutions_compute_what_the_convolution_computes(kind, size):
    from augkit_plugins.efficientnetv2.small_convs import SmallMapConv2d, use_small_map_convs

    c, bias = 12, "bias" in kind
    conv = {"1x1": torch.nn.Conv2d(c, 5, 1, bias=bias),
            "depthwise": torch.nn.Conv2d(c, c, 3, padding=1, groups=c, bias=bias),
            "depthwise 5x5": torch.nn.Conv2d(c, c, 5, padding=2, groups=c, bias=False),
            "3x3 dense": torch.nn.Conv2d(c, 4, 3, padding=1)}[kind.removesuffix(" bias")]
    fast = copy.deepcopy(conv)
    assert use_small_map_convs(fast) == 1 and isinstance(fast, SmallMapConv2d)
    x = torch.randn(3, c, size, size).contiguous(memory_format=torch.channels_last).requires_grad_()
    y, y_fast = conv(x), fast(x)
    torch.testing.assert_close(y_fast, y, rtol=1e-5, atol=1e-5)
    g = torch.randn_like(y)
    grads = torch.autograd.grad(y, [x, *conv.parameters()], g)
    grads_fast = torch.autograd.grad(y_fast, [x, *fast.parameters()], g)
    for a, b in zip(grads_fast, grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_the_classifier_with_small_map_convolutions_keeps_its_state_dict_and_copies_cleanly():
    from augkit_plugins.efficientnetv2.small_convs import SmallMapConv2d

    plain = EfficientNetV2(small_map_convs=False, drop_rate=0.0)._create(3).eval()
    fast = EfficientNetV2(drop_rate=0.0)._create(3).eval()
    assert sum(isinstance(m, SmallMapConv2d) for m in fast.modules()) > 20
    fast.load_state_dict(plain.state_dict())  # same tensors, same names: checkpoints load either way
    copied = copy.deepcopy(fast)  # early stopping and EMA copy models: a copy must compute with its own weights
    x = torch.randn(2, 1, 56, 56).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), rtol=1e-4, atol=1e-4)
        for p in copied.parameters():
            p.zero_()
        assert not torch.allclose(copied(x), fast(x))
