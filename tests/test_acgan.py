import pytest
import torch
from pydantic import ValidationError

import augkit
from augkit_plugins.acgan import ACGAN
from augkit_plugins.acgan.networks import Discriminator, Generator


def tiny(**kw):
    return ACGAN(image_size=16, width=8, iterations=4, batch_size=4, log_every=2, **kw)


def test_paper_shapes_at_112():
    G = Generator(n_classes=3, image_size=112, channels=3, width=1024, latent_dim=100, embed_dim=50)
    assert G.noise.out_features == 1024 * 7 * 7  # noise -> dense 1024x7x7
    assert G.label[0].embedding_dim == 50 and G.label[1].out_features == 7 * 7  # label -> emb(50) -> 7x7
    convs = [m for m in G.up if isinstance(m, torch.nn.ConvTranspose2d)]
    assert [c.in_channels for c in convs] == [1025, 512, 256, 128] and convs[-1].out_channels == 3
    assert sum(isinstance(m, torch.nn.BatchNorm2d) for m in G.up) == 3  # after the first three only
    assert isinstance(G.up[-1], torch.nn.Tanh)
    sizes, x = [], torch.cat([G.noise(torch.randn(2, 100)).view(2, 1024, 7, 7), G.label(torch.tensor([0, 2])).view(2, 1, 7, 7)], 1)
    for m in G.up:
        x = m(x)
        if isinstance(m, torch.nn.ConvTranspose2d):
            sizes.append(x.shape[-1])
    assert sizes == [14, 28, 56, 112] and x.shape == (2, 3, 112, 112)
    rf, cls = Discriminator(3, 112, 3, 1024, 0.25)(x)
    assert rf.shape == (2,) and cls.shape == (2, 3)


def test_paper_preset_is_the_paper_exactly():
    o = ACGAN.Options(preset="paper")
    assert (o.latent_dim, o.embed_dim, o.width, o.image_size, o.channels) == (100, 50, 1024, 112, 3)
    assert (o.optimizer, o.lr_g, o.lr_d, o.batch_size, o.iterations) == ("rmsprop", 1e-4, 1e-4, 32, 32000)
    assert (o.diffaugment, o.label_smoothing, o.spectral_norm, o.loss, o.ema, o.balanced_batches) == (
        [], 0.0, False, "bce", None, False
    )
    assert (o.spectral_norm_g, o.fake_class_loss, o.class_loss) == (False, True, "ce")  # the AC-GAN of the paper
    gan = ACGAN(o)
    gan._build(3)
    assert isinstance(gan.opt_g, torch.optim.RMSprop) and gan.opt_g.defaults["lr"] == 1e-4
    # Keras' RMSprop, the paper's framework: rho 0.9, epsilon 1e-7 (torch's own defaults are 0.99 and 1e-8)
    assert (gan.opt_g.defaults["alpha"], gan.opt_g.defaults["eps"]) == (0.9, 1e-7)
    assert gan.G.noise.out_features == 1024 * 7 * 7 and gan.G_ema is None


def test_paper_preset_refuses_contradicting_options():
    with pytest.raises(ValidationError, match="preset paper fixes channels to 3 \\(got 1\\)"):
        ACGAN.Options(preset="paper", channels=1)


def test_grayscale_by_default_outside_the_preset():
    assert ACGAN.Options().channels == 1


@pytest.mark.parametrize("size", [16, 28, 32, 56, 64])
def test_sizes_beyond_the_paper(size):
    G = Generator(2, size, 1, 16, 8, 4)
    assert G(torch.randn(3, 8), torch.tensor([0, 1, 1])).shape == (3, 1, size, size)


@pytest.mark.parametrize(
    "bad",
    [{"image_size": 100}, {"lr_g": -1}, {"optimizer": "sgd"}, {"unknown": 1}, {"loss": "wgan"},
     {"diffaugment": ["hue"]}, {"loss": "hinge", "label_smoothing": 0.1}],
)
def test_bad_options_fail_at_validation(bad):
    with pytest.raises(ValidationError):
        ACGAN.Options(**bad)


def test_training_steps_are_finite_and_sampling_is_seeded(tiny_images):
    gan = tiny()
    rows = list(gan.fit(tiny_images, seed=0))
    assert [r["step"] for r in rows] == [1, 2, 3, 4]
    logged = [r for r in rows if "d_loss" in r]
    assert len(logged) == 2 and all(torch.isfinite(torch.tensor(r["d_loss"])) for r in logged)
    labels = torch.tensor([0, 1, 2, 2])
    a, b = gan.sample(labels, seed=5), gan.sample(labels, seed=5)
    assert a.shape == (4, 1, 16, 16) and torch.equal(a, b)
    assert a.min() >= -1 and a.max() <= 1
    assert not torch.equal(a, gan.sample(labels, seed=6))


def test_same_seed_same_weights(tiny_images):
    a, b = tiny(), tiny()
    list(a.fit(tiny_images, seed=1))
    list(b.fit(tiny_images, seed=1))
    assert all(torch.equal(x, y) for x, y in zip(a.G.state_dict().values(), b.G.state_dict().values()))


@pytest.mark.parametrize(
    "tricks",
    [{}, {"spectral_norm": True, "loss": "hinge", "label_smoothing": 0.0}, {"optimizer": "adam", "ema": None},
     {"class_loss": "d2d-ce", "fake_class_loss": False, "spectral_norm_g": True, "mode_seeking": 1.0}],
)
def test_n_plus_resume_n_equals_2n_straight(tiny_images, tmp_path, tricks):
    straight = ACGAN(image_size=16, width=8, iterations=6, batch_size=4, **tricks)
    list(straight.fit(tiny_images, seed=3))

    first = ACGAN(image_size=16, width=8, iterations=3, batch_size=4, **tricks)
    list(first.fit(tiny_images, seed=3))
    first.save(tmp_path / "g.pt")
    torch.manual_seed(999)  # whatever happens in between must not matter
    resumed = ACGAN.load(tmp_path / "g.pt", iterations=6)
    assert (resumed.steps_done, resumed.total_steps, resumed.classes) == (3, 6, ["a", "b", "c"])
    assert [r["step"] for r in resumed.fit(tiny_images, seed=3)] == [4, 5, 6]
    assert resumed.steps_done == 6
    for net in ("G", "D", "G_ema"):
        a, b = getattr(straight, net), getattr(resumed, net)
        if a is None:
            continue
        for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), (net, k)
    assert list(tmp_path.iterdir()) == [tmp_path / "g.pt"]  # no temporary file left behind


def test_the_moving_average_samples_with_batch_norm_statistics_of_its_own(tiny_images):
    labels = torch.arange(3).repeat(4)
    own = tiny()
    list(own.fit(tiny_images, seed=1))
    before = own.sample(labels, seed=1)
    norms = [k for k in own.G.state_dict() if "running" in k]
    ema, live = own.G_ema.state_dict(), own.G.state_dict()
    assert norms and all(not torch.equal(ema[k], live[k]) for k in norms)  # recomputed for the average's weights
    with torch.no_grad():
        for m in own.G.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.add_(5.0)
    assert torch.equal(own.sample(labels, seed=1), before)  # the training G's statistics play no part
    borrowed = tiny(ema_statistics="live")
    list(borrowed.fit(tiny_images, seed=1))
    borrowed.sample(labels, seed=1)
    ema, live = borrowed.G_ema.state_dict(), borrowed.G.state_dict()
    assert all(torch.equal(ema[k], live[k]) for k in norms)


def test_d2d_ce_is_least_when_every_image_sits_on_its_class_proxy():
    from augkit_plugins.acgan.losses import d2d_ce

    proxies = torch.eye(3, 8)  # orthogonal unit proxies
    labels = torch.tensor([0, 0, 1, 2, 2, 2])
    on_proxy = proxies[labels]
    negatives = (labels[:, None] != labels[None, :]).sum(1).float()
    # attraction 0, every repulsion at its floor: log(1 + number of other-class images)
    assert d2d_ce(on_proxy, proxies, labels) == pytest.approx(torch.log1p(negatives).mean().item())
    g = torch.Generator().manual_seed(0)
    for _ in range(5):
        moved = torch.nn.functional.normalize(on_proxy + 0.3 * torch.randn(on_proxy.shape, generator=g), dim=1)
        assert d2d_ce(moved, proxies, labels) > d2d_ce(on_proxy, proxies, labels)


def test_without_the_fake_class_loss_d_does_not_learn_classes_from_fakes():
    from augkit_plugins.acgan.losses import discriminator_loss

    rf, cls_fake = torch.zeros(4, requires_grad=True), torch.randn(4, 3, requires_grad=True)
    y = torch.tensor([0, 1, 2, 0])
    real = (torch.zeros(4), torch.randn(4, 3))
    discriminator_loss(real, (rf, cls_fake), y, y, fake_class=False).backward()
    assert cls_fake.grad is None or not cls_fake.grad.any()
    discriminator_loss(real, (rf, cls_fake), y, y, fake_class=True).backward()
    assert cls_fake.grad.abs().sum() > 0


def test_spectral_norm_on_g_and_d2d_ce_heads():
    gan = tiny(spectral_norm_g=True, class_loss="d2d-ce")
    gan._build(3)
    assert all(hasattr(m, "parametrizations") for m in gan.G.modules()
               if isinstance(m, (torch.nn.ConvTranspose2d, torch.nn.Linear)))
    rf, embed = gan.D(torch.randn(2, 1, 16, 16))
    assert torch.allclose(embed.norm(dim=1), torch.ones(2)) and gan.D.class_logits(embed).shape == (2, 3)


def test_telemetry_rows(tiny_images):
    rows = [r for r in tiny().fit(tiny_images, seed=0) if "d_loss" in r]
    assert set(rows[0]) == {"step", "d_loss", "g_loss", "d_real_acc", "d_fake_acc", "aux_acc_real", "aux_acc_fake",
                            "sec_per_iter"}


def test_balanced_batches_draw_classes_equally():
    images = torch.zeros(100, 1, 16, 16)
    labels = torch.tensor([0] * 90 + [1] * 10)
    gan = ACGAN(image_size=16, width=8, iterations=1, batch_size=2000, diffaugment=[])
    seen = []
    real_multinomial = torch.multinomial

    def spy(weights, n, **kw):
        idx = real_multinomial(weights, n, **kw)
        seen.append(labels[idx])
        return idx

    torch.multinomial = spy
    try:
        list(gan.fit(augkit.LabeledImages(images, labels, ["a", "b"]), seed=0))
    finally:
        torch.multinomial = real_multinomial
    assert abs(seen[0].float().mean().item() - 0.5) < 0.05


def test_wrong_image_shape_is_a_clear_error(tiny_images):
    with pytest.raises(ValueError, match=r"acgan expects images of shape \(1, 32, 32\)"):
        next(ACGAN(image_size=32, width=8).fit(tiny_images))


def test_the_generator_role_members(tiny_images):
    gan = tiny(device="cpu", precision="fp32")
    assert (gan.classes, gan.steps_done, gan.total_steps) == ([], 0, 4)  # classes: known after fit or load
    assert (gan.device, gan.precision) == (torch.device("cpu"), "fp32")
    list(gan.fit(tiny_images, seed=0))
    assert (gan.classes, gan.steps_done) == (["a", "b", "c"], 4)
    gan.classes.append("d")  # a copy: the generator's own list is left alone
    assert gan.classes == ["a", "b", "c"]


def test_build_by_name():
    gan = augkit.build("generator", "acgan", width=32, image_size=64)
    assert isinstance(gan, ACGAN) and gan.options.width == 32
