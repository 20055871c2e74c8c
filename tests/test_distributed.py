"""torch.distributed on CPUs (gloo): two spawned processes against one.

One spawn (two ranks) runs every scenario and leaves its results in a folder; the tests
compare them with the same work done here, in this single process:

* the AC-GAN trained with DDP: identical weights on both ranks after every step; losses and
  weights as a single process with the same global batch (to float rounding with dropout 0,
  within a tolerance with dropout, whose masks differ per rank); rank 0's checkpoint resumes here;
* sharded generation: every rank receives every batch, identical to one process's;
* the classifier study spread over the ranks: metrics identical to one process's;
* a classifier trained over both ranks (DDP, global batch norm): identical weights on both
  ranks, the weights of one process to float rounding without dropout, within a tolerance
  with it; the study with every training over both ranks (``evaluation.distribute: ddp``).
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

import augkit
from augkit.compute import distributed
from augkit.extension.roles import LabeledImages

TINY = Path(__file__).parent.parent / "examples" / "tiny.yaml"
WORLD = 2
STEPS = 4
# dropout 0: ranks differ from one process only by float rounding; "dropout": the default 0.25
CONFIGS = {"exact": {"dropout": 0.0}, "dropout": {}}
REGIMES, SEEDS = ["real", "fake", "fake+real", "real+classic"], [0, 1]


# the classifier: "exact" has no dropout (one process's result to float rounding), "dropout" the default 0.2,
# "local-bn" batch norm over each rank's share of the batch, "weighted" the loss weighted by class on imbalanced data
NETS = {"exact": {"drop_rate": 0.0}, "dropout": {}, "local-bn": {"drop_rate": 0.0, "sync_batchnorm": False},
        "weighted": {"drop_rate": 0.0, "class_weighting": True}}


def net(**options):
    from augkit_plugins.efficientnetv2 import EfficientNetV2

    return EfficientNetV2(**{"variant": "test_efficientnet", "image_size": 16, "epochs": 3, "batch_size": 8,
                             "precision": "fp32", **options})


def net_data(name: str) -> LabeledImages:
    data = images()
    return data.subset(torch.cat([torch.arange(24), torch.arange(24, 28)])) if name == "weighted" else data  # 12/12/4


def held_out() -> torch.Tensor:
    return images(5, seed=6).images


def net_weights(classifier) -> torch.Tensor:
    return torch.cat([t.detach().flatten().double() for t in classifier.model.state_dict().values()])


def gan(**options):
    from augkit_plugins.acgan import ACGAN

    return ACGAN(**{"image_size": 16, "width": 16, "iterations": STEPS, "batch_size": 8, "log_every": 1,
                    "precision": "fp32", **options})


@contextmanager
def rank_threads():
    """This process with the threads each rank has (``cores // ranks``).

    CPU kernels (oneDNN, MKL) split their sums by thread, so float results depend on the thread
    count: bit for bit, a rank matches one process with its own thread count.
    """
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // WORLD))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def images(n_per_class: int = 12, size: int = 16, seed: int = 0) -> LabeledImages:
    """Three classes of textured images at three brightness levels."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(3).repeat_interleave(n_per_class)
    base = (labels.float() - 1)[:, None, None, None] * 0.5
    return LabeledImages((base + 0.25 * torch.randn(len(labels), 1, size, size, generator=g)).clamp(-1, 1), labels,
                         ["dark", "grey", "bright"])


def flat(g) -> torch.Tensor:
    """Every weight and buffer of G, D and G's moving average, as one vector."""
    parts = [*g.G.state_dict().values(), *g.D.state_dict().values(), *g.G_ema.state_dict().values()]
    return torch.cat([t.detach().flatten().double() for t in parts])


def study_inputs(*overrides: str):
    from augkit.stages import study

    train, val, test = images(8, seed=1), images(3, seed=2), images(4, seed=3)
    pool = images(10, seed=4)
    needs = study.synthetic_needs(REGIMES, train.counts(), per_class=6, multiplier=1.0, balance=False)
    resolved = augkit.load_recipe(TINY, ["classifier.options.epochs=1", "classifier.options.batch_size=8", *overrides])
    return resolved, train, val, test, pool, needs


def run_study(out_dir: Path, *overrides: str, trained: dict | None = None):
    from augkit.stages import study
    from augkit.outputs.progress import no_progress

    resolved, train, val, test, pool, needs = study_inputs(*overrides)
    return study.evaluate(resolved, train, val, test, pool, needs, out_dir, no_progress, regimes=REGIMES, seeds=SEEDS,
                          trained=trained)


DDP_STUDY = ("evaluation.distribute=ddp", "classifier.options.drop_rate=0")


def audit_classifier() -> dict:
    """What rank 0 alone holds in a run: the audit's real-data classifier, standing in for ("real", 0)."""
    resolved, train, val, *_ = study_inputs(*DDP_STUDY)
    classifier = resolved.build("classifier")
    with distributed.alone():
        rows = list(classifier.fit(train, val, seed=SEEDS[0]))
    return {("real", SEEDS[0]): (classifier, rows)}


def sample_labels() -> torch.Tensor:
    return torch.arange(3).repeat(13)[:37]  # 8 batches of 5, the last one short: 4 rounds of 2 ranks


# GlobalBatchNorm2d configurations: (affine, channels-last, mean offset, dtype)
BN_CASES = {
    "affine": (True, False, 1.0, torch.float32),
    "plain": (False, False, 1.0, torch.float32),
    "channels-last": (True, True, 1.0, torch.float32),
    "far-mean": (True, False, 3000.0, torch.float32),  # |mean| >> std: a shifted-sums variance cancels here
    "bf16": (True, True, 20.0, torch.bfloat16),
}


def bn_inputs(offset: float = 1.0):
    g = torch.Generator().manual_seed(0)
    return torch.randn(8, 4, 5, 5, generator=g) * 3 + offset, torch.randn(8, 4, 5, 5, generator=g)  # x, dL/dy


def bn_layer(kind, affine: bool):
    bn = kind(4, affine=affine).train()
    if affine:
        with torch.no_grad():
            bn.weight.copy_(torch.linspace(0.5, 1.5, 4))
            bn.bias.copy_(torch.linspace(-0.5, 0.5, 4))
    return bn


def global_batchnorm(rank: int, case: str) -> dict:
    """One training step of GlobalBatchNorm2d on this rank's half of a batch of 8."""
    from augkit.compute.sync_batchnorm import GlobalBatchNorm2d

    affine, channels_last, offset, dtype = BN_CASES[case]
    x, grad = bn_inputs(offset)
    mine = slice(rank * 4, (rank + 1) * 4)
    layout = torch.channels_last if channels_last else torch.contiguous_format
    bn = bn_layer(GlobalBatchNorm2d, affine)
    local = x[mine].to(dtype).contiguous(memory_format=layout).requires_grad_()
    y = bn(local)
    y.backward(grad[mine].to(dtype).contiguous(memory_format=layout))
    return {"y": y.detach(), "x_grad": local.grad, "mean": bn.running_mean, "var": bn.running_var,
            **({"w_grad": bn.weight.grad, "b_grad": bn.bias.grad} if affine else {})}


# -- the two ranks -------------------------------------------------------------------------


def _rank(rank: int, port: int, out: str) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(WORLD),
                      LOCAL_RANK=str(rank), LOCAL_WORLD_SIZE=str(WORLD))
    out = Path(out)
    # a fresh process's threads, one per core: started from a pytest-xdist worker it inherits OMP_NUM_THREADS=1,
    # which would meet the check below whether or not init set anything
    torch.set_num_threads(distributed.cores())
    here = distributed.init(torch.device("cpu"))
    assert (here.rank, here.size) == (rank, WORLD)
    assert torch.get_num_threads() == max(1, len(os.sched_getaffinity(0)) // WORLD)  # no oversubscription
    try:
        from augkit.stages.batches import generate_batches
        from augkit_plugins.acgan import ACGAN

        for name, options in CONFIGS.items():
            g, rows, same, rngs = gan(**options), [], [], []
            for row in g.fit(images(), seed=0):
                rows.append(row)
                same.append(all(torch.equal(s, flat(g)) for s in distributed.all_gather(flat(g))))
                rngs.append(distributed.all_gather(hashlib.sha1(torch.get_rng_state().numpy().tobytes()).hexdigest()))
                if row["step"] == 2 and here.main:
                    g.save(out / f"{name}-step2.pt")
            if here.main:
                g.save(out / f"{name}-last.pt")
                torch.save({"rows": rows, "same": same, "rngs": rngs, "weights": flat(g)}, out / f"{name}.pt")

        distributed.barrier()  # rank 0 has written it
        loaded = ACGAN.load(out / "exact-last.pt")
        batches = list(generate_batches(loaded, sample_labels(), seed=3, batch_size=5, shard=True))
        torch.save(batches, out / f"batches-{rank}.pt")

        torch.save({case: global_batchnorm(rank, case) for case in BN_CASES}, out / f"bn-{rank}.pt")

        metrics = run_study(out / "study")
        if here.main:
            (out / "study.json").write_text(json.dumps(metrics, sort_keys=True))
        else:
            assert metrics is None

        with distributed.alone():
            alone = {"size": distributed.world().size, "shard": list(distributed.shard(3)),
                     "got": distributed.broadcast(rank)}
        (out / f"alone-{rank}.json").write_text(json.dumps(alone))

        for name, options in NETS.items():
            classifier = net(**options)
            rows = list(classifier.fit(net_data(name), images(4, seed=5), seed=0))
            weights = net_weights(classifier)
            same = all(torch.equal(w, weights) for w in distributed.all_gather(weights))
            if here.main:
                torch.save({"rows": rows, "same": same, "proba": classifier.predict_proba(held_out())},
                           out / f"net-{name}.pt")

        one_image = images(4, seed=5).subset(torch.tensor([0]))  # rank 1's share of validation is empty
        rows = list(net(epochs=2).fit(images(), one_image, seed=0))
        if here.main:
            torch.save(rows, out / "net-one-val-image.pt")

        held = audit_classifier() if here.main else {}  # rank 0 alone: the others wait at the study's broadcast
        metrics = run_study(out / "ddp-study", *DDP_STUDY, trained=held)
        if here.main:
            (out / "ddp-study.json").write_text(json.dumps(metrics, sort_keys=True))
    except BaseException:
        import traceback

        (out / f"rank{rank}-error.txt").write_text(traceback.format_exc())  # kept with the results, for a failure
        raise
    distributed.close()  # on success only, as the CLI does: a failed peer would never reach its barrier
    distributed.exit_now(0)  # and ends as the CLI does under torchrun


@pytest.fixture(scope="module")
def ranks(tmp_path_factory) -> Path:
    import torch.multiprocessing as mp

    out = tmp_path_factory.mktemp("ranks")
    (out / "study").mkdir()
    (out / "ddp-study").mkdir()
    mp.start_processes(_rank, args=(distributed.free_port(), str(out)), nprocs=WORLD, start_method="spawn")
    return out


# -- DDP training --------------------------------------------------------------------------


@pytest.mark.parametrize("name", CONFIGS)
def test_ranks_hold_identical_weights_after_every_step(ranks, name):
    result = torch.load(ranks / f"{name}.pt", weights_only=False)
    assert [r["step"] for r in result["rows"]] == list(range(1, STEPS + 1))
    assert result["same"] == [True] * STEPS


def test_each_rank_draws_its_own_dropout_masks(ranks):
    for states in torch.load(ranks / "dropout.pt", weights_only=False)["rngs"]:
        assert len(set(states)) == WORLD


def single(name: str):
    g = gan(**CONFIGS[name])
    rows = list(g.fit(images(), seed=0))
    return g, rows


def losses(rows):
    return torch.tensor([[r["d_loss"], r["g_loss"]] for r in rows])


def test_matches_one_process_with_the_same_global_batch(ranks):
    g, rows = single("exact")
    result = torch.load(ranks / "exact.pt", weights_only=False)
    # the same batches, augmentations and updates: only the order of float sums differs
    torch.testing.assert_close(losses(result["rows"]), losses(rows), rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(result["weights"], flat(g), rtol=1e-4, atol=1e-5)


def test_with_dropout_matches_one_process_within_tolerance(ranks):
    _, rows = single("dropout")
    result = torch.load(ranks / "dropout.pt", weights_only=False)
    # other dropout masks: the same training, another draw of its noise
    torch.testing.assert_close(losses(result["rows"]), losses(rows), rtol=0.1, atol=0.05)
    assert not torch.equal(losses(result["rows"]), losses(rows))


@pytest.mark.parametrize("name", CONFIGS)
def test_rank0_checkpoint_resumes_in_one_process(ranks, name):
    from augkit_plugins.acgan import ACGAN

    resumed = ACGAN.load(ranks / f"{name}-step2.pt")
    assert resumed.step == 2
    rows = list(resumed.fit(images(), seed=0))
    assert [r["step"] for r in rows] == [3, 4]
    distributed_rows = torch.load(ranks / f"{name}.pt", weights_only=False)["rows"][2:]
    tolerance = {"rtol": 1e-4, "atol": 1e-5} if name == "exact" else {"rtol": 0.1, "atol": 0.05}
    torch.testing.assert_close(losses(rows), losses(distributed_rows), **tolerance)


@pytest.mark.parametrize("case", BN_CASES)
def test_global_batchnorm_is_batchnorm_over_the_whole_batch(ranks, case):
    affine, _, offset, dtype = BN_CASES[case]
    x, grad = bn_inputs(offset)

    def whole(kind):  # one process, the whole batch, in float64 (the truth) or in dtype (torch's own)
        bn, full = bn_layer(torch.nn.BatchNorm2d, affine).to(kind), x.to(kind).requires_grad_()
        y = bn(full)
        y.backward(grad.to(kind))
        out = {"y": y.detach(), "x_grad": full.grad, "mean": bn.running_mean, "var": bn.running_var}
        return {k: v.double() for k, v in {**out, **({"w_grad": bn.weight.grad, "b_grad": bn.bias.grad}
                                                     if affine else {})}.items()}

    truth = whole(torch.float64)
    torch_own = whole(dtype)
    halves = [torch.load(ranks / f"bn-{rank}.pt")[case] for rank in range(WORLD)]
    got = [("y", torch.cat([h["y"] for h in halves])), ("x_grad", torch.cat([h["x_grad"] for h in halves]))]
    got += [(key, h[key]) for h in halves for key in ("mean", "var")]  # every rank keeps the same statistics
    if affine:  # the sum of the loss over ranks is the whole batch's loss
        got += [(key, halves[0][key] + halves[1][key]) for key in ("w_grad", "b_grad")]
    for key, value in got:  # as close to the truth as torch's own batch norm in this dtype, or closer
        error = (value.double() - truth[key]).abs().max().item()
        allowed = 2 * (torch_own[key] - truth[key]).abs().max().item() + 1e-5 * truth[key].abs().max().item()
        assert error <= allowed, (case, key, error, allowed)


# -- sharded generation and the study ------------------------------------------------------


def test_sharded_generation_gives_every_rank_the_batches_of_one_process(ranks):
    from augkit.stages.batches import generate_batches
    from augkit_plugins.acgan import ACGAN

    with rank_threads():
        expected = list(generate_batches(ACGAN.load(ranks / "exact-last.pt"), sample_labels(), seed=3, batch_size=5))
    assert len(expected) == 8
    for rank in range(WORLD):
        got = torch.load(ranks / f"batches-{rank}.pt", weights_only=False)
        assert [b.seed for b in got] == [b.seed for b in expected] == [3 * 1_000_003 + b for b in range(8)]
        for a, b in zip(got, expected):
            assert torch.equal(a.images, b.images) and torch.equal(a.labels, b.labels) and a.index == b.index


def test_study_spread_over_ranks_gives_the_metrics_of_one_process(ranks, tmp_path):
    with rank_threads():
        metrics = run_study(tmp_path)
    assert json.loads((ranks / "study.json").read_text()) == json.loads(json.dumps(metrics, sort_keys=True))
    assert (ranks / "study" / "classifier_losses.csv").read_text() == (tmp_path / "classifier_losses.csv").read_text()


# -- classifiers trained over the ranks (DDP) ----------------------------------------------


@pytest.mark.parametrize("name", NETS)
def test_a_classifier_trained_over_ranks_holds_identical_weights_on_each(ranks, name):
    result = torch.load(ranks / f"net-{name}.pt", weights_only=False)
    assert result["same"] and [r["step"] for r in result["rows"]] == [1, 2, 3]


def single_net(name: str):
    with rank_threads():
        classifier = net(**NETS[name])
        rows = list(classifier.fit(net_data(name), images(4, seed=5), seed=0))
    return classifier, torch.tensor([[r["train_loss"], r["val_loss"]] for r in rows])


@pytest.mark.parametrize("name", ["exact", "weighted"])
def test_a_classifier_trained_over_ranks_is_the_classifier_of_one_process(ranks, name):
    classifier, rows = single_net(name)
    result = torch.load(ranks / f"net-{name}.pt", weights_only=False)
    # the same global batches and augmentations, batch norm over the global batch: float rounding only
    torch.testing.assert_close(torch.tensor([[r["train_loss"], r["val_loss"]] for r in result["rows"]]), rows,
                               rtol=1e-4, atol=1e-5)
    # and the same function. Not every weight to 1e-4: a bias that the next batch norm cancels has,
    # mathematically, no gradient; AdamW turns its float noise into steps of about lr either way
    torch.testing.assert_close(result["proba"], classifier.predict_proba(held_out()), rtol=1e-3, atol=1e-4)


def test_a_classifier_with_dropout_over_ranks_matches_one_process_within_tolerance(ranks):
    _, rows = single_net("dropout")
    result = torch.load(ranks / "net-dropout.pt", weights_only=False)
    got = torch.tensor([[r["train_loss"], r["val_loss"]] for r in result["rows"]])
    torch.testing.assert_close(got, rows, rtol=0.1, atol=0.05)  # other dropout masks, the same training
    assert not torch.equal(got, rows)


def test_a_validation_split_smaller_than_the_processes(ranks):
    rows = torch.load(ranks / "net-one-val-image.pt", weights_only=False)
    assert [r["step"] for r in rows] == [1, 2] and all(r["val_acc"] in (0.0, 1.0) for r in rows)


def test_the_study_with_every_training_over_the_ranks(ranks, tmp_path):
    with rank_threads():
        metrics = run_study(tmp_path, *DDP_STUDY, trained=audit_classifier())
    got = json.loads((ranks / "ddp-study.json").read_text())
    assert sorted(got["regimes"]) == sorted(REGIMES)
    # ("real", 0) is rank 0's audit classifier, scored as it is: identical; the others trained over both ranks
    assert got["regimes"]["real"]["runs"][0] == json.loads(json.dumps(metrics["regimes"]["real"]["runs"][0]))
    one = {(r["regime"], r["seed"], r["step"]): r for r in csv.DictReader(open(tmp_path / "classifier_losses.csv"))}
    two = {(r["regime"], r["seed"], r["step"]): r for r in csv.DictReader(open(ranks / "ddp-study" /
                                                                                "classifier_losses.csv"))}
    assert one.keys() == two.keys() and len(one) == len(REGIMES) * len(SEEDS)
    for key in one:
        for column in ("train_loss", "val_loss"):
            assert float(two[key][column]) == pytest.approx(float(one[key][column]), rel=1e-3, abs=1e-4), (key, column)


def test_synchronised_timm_batchnorm_keeps_its_activation_and_keys():
    import copy

    from timm.layers import BatchNormAct2d

    from augkit.compute.sync_batchnorm import GlobalBatchNorm2d, synchronise

    classifier = net(drop_rate=0.0)  # no dropout: two forward passes in training mode must agree
    model = classifier._create(3).train()
    synced = synchronise(copy.deepcopy(model), torch.device("cpu"), after={BatchNormAct2d: ("drop", "act")})
    assert sum(isinstance(m, GlobalBatchNorm2d) for m in synced.modules()) == 13
    assert list(synced.state_dict()) == list(model.state_dict())
    x = images(2).images
    torch.testing.assert_close(synced(x), model(x))  # one process: the plain batch norm, then SiLU


def test_alone_makes_a_rank_a_single_process(ranks):
    for rank in range(WORLD):  # inside: a single process, collectives give the rank's own value
        assert json.loads((ranks / f"alone-{rank}.json").read_text()) == {"size": 1, "shard": [0, 1, 2], "got": rank}


# -- one process, and what is refused ------------------------------------------------------


def test_one_process_is_left_alone(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    threads = torch.get_num_threads()
    assert distributed.init(torch.device("cpu")) == distributed.World()
    assert not torch.distributed.is_initialized() and torch.get_num_threads() == threads
    assert distributed.world().main and list(distributed.shard(3)) == [0, 1, 2]
    assert distributed.all_gather("x") == ["x"] and distributed.broadcast(5) == 5


def test_refusals_name_the_problem(monkeypatch):
    from augkit.runner import check_distributed

    with pytest.raises(distributed.DistributedError, match="batch_size 30 is not divisible by the 4 processes"):
        gan(batch_size=30).check_distributed(4)
    with pytest.raises(distributed.DistributedError, match="compile: true is not supported"):
        gan(compile=True).check_distributed(2)
    with pytest.raises(distributed.DistributedError, match="mode_seeking pairs images within one process"):
        gan(mode_seeking=1.0).check_distributed(2)
    gan(batch_size=32).check_distributed(4)
    if not torch.cuda.is_available():
        monkeypatch.setenv("AUGKIT_DIST_BACKEND", "nccl")
        with pytest.raises(distributed.DistributedError, match="nccl needs CUDA GPUs, but torch sees none"):
            distributed.backend_for(torch.device("cpu"))
    monkeypatch.setenv("AUGKIT_DIST_BACKEND", "mpi")
    with pytest.raises(distributed.DistributedError, match="use one of gloo, nccl"):
        distributed.backend_for(torch.device("cpu"))
    monkeypatch.delenv("AUGKIT_DIST_BACKEND")
    assert distributed.backend_for(torch.device("cpu")) == "gloo"
    single_process_only = SimpleNamespace(plugins={"generator": (SimpleNamespace(supports_distributed=False), None)},
                                          recipe=SimpleNamespace(generator=SimpleNamespace(name="wgan-gp")))
    with pytest.raises(distributed.DistributedError, match="'wgan-gp' generator cannot train over several processes"):
        check_distributed(single_process_only)


def test_the_study_shares_its_trainings_as_the_recipe_asks():
    from augkit.stages.study import distribute_mode

    def recipe(*overrides):
        return augkit.load_recipe(TINY, list(overrides))

    assert distribute_mode(recipe(), 8, 1) == "jobs"  # one process: nothing to share
    assert distribute_mode(recipe(), 8, 2) == "jobs"  # auto: enough trainings to keep every process busy
    assert distribute_mode(recipe(), 3, 4) == "ddp"  # auto: fewer trainings than processes
    assert distribute_mode(recipe("evaluation.distribute=ddp"), 8, 2) == "ddp"
    assert distribute_mode(recipe("evaluation.distribute=jobs"), 1, 8) == "jobs"
    with pytest.raises(distributed.DistributedError, match="classifier.options.batch_size 16 is not divisible by the 3"):
        distribute_mode(recipe("evaluation.distribute=ddp"), 8, 3)
    assert distribute_mode(recipe(), 1, 3) == "jobs"  # auto: a batch of 16 does not split over 3 processes
    one_process_classifier = recipe("evaluation.distribute=ddp")
    cls, options = one_process_classifier.plugins["classifier"]
    one_process_classifier.plugins["classifier"] = (type("Plain", (cls,), {"supports_distributed": False}), options)
    with pytest.raises(distributed.DistributedError, match="'efficientnetv2' classifier cannot train over several"):
        distribute_mode(one_process_classifier, 8, 2)


def test_the_audit_trains_its_extractor_over_the_processes_only_when_it_can():
    from augkit.stages.screening import _fits_together

    def fits(*overrides, world=2):
        resolved = augkit.load_recipe(TINY, list(overrides))
        return _fits_together(resolved, resolved.build("feature_extractor"), world)

    assert fits("evaluation.distribute=ddp")  # the recipe's classifier, batch 16 over 2 processes
    assert not fits("evaluation.distribute=ddp", world=1)
    assert not fits("evaluation.distribute=jobs")  # rank 0 alone: the study's real/seed-0 run stays one process's
    # its own options, which 2 processes cannot share: rank 0 fits it alone rather than fail mid-run
    assert not fits("evaluation.distribute=ddp",
                    "feature_extractor.options.classifier_options={variant: test_efficientnet, batch_size: 15}")


def test_audit_refuses_torchrun(monkeypatch, tmp_path, cli):
    monkeypatch.setenv("WORLD_SIZE", "2")
    result = cli("audit", tmp_path, "--reference", tmp_path, expect=2)
    assert "augkit audit runs in one process: start it without torchrun" in result.output
