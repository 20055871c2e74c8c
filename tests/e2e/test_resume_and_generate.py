"""An interrupted run resumes to the same numbers; `augkit generate` is seeded and streams."""

import csv
import hashlib
import json
from pathlib import Path

import pytest

import augkit
from augkit.runner import run

pytestmark = pytest.mark.e2e

TINY = Path(__file__).parents[2] / "examples" / "tiny.yaml"


class Interrupt(Exception):
    pass


def interrupt_generator_at(step):
    def progress(iterable, description="", total=None):
        for item in iterable:
            if description == "train generator" and item.get("step") == step:
                raise Interrupt
            yield item

    return progress


def test_interrupted_run_resumes_to_identical_results(tmp_path, cli):
    straight = run(augkit.load_recipe(TINY), tmp_path / "a")

    with pytest.raises(Interrupt):
        run(augkit.load_recipe(TINY), tmp_path / "b", progress=interrupt_generator_at(25))
    (broken,) = (tmp_path / "b").glob("tiny-*")
    assert (broken / "checkpoints/last.pt").exists() and not (broken / "metrics.json").exists()

    result = cli("resume", broken)
    assert result.stdout.strip().splitlines()[-1] == str(broken)
    assert "generator resumes at step 20" in (broken / "run.log").read_text()
    assert (broken / "metrics.json").read_bytes() == (straight / "metrics.json").read_bytes()
    def losses(run_dir):  # every logged value but the wall time
        return [{k: v for k, v in r.items() if k != "sec_per_iter"} for r in csv.DictReader(open(run_dir / "losses.csv"))]

    assert losses(broken) == losses(straight) and len(losses(broken)) == 3


def test_resume_refuses_data_that_changed_since_the_run_began(tmp_path, cli):
    with pytest.raises(Interrupt):
        run(augkit.load_recipe(TINY), tmp_path, progress=interrupt_generator_at(15))
    (broken,) = tmp_path.glob("tiny-*")
    recipe = broken / "recipe.yaml"  # the phantom data the run reads now has one virus image fewer
    recipe.write_text(recipe.read_text().replace("virus: 12", "virus: 11"))
    out = cli("resume", broken, expect=2).output
    assert "cannot resume" in out and "60 images then, 59 now" in out and "Traceback" not in out
    assert not (broken / "metrics.json").exists()


def test_resume_refuses_a_finished_run(tmp_path, cli):
    done = run(augkit.load_recipe(TINY), tmp_path)
    assert "already finished" in cli("resume", done, expect=2).output


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return run(augkit.load_recipe(TINY), tmp_path_factory.mktemp("runs")) / "checkpoints" / "best.pt"


def test_generate_same_seed_same_images(checkpoint, tmp_path, cli):
    for name in ("a", "b"):
        cli("generate", checkpoint, "--class", "virus", "-n", "70", "--batch-size", "32", "--seed", "3", "--out", tmp_path / name)
    a = sorted((tmp_path / "a" / "virus").glob("*.png"))
    assert len(a) == 70
    assert all(x.read_bytes() == (tmp_path / "b" / "virus" / x.name).read_bytes() for x in a)
    rows = list(csv.DictReader(open(tmp_path / "a" / "manifest.csv")))
    assert {r["class"] for r in rows} == {"virus"} and rows[0]["generator"] == "acgan"
    assert len({r["seed"] for r in rows}) == 3  # one seed per batch of 32
    # the checkpoint sits in a run folder: its recipe's hash, as in the run's own manifest
    run_rows = list(csv.DictReader(open(checkpoint.parent.parent / "synthetic" / "manifest.csv")))
    assert rows[0]["recipe_sha256"] == run_rows[0]["recipe_sha256"] != ""
    # the export carries its card: these 70 images, the run's data and audit, with a note that says whose
    card = json.loads((tmp_path / "a" / "dataset_card.json").read_text())
    assert card["images"]["total"] == 70 and card["images"]["per_class"]["virus"] == 70
    assert card["training_data"]["images"] > 0 and card["audit"] is not None and "New samples" in card["note"]
    assert (tmp_path / "a" / "DATASET_CARD.md").is_file()


def test_generate_refuses_unknown_class_and_non_empty_folder(checkpoint, tmp_path, cli):
    out = cli("generate", checkpoint, "--class", "covid", "-n", "1", "--out", tmp_path / "x", expect=2).output
    assert "'covid' is not a class of this checkpoint; classes: normal, bacteria, virus" in out
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "mine.txt").write_text("user data")
    out = cli("generate", checkpoint, "--class", "virus", "-n", "1", "--out", tmp_path / "full", expect=2).output
    assert "not empty" in out and (tmp_path / "full" / "mine.txt").read_text() == "user data"


def test_generate_passes_exporter_options(checkpoint, tmp_path, cli):
    import pydicom

    out = tmp_path / "dicom"
    cli("generate", checkpoint, "--class", "virus", "-n", "3", "--out", out, "--exporter", "dicom",
        "--exporter-option", "body_part=CHEST", "--exporter-option", "bits=16", "--exporter-option", "spacing_mm=0.5")
    files = sorted((out / "virus").glob("*.dcm"))
    assert len(files) == 3
    ds = pydicom.dcmread(files[0])
    assert ds.BodyPartExamined == "CHEST" and "Laterality" not in ds  # an unpaired part: no laterality
    assert ds.BitsStored == 16 and [float(v) for v in ds.PixelSpacing] == [0.5, 0.5]
    assert ds.PatientIdentityRemoved == "YES"


@pytest.mark.parametrize("options, message", [
    (["body_part=chest"], "--exporter-option body_part: String should match pattern"),
    (["bits=12"], "--exporter-option bits: Input should be 8 or 16"),
    (["colour=red"], "--exporter-option colour: the 'dicom' exporter has no such option (its options: modality, bits,"),
    (["body_part"], "--exporter-option 'body_part': expected KEY=VALUE"),
])
def test_generate_refuses_bad_exporter_options(checkpoint, tmp_path, cli, options, message):
    args = [a for option in options for a in ("--exporter-option", option)]
    result = cli("generate", checkpoint, "--class", "virus", "-n", "1", "--out", tmp_path / "x", "--exporter", "dicom",
                 *args, expect=2)
    assert message in result.output
    assert not (tmp_path / "x").exists()  # refused before anything is written


def test_selection_scores_recorded(checkpoint):
    selection = json.loads((checkpoint.parent.parent / "selection.json").read_text())
    assert [s["step"] for s in selection["scores"]] == [10, 20, 30]
    assert set(selection["scores"][0]["per_class"]) == {"normal", "bacteria", "virus"}
    assert 0 <= selection["judge_val_accuracy"] <= 1


CHEAP = ["evaluation.regimes=[real,fake]", "evaluation.seeds=1", "evaluation.ratios=[]", "audit.enabled=false",
         "selection.judge_steps=60"]


def _outputs(run_dir):
    """What a kill must not change: the generator's logged rows (but the wall time), its scores, and the
    exported synthetic images (sampled from the chosen checkpoint)."""
    rows = [{k: v for k, v in r.items() if k != "sec_per_iter"} for r in csv.DictReader(open(run_dir / "losses.csv"))]
    scores = json.loads((run_dir / "selection.json").read_text())
    images = sorted(hashlib.sha256(p.read_bytes()).hexdigest() for p in (run_dir / "synthetic").rglob("*.png"))
    return rows, scores, images, json.loads((run_dir / "metrics.json").read_text())["regimes"]["fake"]["runs"]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    return _outputs(run(augkit.load_recipe(TINY, CHEAP), tmp_path_factory.mktemp("straight")))


@pytest.mark.parametrize("point", ["iter_000020.png", "losses.csv", "selection.json"])
def test_a_kill_at_each_checkpoint_write_resumes_to_the_uninterrupted_run(point, tmp_path, monkeypatch, uninterrupted,
                                                                          cli):
    """Killed right after one of the files the step-20 checkpoint writes (of 30 steps), before last.pt: after
    the scoring and best.pt, after the grid, after losses.csv, after selection.json. The run resumes from
    step 10 and ends with the same logs, scores and synthetic images as without the kill."""
    from augkit.outputs.run_folder import RunFolder
    from augkit.stages import generator as stage

    def at_step_20(name, obj):
        if name == "losses.csv":
            return obj[-1]["step"] == 20
        if name == "selection.json":
            return bool(obj.get("scores")) and obj["scores"][-1]["step"] == 20
        return True

    def killing(original):
        def write(self_or_images, name, obj=None, **kwargs):
            original(self_or_images, name, obj, **kwargs) if obj is not None else original(self_or_images, name, **kwargs)
            if Path(name).name == point and at_step_20(Path(name).name, obj):
                raise Interrupt
        return write

    monkeypatch.setattr(RunFolder, "write_csv", killing(RunFolder.write_csv))
    monkeypatch.setattr(RunFolder, "write_json", killing(RunFolder.write_json))
    monkeypatch.setattr(stage.report, "image_grid", killing(stage.report.image_grid))
    with pytest.raises(Interrupt):
        run(augkit.load_recipe(TINY, CHEAP), tmp_path)
    monkeypatch.undo()
    (broken,) = tmp_path.glob("tiny-*")
    assert not (broken / "metrics.json").exists()
    cli("resume", broken)
    assert "generator resumes at step 10" in (broken / "run.log").read_text()
    assert _outputs(broken) == uninterrupted


def test_an_output_folder_that_cannot_be_made_is_named_not_a_traceback(checkpoint, tmp_path, cli):
    """--out under a file (or anywhere unwritable): every command that writes says which folder and what to do."""
    blocked = tmp_path / "afile"
    blocked.write_text("user data")
    run_dir = checkpoint.parent.parent
    for command in (("run", TINY), ("data", TINY),
                    ("generate", checkpoint, "--class", "virus", "-n", "1"),
                    ("audit", run_dir / "synthetic", "--reference", run_dir / "synthetic")):
        out = cli(*command, "--out", blocked / "sub", expect=2).output
        assert f"--out {blocked / 'sub'}: cannot create this folder" in out and "Traceback" not in out, command
    assert blocked.read_text() == "user data"


def test_a_damaged_checkpoint_is_named_with_why_not_a_traceback(checkpoint, tmp_path, cli):
    """Emptied, cut short, or holding code (a pickle torch's safe loader refuses): generate and resume name the file
    and the reason, and never pass on torch's advice to load it with weights_only=False."""
    import pickle

    whole = checkpoint.read_bytes()
    damaged = {"empty": b"", "cut": whole[: len(whole) // 2], "code": pickle.dumps(Interrupt())}
    for name, content in damaged.items():
        bad = tmp_path / f"{name}.pt"
        bad.write_bytes(content)
        out = cli("generate", bad, "--class", "virus", "-n", "1", "--out", tmp_path / name, "--generator", "acgan",
                  expect=2).output
        assert f"{bad}: cannot be loaded by the 'acgan' generator (" in out and "cut short or damaged" in out, name
        assert "weights_only" not in out and "Traceback" not in out, name

    import warnings

    from augkit.stages.generator import CheckpointError, load_generator

    with warnings.catch_warnings(record=True) as said:  # torch's "Detected pickle protocol 4 ..." beside the error
        warnings.simplefilter("always")
        with pytest.raises(CheckpointError, match="holds more than tensors"):
            load_generator(augkit.get_plugin_manager().get("generator", "acgan"), tmp_path / "code.pt", "acgan")
    assert not said

    with pytest.raises(Interrupt):
        run(augkit.load_recipe(TINY), tmp_path / "runs", progress=interrupt_generator_at(15))
    (broken,) = (tmp_path / "runs").glob("tiny-*")
    (broken / "checkpoints" / "last.pt").write_bytes(damaged["code"])
    out = cli("resume", broken, expect=2).output
    assert "last.pt: cannot be loaded" in out and "start the run again" in out and "Traceback" not in out
