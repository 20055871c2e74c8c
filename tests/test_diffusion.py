import pytest
import torch
from pydantic import ValidationError

import augkit
from augkit.compute import accel
from augkit.testing import check_distributed, check_generator
from augkit_plugins.diffusion import Diffusion

# a two-level UNet at 16 px with attention at 8 px: the plugin's every part, in milliseconds
TINY = dict(image_size=16, widths=[16, 16], attention=[False, True], head_channels=16, norm_groups=8,
            batch_size=4, sampling_steps=3, log_every=2, precision="fp32")


@pytest.mark.parametrize("objective", ["rflow", "ddpm"])
def test_the_contract(objective):
    check_generator(Diffusion, **TINY, iterations=3, objective=objective)


def test_two_processes_train_one_model():
    check_distributed(Diffusion, **TINY, iterations=3)


@pytest.mark.parametrize("options", [{}, {"objective": "ddpm", "ema": None, "flip": True, "grad_clip": None}])
def test_n_plus_resume_n_equals_2n_straight(tiny_images, tmp_path, options):
    straight = Diffusion(**TINY, iterations=6, **options)
    list(straight.fit(tiny_images, seed=3))

    first = Diffusion(**TINY, iterations=3, **options)
    list(first.fit(tiny_images, seed=3))
    first.save(tmp_path / "g.pt")
    torch.manual_seed(999)  # whatever happens in between must not matter
    resumed = Diffusion.load(tmp_path / "g.pt", iterations=6)
    assert (resumed.steps_done, resumed.total_steps, resumed.classes) == (3, 6, ["a", "b", "c"])
    assert [r["step"] for r in resumed.fit(tiny_images, seed=3)] == [4, 5, 6]
    for net in ("net", "ema_net"):
        a, b = getattr(straight, net), getattr(resumed, net)
        if a is None:
            continue
        for (k, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), (net, k)
    labels = torch.tensor([0, 1, 2])
    assert torch.equal(straight.sample(labels, seed=5), resumed.sample(labels, seed=5))


# rflow separates the classes by ~0.7 after 100 iterations (two seeds); ddpm by only ~0.15 after 150
@pytest.mark.parametrize(("objective", "iterations"), [("rflow", 100), ("ddpm", 300)])
def test_the_class_it_is_told_is_the_class_it_draws(objective, iterations):
    # classes differ only in brightness (-0.6, 0, +0.6): a model that ignored or mixed up its labels
    # would draw one brightness for all
    g = torch.Generator().manual_seed(0)
    labels = torch.arange(3).repeat(16)
    images = (torch.tensor([-0.6, 0.0, 0.6])[labels].view(-1, 1, 1, 1)
              + 0.05 * torch.randn(len(labels), 1, 16, 16, generator=g)).clamp(-1, 1)
    train = augkit.LabeledImages(images, labels, ["dark", "grey", "bright"], [f"p{i}" for i in range(len(labels))])
    model = Diffusion(**{**TINY, "batch_size": 16, "sampling_steps": 10}, iterations=iterations, lr=2e-3, warmup=20,
                      ema=0.9, objective=objective)
    list(model.fit(train, seed=0))
    means = model.sample(torch.arange(3).repeat_interleave(8), seed=1).view(3, -1).mean(1)
    assert means[1] - means[0] > 0.1 and means[2] - means[1] > 0.1, means  # rflow: -0.6 / 0 / +0.6 nearly


def test_guidance_one_is_the_conditional_model_alone(tiny_images):
    model = Diffusion(**TINY, iterations=2, guidance=1.0, sampler="euler")  # one pass per step
    list(model.fit(tiny_images, seed=0))
    calls = []
    model.ema_net.register_forward_hook(lambda m, args, kwargs, out: calls.append(len(kwargs["class_labels"])),
                                        with_kwargs=True)
    model.sample(torch.tensor([0, 1]), seed=0)
    assert calls == [2] * TINY["sampling_steps"]  # one pass of the two images per step, no null-class pass
    calls.clear()
    model.options = model.Options(**{**model.options.model_dump(), "guidance": 3.0})
    model.sample(torch.tensor([0, 1]), seed=0)
    assert calls == [4] * TINY["sampling_steps"]


def test_guidance_applies_only_inside_its_interval(tiny_images):
    """TINY's 3 rflow steps sit at noise levels 1, 2/3 and 1/3: guidance on [0, 0.5] guides the last alone,
    the first two are the conditional model's alone (one pass of the two images, no null-class pass)."""
    model = Diffusion(**{**TINY, "sampling_steps": 3}, iterations=2, guidance=3.0, sampler="euler")
    list(model.fit(tiny_images, seed=0))
    calls = []
    model.ema_net.register_forward_hook(lambda m, args, kwargs, out: calls.append(len(kwargs["class_labels"])),
                                        with_kwargs=True)
    model.sample(torch.tensor([0, 1]), seed=0)
    assert calls == [4, 4, 4]
    calls.clear()
    model.options = model.Options(**{**model.options.model_dump(), "guidance_interval": (0.0, 0.5)})
    model.sample(torch.tensor([0, 1]), seed=0)
    assert calls == [2, 2, 4]
    model.options = model.Options(**{**model.options.model_dump(), "guidance_interval": (0.9, 1.0)})
    calls.clear()
    model.sample(torch.tensor([0, 1]), seed=0)
    assert calls == [4, 2, 2]


def test_sampling_shift_crowds_the_steps_at_the_noisiest_levels(tiny_images):
    # 4 rflow steps evenly at 1000, 750, 500, 250; shifted by 3, t -> 3t / (1 + 2t): 1000, 900, 750, 500
    model = Diffusion(**{**TINY, "sampling_steps": 4}, iterations=2, sampler="euler")
    list(model.fit(tiny_images, seed=0))
    told = []
    model.ema_net.register_forward_hook(lambda m, args, kwargs, out: told.append(kwargs["timesteps"][0].item()),
                                        with_kwargs=True)
    model.sample(torch.tensor([0]), seed=0)
    assert told == [1000, 750, 500, 250]
    told.clear()
    model.options = model.Options(**{**model.options.model_dump(), "sampling_shift": 3.0})
    model.sample(torch.tensor([0]), seed=0)
    assert told == [1000, 900, 750, 500]


def test_heun_corrects_each_step_but_the_last_at_the_next_level(tiny_images):
    # 3 steps at 1000, 667, 333: Euler asks the network at each; Heun also at the level each step lands on
    model = Diffusion(**{**TINY, "sampling_steps": 3}, iterations=2, guidance=1.0, sampler="euler")
    list(model.fit(tiny_images, seed=0))
    told = []
    model.ema_net.register_forward_hook(lambda m, args, kwargs, out: told.append(kwargs["timesteps"][0].item()),
                                        with_kwargs=True)
    model.sample(torch.tensor([0, 1]), seed=0)
    assert told == [1000, 667, 333]
    for heun in ("heun", None):  # unset: Heun
        told.clear()
        model.options = model.Options(**{**model.options.model_dump(), "sampler": heun})
        model.sample(torch.tensor([0, 1]), seed=0)
        assert told == [1000, 667, 667, 333, 333]
    # the corrector's velocity is used: on dx/dt = x (velocity -x, levels falling) Heun lands nearer the exact e^-1
    model.options = model.Options(**{**model.options.model_dump(), "sampling_steps": 4})
    model._predict = lambda net, x, t, y, null: -x
    x = torch.full((1, 1, 16, 16), 0.9)
    exact = 0.9 * torch.exp(torch.tensor(-1.0))
    errors = {}
    for sampler in ("euler", "heun"):
        model.options = model.Options(**{**model.options.model_dump(), "sampler": sampler})
        errors[sampler] = (model._denoise(model.ema_net, x, torch.tensor([0])) - exact).abs().max().item()
    assert errors["heun"] < errors["euler"] / 3, errors
    check_generator(Diffusion, **TINY, iterations=2, sampler="heun")


def test_heun_guides_each_pass_by_the_level_it_is_at(tiny_images):
    # 3 steps at 1000, 667, 333, guidance on [0, 0.5]: passes at 1000, 667 | 667, 333 | 333, guided (4 images:
    # the two and their null-class twins) only at 333; the step from 667 averages an unguided and a guided velocity
    model = Diffusion(**{**TINY, "sampling_steps": 3}, iterations=2, guidance=3.0, guidance_interval=(0.0, 0.5))
    list(model.fit(tiny_images, seed=0))
    calls = []
    model.ema_net.register_forward_hook(lambda m, args, kwargs, out: calls.append(len(kwargs["class_labels"])),
                                        with_kwargs=True)
    model.sample(torch.tensor([0, 1]), seed=0)
    assert calls == [2, 2, 2, 4, 4]


@pytest.mark.parametrize("levels, above_09", [(None, (0.0, 0.04)), ("logit-normal", (0.0, 0.04)),
                                              ("uniform", (0.06, 0.14))])
def test_training_noise_levels_follow_the_option(tiny_images, monkeypatch, levels, above_09):
    # logit-normal draws levels above 0.9 T 1.4 % of the time, uniform 10 %
    class Drawn(Exception):
        pass

    def spy(self, x0, noise, t):  # what the batch's noise levels are, then stop
        raise Drawn(t / self.options.train_timesteps)

    monkeypatch.setattr(Diffusion, "_noised", spy)
    options = {} if levels is None else {"noise_levels": levels}
    with pytest.raises(Drawn) as drawn:
        list(Diffusion(**{**TINY, "batch_size": 2000}, iterations=1, **options).fit(tiny_images, seed=0))
    share = (drawn.value.args[0] > 0.9).float().mean().item()
    assert above_09[0] <= share <= above_09[1], share


def test_sampling_in_batches_gives_the_same_images(tiny_images):
    model = Diffusion(**TINY, iterations=2)
    list(model.fit(tiny_images, seed=0))
    labels = torch.arange(3).repeat(3)
    whole = model.sample(labels, seed=4)
    model.options = model.Options(**{**model.options.model_dump(), "sample_batch": 2})
    assert torch.allclose(model.sample(labels, seed=4), whole, atol=1e-5)


@pytest.mark.parametrize("balanced, virus_share", [(None, 0.1), (False, 0.1), (True, 0.5)])
def test_training_batches_show_every_image_equally_often_unless_balanced(monkeypatch, balanced, virus_share):
    # by default a scarce class is drawn as often as its images are many (balanced, each of its images
    # is shown 9x as often as a common one's, and a tiny class's samples began to copy them)
    labels = torch.tensor([0] * 90 + [1] * 10)
    train = augkit.LabeledImages(torch.zeros(100, 1, 16, 16), labels, ["common", "virus"])

    class Drawn(Exception):
        pass

    def spy(weights, n, **kw):  # the batch draw: what each image's chance is, then stop
        raise Drawn(weights / weights.sum())

    monkeypatch.setattr(torch, "multinomial", spy)
    options = {} if balanced is None else {"balanced_batches": balanced}
    with pytest.raises(Drawn) as drawn:
        list(Diffusion(**TINY, iterations=1, **options).fit(train, seed=0))
    chance = drawn.value.args[0]
    assert chance[labels == 1].sum().item() == pytest.approx(virus_share)
    assert torch.allclose(chance[labels == 1], chance[labels == 1][0])  # within a class, every image alike


@pytest.mark.parametrize("bad, field", [
    ({"image_size": 18, "widths": [16, 16, 16], "attention": [False, False, False]}, "image_size 18"),
    ({"attention": [True]}, "attention has 1"),
    ({"widths": [16, 20], "attention": [False, False]}, "norm_groups"),
    ({"guidance": 0.5}, "guidance"),
    ({"widths": [16, 24], "attention": [False, False]}, "width 24 has attention"),  # MONAI's middle block has
    ({"sampling_steps": 200, "train_timesteps": 100}, "sampling_steps 200"),
    ({"label_dropout": 0.0}, "with label_dropout 0, set guidance 1"),
    ({"guidance_interval": [0.7, 0.2]}, "guidance_interval"),
    ({"guidance_interval": [0.0, 1.5]}, "guidance_interval"),
    ({"objective": "ddpm", "sampling_shift": 3.0}, "sampling_shift applies to objective rflow only"),
    ({"sampling_shift": 0}, "sampling_shift"),
    ({"objective": "ddpm", "sampler": "heun"}, "sampler heun applies to objective rflow only"),
])
def test_bad_options_name_the_field(bad, field):
    with pytest.raises(ValidationError, match=field):
        Diffusion.Options(**{**TINY, **bad})


def test_a_checkpoint_keeps_its_network_and_schedule(tiny_images, tmp_path):
    model = Diffusion(**TINY, iterations=1)
    list(model.fit(tiny_images, seed=0))
    model.save(tmp_path / "g.pt")
    with pytest.raises(ValueError, match="objective, widths cannot change once trained"):
        Diffusion.load(tmp_path / "g.pt", objective="ddpm", widths=[32, 32])
    assert Diffusion.load(tmp_path / "g.pt", sampling_steps=2, guidance=1.0).options.sampling_steps == 2


def test_a_checkpoint_from_before_the_sampler_option_keeps_sampling_with_euler(tiny_images, tmp_path):
    model = Diffusion(**TINY, iterations=1, sampler="euler")
    list(model.fit(tiny_images, seed=0))
    model.save(tmp_path / "g.pt")
    blob = torch.load(tmp_path / "g.pt", weights_only=True)
    del blob["options"]["sampler"]  # as saved before 2026-12-07
    torch.save(blob, tmp_path / "old.pt")
    assert Diffusion.load(tmp_path / "old.pt").options.sampler == "euler"
    assert Diffusion.load(tmp_path / "old.pt", sampler="heun").options.sampler == "heun"
    new = Diffusion(**TINY, iterations=1)  # new models: unset, Heun, and so after a save and load
    list(new.fit(tiny_images, seed=0))
    new.save(tmp_path / "new.pt")
    assert new.options.sampler is None and Diffusion.load(tmp_path / "new.pt").options.sampler is None


def test_wrong_image_shape_is_a_clear_error(tiny_images):
    with pytest.raises(ValueError, match=r"diffusion expects images of shape \(1, 32, 32\)"):
        list(Diffusion(**{**TINY, "image_size": 32}, iterations=1).fit(tiny_images, seed=0))


def test_batch_size_must_split_over_processes():
    from augkit.compute.distributed import DistributedError

    with pytest.raises(DistributedError, match="batch_size 6"):
        Diffusion(**{**TINY, "batch_size": 6}).check_distributed(4)


def test_build_by_name():
    assert isinstance(augkit.build("generator", "diffusion", **TINY), Diffusion)


def test_memory_layout_is_a_speed_lever_only(tiny_images, monkeypatch):
    # channels-last is on a GPU under bf16 only: on a CPU, bf16 group norm on channels-last tensors
    # is the slow path; forcing either layout trains the same model up to rounding
    assert Diffusion(**TINY, device="cpu")._memory == torch.contiguous_format
    with monkeypatch.context() as m:  # the rule for a CPU with bf16, on any CPU (nothing runs in bf16 here)
        m.setattr(accel, "bf16_supported", lambda device: True)
        bf16 = Diffusion(**{**TINY, "precision": "bf16"}, device="cpu")
        assert bf16.precision == "bf16" and bf16._memory == torch.contiguous_format
    models = {}
    for last in (False, True):
        models[last] = Diffusion(**TINY, iterations=4, channels_last=last)
        losses = [r["loss"] for r in models[last].fit(tiny_images, seed=1) if "loss" in r]
        assert models[last].net.conv_in.conv.weight.is_contiguous(
            memory_format=torch.channels_last if last else torch.contiguous_format)
        assert len(losses) == 2
        models[last].losses = losses
    assert models[True].losses == pytest.approx(models[False].losses, rel=1e-4)
    a, b = (models[k].sample(torch.tensor([0, 1, 2]), seed=0) for k in (False, True))
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)


def test_flash_attention_is_a_speed_lever_only(tiny_images, tmp_path):
    # torch's fused attention kernel is on by default on a GPU only; either way the network, its
    # checkpoint and what it learns are the same up to rounding
    from monai.networks.blocks.selfattention import SABlock

    def attention_kernels(model):
        return {m.use_flash_attention for m in model.net.modules() if isinstance(m, SABlock)}

    models = {}
    for flash in (False, True):
        models[flash] = Diffusion(**TINY, iterations=4, flash_attention=flash)
        models[flash].losses = [r["loss"] for r in models[flash].fit(tiny_images, seed=1) if "loss" in r]
        assert attention_kernels(models[flash]) == {flash}
    assert models[True].losses == pytest.approx(models[False].losses, rel=1e-4)
    a, b = (models[k].sample(torch.tensor([0, 1, 2]), seed=0) for k in (False, True))
    torch.testing.assert_close(a, b, rtol=1e-3, atol=1e-3)
    models[True].save(tmp_path / "flash.pt")  # a checkpoint trained with one kernel loads into the other
    plain = Diffusion.load(tmp_path / "flash.pt", flash_attention=False)
    assert attention_kernels(plain) == {False}
    torch.testing.assert_close(plain.sample(torch.tensor([0, 1, 2]), seed=0), b)
    default = Diffusion(**TINY, device="cpu")
    default._build(3)
    assert attention_kernels(default) == {False}  # unset: the fused kernel on a GPU only
