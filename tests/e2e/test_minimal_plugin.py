"""A generator with only the Generator role's abstract members runs, resumes, evaluates and generates.

The plugin (tests/minimal_generator) is not installed: it is registered with
``augkit.get_plugin_manager(extra=[minimal_generator])``, and that registry goes to every library
entry point (``load_recipe``, ``evaluate_run``, ``generate_from_checkpoint``). Everything the core
reads beyond the abstract members is the role's default: if the core read anything the roles do
not declare, these runs would fail.
"""

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml

import augkit
import minimal_generator
from augkit.runner import evaluate_run, run
from augkit.stages.synthetic import generate_from_checkpoint
from minimal_generator import MinimalGenerator
from test_resume_and_generate import Interrupt, interrupt_generator_at

pytestmark = pytest.mark.e2e

TINY = Path(__file__).parents[2] / "examples" / "tiny.yaml"
CLASSES = ["normal", "bacteria", "virus"]


def registry():
    return augkit.get_plugin_manager(extra=[minimal_generator])


def recipe():
    """examples/tiny.yaml with the minimal generator: 30 steps, checkpoints at 10, 20 and 30."""
    data = yaml.safe_load(TINY.read_text())
    data["name"] = "minimal"
    data["generator"] = {"name": "minimal", "options": {"steps": 30}}
    return augkit.load_recipe(data, registry=registry())


def losses(run_dir):
    return list(csv.DictReader(open(run_dir / "losses.csv")))


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    return augkit.run(recipe(), tmp_path_factory.mktemp("runs"))


def test_a_run_records_the_role_defaults(straight):
    environment = json.loads((straight / "environment.json").read_text())
    assert environment["resolved"]["generator"] == {"device": "cpu", "precision": "fp32"}
    assert {"role": "generator", "name": "minimal"}.items() <= next(
        p for p in environment["plugins"] if p["name"] == "minimal").items()
    assert [int(r["step"]) for r in losses(straight)] == list(range(1, 31))
    assert json.loads((straight / "synthetic" / "classes.json").read_text()) == CLASSES
    rows = list(csv.DictReader(open(straight / "synthetic" / "manifest.csv")))
    assert {(r["generator"], r["generator_version"]) for r in rows} == {("minimal", "0")}
    assert MinimalGenerator.load(straight / "checkpoints" / "last.pt").steps_done == 30


def test_an_interrupted_run_resumes_to_identical_results(straight, tmp_path):
    with pytest.raises(Interrupt):
        run(recipe(), tmp_path, progress=interrupt_generator_at(25))
    (broken,) = tmp_path.glob("minimal-*")
    assert MinimalGenerator.load(broken / "checkpoints" / "last.pt").steps_done == 20
    assert not (broken / "metrics.json").exists()

    resolved = augkit.load_recipe(broken / "recipe.yaml", registry=registry())  # as `augkit resume` loads it
    assert run(resolved, broken.parent, resume=broken) == broken
    assert "generator resumes at step 20" in (broken / "run.log").read_text()
    assert losses(broken) == losses(straight)
    assert (broken / "metrics.json").read_bytes() == (straight / "metrics.json").read_bytes()


def test_evaluate_reruns_the_study_with_the_runs_generator(straight):
    out = evaluate_run(straight, ["evaluation.seeds=1", "evaluation.regimes=[real,fake]"], registry=registry())
    assert out.parent == straight / "evaluations"
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["regimes"]) >= {"real", "fake"} and metrics["classes"] == CLASSES


def test_a_sampling_option_the_plugin_cannot_take_is_refused_before_any_folder(straight):
    """It warned "this evaluation sampled its synthetic images again with them", then failed, leaving an
    evaluation folder whose recipe.yaml claimed the refused option."""
    from augkit.config.recipe import RecipeError

    before = sorted((straight / "evaluations").glob("*")) if (straight / "evaluations").exists() else []
    with pytest.raises(RecipeError, match=r"generator.options.noise: the 'minimal' generator takes no options when it "
                       "loads a checkpoint"):
        evaluate_run(straight, ["generator.options.noise=0.3"], registry=registry())
    after = sorted((straight / "evaluations").glob("*")) if (straight / "evaluations").exists() else []
    assert after == before


def test_generate_from_the_checkpoint(straight, tmp_path):
    checkpoint = straight / "checkpoints" / "last.pt"
    manifests = [generate_from_checkpoint(checkpoint, "virus", 5, tmp_path / name, seed=3, batch_size=2,
                                          registry=registry())  # the name comes from the run's recipe.yaml
                 for name in ("a", "b")]
    rows = list(csv.DictReader(open(manifests[0])))
    assert {(r["class"], r["generator"]) for r in rows} == {("virus", "minimal")}
    assert len({r["seed"] for r in rows}) == 3  # one seed per batch of 2
    files = sorted((tmp_path / "a" / "virus").glob("*.png"))
    assert len(files) == 5
    assert all(f.read_bytes() == (tmp_path / "b" / "virus" / f.name).read_bytes() for f in files)
    with pytest.raises(ValueError, match="'covid' is not a class of this checkpoint; classes: normal, bacteria, virus"):
        generate_from_checkpoint(checkpoint, "covid", 1, tmp_path / "c", registry=registry())


def test_a_checkpoint_outside_its_run_folder_asks_for_its_generator(straight, tmp_path):
    """Copied out of its run folder, a checkpoint was tried with the default generator and called "a file cut short
    or damaged", without a word of --generator."""
    import shutil

    from augkit.stages.generator import CheckpointError

    copy = tmp_path / "kept" / "best.pt"
    copy.parent.mkdir()
    shutil.copy(straight / "checkpoints" / "last.pt", copy)
    with pytest.raises(CheckpointError, match=r"not in a run folder whose recipe.yaml names its generator, so the "
                       r"default 'acgan' was tried: give the generator that made it with --generator NAME"):
        generate_from_checkpoint(copy, "virus", 2, tmp_path / "a", registry=registry())
    assert generate_from_checkpoint(copy, "virus", 2, tmp_path / "b", generator="minimal", registry=registry()).is_file()


def test_the_plugin_passes_the_contract_kit():
    from augkit.testing import check_generator

    check_generator(MinimalGenerator, steps=3)
    gen = MinimalGenerator(steps=3)
    assert (gen.total_steps, gen.device, gen.precision) == (None, torch.device("cpu"), "fp32")  # the defaults
