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


def test_paper_training_defaults():
    o = ACGAN.Options()
    assert (o.latent_dim, o.embed_dim, o.width, o.image_size) == (100, 50, 1024, 112)
    assert (o.optimizer, o.lr_g, o.lr_d, o.batch_size, o.iterations) == ("rmsprop", 1e-4, 1e-4, 32, 32000)


@pytest.mark.parametrize("size", [16, 28, 32, 56, 64])
def test_sizes_beyond_the_paper(size):
    G = Generator(2, size, 1, 16, 8, 4)
    assert G(torch.randn(3, 8), torch.tensor([0, 1, 1])).shape == (3, 1, size, size)


@pytest.mark.parametrize("bad", [{"image_size": 100}, {"lr_g": -1}, {"optimizer": "sgd"}, {"unknown": 1}])
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


def test_checkpoint_resumes_exactly(tiny_images, tmp_path):
    straight = ACGAN(image_size=16, width=8, iterations=6, batch_size=4)
    list(straight.fit(tiny_images, seed=3))

    first = ACGAN(image_size=16, width=8, iterations=3, batch_size=4)
    list(first.fit(tiny_images, seed=3))
    first.save(tmp_path / "g.pt")
    resumed = ACGAN.load(tmp_path / "g.pt")
    resumed.options = resumed.options.model_copy(update={"iterations": 6})
    list(resumed.fit(tiny_images, seed=3))
    for (k, x), y in zip(straight.G.state_dict().items(), resumed.G.state_dict().values()):
        assert torch.equal(x, y), k
    assert list(tmp_path.iterdir()) == [tmp_path / "g.pt"]  # no temporary file left behind


def test_wrong_image_shape_is_a_clear_error(tiny_images):
    with pytest.raises(ValueError, match=r"acgan expects images of shape \(1, 32, 32\)"):
        next(ACGAN(image_size=32, width=8).fit(tiny_images))


def test_build_by_name():
    gan = augkit.build("generator", "acgan", width=32, image_size=64)
    assert isinstance(gan, ACGAN) and gan.options.width == 32
