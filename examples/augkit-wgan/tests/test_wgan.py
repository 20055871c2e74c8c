import pytest
import torch
from pydantic import ValidationError

import augkit
import augkit_wgan
from augkit.testing import check_generator
from augkit_wgan import WGANGP
from augkit_wgan.model import Critic, Generator, gradient_penalty

# a narrow network on 16x16 images: real code, milliseconds
TINY = dict(image_size=16, width=8, latent_dim=8, iterations=3, batch_size=8, n_critic=2, log_every=2)


def tiny_images(channels=1, size=16, n=12):
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(n) % 3
    images = (labels.float().view(-1, 1, 1, 1) - 1) * 0.5 + 0.2 * torch.randn(n, channels, size, size, generator=g)
    return augkit.LabeledImages(images.clamp(-1, 1), labels, ["a", "b", "c"])


def test_contract():
    check_generator(WGANGP, **TINY)


def test_contract_rgb():
    check_generator(WGANGP, **{**TINY, "image_size": 8, "channels": 3, "iterations": 2})


def test_registers_wgan_gp():
    registered = []
    augkit_wgan.register_generators(lambda name, cls: registered.append((name, cls)))
    assert registered == [("wgan-gp", WGANGP)]


@pytest.mark.parametrize("size", [8, 32, 64])
def test_shapes_at_every_power_of_two(size):
    G, D = Generator(3, size, 3, 16, 8), Critic(3, size, 3, 16)
    y = torch.tensor([0, 2])
    x = G(torch.randn(2, 8), y)
    assert x.shape == (2, 3, size, size) and D(x, y).shape == (2,)
    assert not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in D.modules())


@pytest.mark.parametrize("size", [4, 12, 112])
def test_image_size_must_be_a_power_of_two(size):
    with pytest.raises(ValidationError, match="power of two >= 8"):
        WGANGP.Options(image_size=size)


def test_gradient_penalty_of_a_linear_critic():
    # D(x, y) = <w, x>: its gradient is w everywhere, so the penalty is (||w|| - 1)^2 exactly
    w = torch.randn(1, 2, 4, 4, requires_grad=True)

    def critic(x, y):
        return (x * w).flatten(1).sum(1)

    real, fake = torch.randn(5, 2, 4, 4), torch.randn(5, 2, 4, 4)
    eps, y = torch.rand(5, 1, 1, 1), torch.zeros(5, dtype=torch.long)
    with torch.no_grad():
        w /= w.norm()
    assert gradient_penalty(critic, real, fake, y, eps).item() == pytest.approx(0, abs=1e-10)
    with torch.no_grad():
        w *= 3
    gp = gradient_penalty(critic, real, fake, y, eps)
    assert gp.item() == pytest.approx(4, rel=1e-5)
    gp.backward()  # the penalty trains the critic: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    torch.testing.assert_close(w.grad, 2 * 2 * w.detach() / 3)


def test_log_rows_and_losses():
    gen = WGANGP(**TINY)
    rows = list(gen.fit(tiny_images(), seed=0))
    assert [r["step"] for r in rows] == [1, 2, 3] and gen.classes == ["a", "b", "c"]
    assert gen.steps_done == gen.total_steps == 3
    assert set(rows[0]) == {"step"}
    for row in rows[1:]:  # a log step (2) and the last step (3)
        assert set(row) == {"step", "d_loss", "g_loss", "gp"}
        assert all(isinstance(v, float) and v == v for k, v in row.items() if k != "step")
        assert row["gp"] >= 0


def test_resuming_a_checkpoint_continues_training_exactly(tmp_path):
    train, labels = tiny_images(), torch.tensor([0, 1, 2])
    straight = WGANGP(**{**TINY, "iterations": 4})
    rows = list(straight.fit(train, seed=3))

    first = WGANGP(**{**TINY, "iterations": 4})
    for row in first.fit(train, seed=3):  # the runner's pattern: save between rows, stop, resume
        if row["step"] == 2:
            first.save(tmp_path / "last.pt")
            break
    resumed = WGANGP.load(tmp_path / "last.pt")
    assert resumed.steps_done == 2 and resumed.classes == ["a", "b", "c"]
    assert list(resumed.fit(train, seed=3)) == rows[2:]
    assert torch.equal(resumed.sample(labels, seed=0), straight.sample(labels, seed=0))


def test_errors_are_readable(tmp_path):
    gen = WGANGP(**TINY)
    with pytest.raises(RuntimeError, match="before sampling"):
        gen.sample(torch.tensor([0]), seed=0)
    with pytest.raises(ValueError, match=r"expects images of shape \(1, 16, 16\)"):
        next(gen.fit(tiny_images(size=8), seed=0))
    torch.save({"format": "something else"}, tmp_path / "x.pt")
    with pytest.raises(ValueError, match="not an augkit-wgan checkpoint"):
        WGANGP.load(tmp_path / "x.pt")
