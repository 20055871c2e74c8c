"""Whole tiny recipes through the CLI, as a user runs them."""

import csv
import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

EXAMPLES = Path(__file__).parents[2] / "examples"
RUN_FILES = [
    "recipe.yaml",
    "environment.json",
    "metrics.json",
    "metrics.csv",
    "predictions.csv",
    "results.md",
    "losses.png",
    "losses.csv",
    "run.log",
    "data.json",
    "synthetic/manifest.csv",
    "checkpoints/last.pt",
    "checkpoints/best.pt",
    "selection.json",
    "samples/iter_000030.png",
    "samples/normal.png",
    "samples/bacteria.png",
    "samples/virus.png",
    "samples/real_virus.png",
    "report.md",
    "report.html",
    "classifier_losses.png",
    "confusion_matrices.png",
    "metrics_by_regime.png",
    "ratio_sweep.png",
    "audit.json",
    "audit/flags.csv",
    "audit/closest_pairs.png",
    "audit/distances.png",
]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    from typer.testing import CliRunner

    from augkit.cli import app

    out = tmp_path_factory.mktemp("runs")
    runs = []
    for _ in range(2):
        result = CliRunner().invoke(app, ["run", str(EXAMPLES / "tiny.yaml"), "--out", str(out)])
        assert result.exit_code == 0, (result.output, result.exception)
        runs.append((Path(result.stdout.strip().splitlines()[-1]), result))
    return runs


def test_run_writes_every_promised_file(two_runs):
    run_dir, result = two_runs[0]
    assert run_dir.is_dir() and run_dir.name.startswith("tiny-")
    for name in RUN_FILES:
        assert (run_dir / name).is_file(), name
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["classes"] == ["normal", "bacteria", "virus"]
    assert list(metrics["regimes"]) == ["real", "fake", "fake+real", "real+classic", "real+oversample",
                                        "fake+real+classic", "fake+real@1"]
    assert metrics["seeds"] == [0, 1]
    for regime, m in metrics["regimes"].items():
        assert set(m) >= {"accuracy", "precision", "recall", "f1", "confusion_matrix", "seeds", "interval"}
        # one split for every regime and seed: each run saw exactly the same real test images
        assert sum(map(sum, m["confusion_matrix"])) == 2 * sum(metrics["test_counts"])
        for run in m["runs"]:
            assert [sum(row) for row in run["confusion_matrix"]] == metrics["test_counts"]
            assert run["f1"] <= (run["precision"] + run["recall"]) / 2 + 1e-12
        assert m["f1"] <= (m["precision"] + m["recall"]) / 2 + 1e-12
        ci = m["interval"]["accuracy"]
        assert 0 <= ci["low"] <= m["accuracy"] <= ci["high"] <= 1
        assert any(c.startswith("test patients") for c in ci["covers"]) and "classifier seeds" in ci["covers"]
    compared = {(c["regime"], c["reference"]) for c in metrics["comparisons"]}
    assert {("fake+real", "real"), ("fake+real", "real+classic"), ("fake+real+classic", "real+classic"),
            ("fake+real@1", "real+oversample")} <= compared
    for c in metrics["comparisons"]:
        assert 0 < c["f1"]["p_value"] <= c["f1"]["p_holm"] <= 1
    results = (run_dir / "results.md").read_text()
    assert "| fake+real |" in results and "Holm p" in results
    assert results.index("## Verdict") < results.index("| Training data |")
    assert "fake+real vs real+classic: " in result.output  # the verdict is printed at the end
    assert "Accuracy (%)" in result.output
    # every classifier's test-set probabilities, enough to redo the analysis
    from augkit.outputs import comparisons

    saved = comparisons.read_predictions(run_dir / "predictions.csv")
    assert list(saved.runs) == list(metrics["regimes"]) and all(len(r) == 2 for r in saved.runs.values())
    assert comparisons.analyse(saved)["verdict"] == metrics["verdict"]


def test_second_run_is_a_new_folder_reusing_the_cache(two_runs):
    (first, _), (second, _) = two_runs
    assert first != second
    assert not json.loads((first / "data.json").read_text())["cache_hit"]
    assert json.loads((second / "data.json").read_text())["cache_hit"]


def test_same_recipe_same_seed_same_metrics(two_runs):
    (first, _), (second, _) = two_runs
    assert (first / "metrics.json").read_bytes() == (second / "metrics.json").read_bytes()


def test_manifest_counts_match_files(two_runs):
    run_dir, _ = two_runs[0]
    lines = (run_dir / "synthetic/manifest.csv").read_text().splitlines()
    assert lines[0].startswith("file,class,generator")
    assert len(lines) - 1 == len(list((run_dir / "synthetic").rglob("*.png"))) == 36


def test_evaluate_reruns_the_study_on_the_same_split(two_runs, cli):
    run_dir, _ = two_runs[0]
    result = cli("evaluate", run_dir, "--seeds", "1", "--regimes", "real,fake+real", "--ratios", "")
    out = Path(result.stdout.strip().splitlines()[-1])
    assert out.parent == run_dir / "evaluations"
    metrics = json.loads((out / "metrics.json").read_text())
    original = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics["regimes"]) == ["real", "fake+real"] and metrics["seeds"] == [0]
    assert metrics["test_counts"] == original["test_counts"]
    # same split, same data, same seed: the real regime's first run is reproduced exactly
    assert metrics["regimes"]["real"]["runs"][0] == original["regimes"]["real"]["runs"][0]
    assert (out / "report.html").exists() and (out / "results.md").exists()


def test_evaluate_generates_and_audits_what_larger_ratios_need(two_runs, cli):
    """@2 and @4 need more synthetic images than the run exported: evaluate makes them (new batch seeds,
    audited), so the two regimes train on different, larger sets instead of the same truncated one."""
    run_dir, _ = two_runs[0]
    result = cli("evaluate", run_dir, "--seeds", "1", "--regimes", "real", "--ratios", "2,4")
    out = Path(result.stdout.strip().splitlines()[-1])
    metrics = json.loads((out / "metrics.json").read_text())
    real = metrics["regimes"]["real"]["runs"][0]["train_images"]
    at2, at4 = (metrics["regimes"][f"fake+real@{r}"]["runs"][0]["train_images"] for r in (2, 4))
    assert at2 == pytest.approx(3 * real, abs=3) and at4 == pytest.approx(5 * real, abs=3)
    seeds = json.loads((out / "synthetic_seeds.json").read_text())
    assert seeds["extra"]["images"] > 0 and seeds["extra"]["audited"]
    assert not set(seeds["extra"]["batch_seeds"]) & set(seeds["run"]["batch_seeds"])
    audit = json.loads((out / "audit.json").read_text())  # the extra images' own audit
    assert audit and (out / "audit" / "flags.csv").is_file()


def test_evaluate_samples_again_with_a_changed_sampling_option_and_refuses_a_fixed_one(two_runs, cli):
    run_dir, _ = two_runs[0]
    result = cli("evaluate", run_dir, "--seeds", "1", "--regimes", "fake", "--ratios", "",
                 "--set", "generator.options.ema_statistics=live")
    out = Path(result.stdout.strip().splitlines()[-1])
    assert json.loads((out / "synthetic_seeds.json").read_text())["generator_options_changed"] == {
        "ema_statistics": "live"}
    page = (out / "report.html").read_text()
    assert "sampled its own with other generator options (ema_statistics live)" in page
    assert "generator options changed from the run&#x27;s" in page or "generator options changed from the run's" in page
    refused = cli("evaluate", run_dir, "--set", "generator.options.width=32", expect=2).output
    assert "generator.options.width" in refused and "cannot change once trained" in refused
    assert "Traceback" not in refused and str(run_dir / "checkpoints") not in refused


def test_evaluate_refuses_data_that_is_not_the_runs(two_runs, cli):
    run_dir, _ = two_runs[0]
    out = cli("evaluate", run_dir, "--set", "dataset.options.counts.virus=13", expect=2).output
    assert "cannot evaluate" in out and "60 images then, 61 now" in out and "Traceback" not in out


def test_report_has_every_section(two_runs):
    run_dir, _ = two_runs[0]
    page = (run_dir / "report.html").read_text()
    for section in ("Warnings", "Data", "Synthetic images", "Audit: quality and privacy of the synthetic images",
                    "Generator training", "Classifier study", "Recipe"):
        assert f">{section}</h2>" in page
    for part in ("Fidelity and diversity", "Label faithfulness", "Memorisation"):
        assert f">{part}</h3>" in page
    assert "real floor" in page
    # a summary at the top links to every section
    for section in ("Verdict", "Data", "Classifier study", "Recipe"):
        slug = section.lower().replace(" ", "-")
        assert f"<a href='#{slug}'>{section}</a>" in page and f"<h2 id='{slug}'>{section}</h2>" in page
    assert page.index("<nav>") < page.index("<h2 id='verdict'>")
    assert "data:image/png;base64," in page and "http" not in page.replace("http-equiv", "")


def test_audit_drops_unfaithful_images_and_evaluate_sees_the_same_pool(tmp_path, cli):
    result = cli("run", EXAMPLES / "tiny.yaml", "--out", tmp_path, "--set", "audit.drop_unfaithful=true",
                 "--set", "evaluation.regimes=[real,fake]", "--set", "evaluation.ratios=[]", "--set", "evaluation.seeds=1")
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    audit = json.loads((run_dir / "audit.json").read_text())
    assert audit["dropped"]["unfaithful"] > 0 and audit["dropped"]["replacements_generated"] > 0
    manifest = (run_dir / "synthetic/manifest.csv").read_text().splitlines()[1:]
    assert manifest and not any("unfaithful" in line for line in manifest)
    flags = (run_dir / "audit/flags.csv").read_text().splitlines()
    assert flags[0].startswith("seed,index,exported,class")
    assert sum(line.split(",")[2] == "1" for line in flags[1:]) == len(manifest)
    metrics = json.loads((run_dir / "metrics.json").read_text())
    evaluation = Path(cli("evaluate", run_dir).stdout.strip().splitlines()[-1])
    again = json.loads((evaluation / "metrics.json").read_text())
    # the same kept synthetic images, regenerated from their seeds: the fake regime is reproduced exactly
    assert again["regimes"]["fake"]["runs"] == metrics["regimes"]["fake"]["runs"]


def test_generator_seeds_train_the_generator_again_and_the_intervals_cover_it(tmp_path, cli):
    result = cli("run", EXAMPLES / "tiny.yaml", "--out", tmp_path, "--set", "evaluation.generator_seeds=2",
                 "--set", "evaluation.regimes=[real,fake+real]", "--set", "evaluation.ratios=[]")
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    extra = run_dir / "generators" / "seed-1000"
    assert (extra / "checkpoints" / "best.pt").is_file() and (extra / "synthetic" / "manifest.csv").is_file()
    assert (extra / "checkpoints" / "best.pt").read_bytes() != (run_dir / "checkpoints" / "best.pt").read_bytes()
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["generator_seeds"] == [0, 1000]
    runs = metrics["regimes"]["fake+real"]["runs"]
    assert [(r["generator_seed"], r["seed"]) for r in runs] == [(0, 0), (0, 1), (1000, 0), (1000, 1)]
    assert len(metrics["regimes"]["real"]["runs"]) == 2  # no generator, no extra trainings
    [row] = metrics["comparisons"]
    assert "generator and classifier seeds" in row["f1"]["covers"] and metrics["not_covered"] == []
    # one generator: the report says which variance the verdict leaves out
    one = json.loads((Path(cli("evaluate", run_dir, "--set", "evaluation.generator_seeds=1").stdout.strip()
                           .splitlines()[-1]) / "metrics.json").read_text())
    assert one["not_covered"] and "generator training variance" in one["not_covered"][0]
    refused = cli("evaluate", run_dir, "--set", "evaluation.generator_seeds=3", expect=2).output
    assert "has no generator trained with seed 2000" in refused


def test_the_synthetic_set_carries_a_dataset_card(two_runs):
    run_dir, _ = two_runs[0]
    card = json.loads((run_dir / "synthetic" / "dataset_card.json").read_text())
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert card["images"] == {"total": 36, "per_class": {"normal": 12, "bacteria": 12, "virus": 12}}
    assert card["generator"]["generator"] == "acgan" and len(card["generator"]["checkpoint_sha256"]) == 64
    assert card["training_data"]["splits"]["train"]["images"] == metrics["regimes"]["real"]["runs"][0]["train_images"]
    audit = card["audit"]
    assert set(audit["per_class"]) == {"normal", "bacteria", "virus"}
    assert {"synthetic", "real_floor"} == set(audit["overall"]["recall"])
    assert "too few images" in audit["per_class"]["virus"]["note"]  # tiny: per class, the audit says why not
    assert audit["near_copies"] is not None and audit["label_faithfulness"]["overall"] is not None
    run_audit = json.loads((run_dir / "audit.json").read_text())["diversity"]["per_class"]
    keys = ("synthetic", "real", "ratio", "ratio_interval")
    assert {c: [f[k] for k in keys] for c, f in audit["intra_class_diversity"].items()} == {
        c: [f[k] for k in keys] for c, f in run_audit.items()}  # each class's pixel diversity, its ratio, interval
    assert all(f["ratio_interval"] for f in run_audit.values())  # 12 images a class: every pair, so an interval
    assert card["study"]["verdict"] == metrics["verdict"] and card["licence"] is None
    # the warnings on these figures travel with them (a tiny test split always draws one)
    assert card["study"]["warnings"] == metrics["warnings"] and any("test split" in w for w in metrics["warnings"])
    run_warnings = (run_dir / "warnings.txt").read_text().splitlines()
    assert audit["warnings"] == [w for w in run_warnings if w.startswith("audit:")]
    text = (run_dir / "synthetic" / "DATASET_CARD.md").read_text()
    assert all(f"- {w}" in text for w in metrics["warnings"] + audit["warnings"])
    for section in ("## Generator", "## Training data", "## Audit: quality and privacy", "## What the study found",
                    "## Intended use", "## Limits", "## Licence"):
        assert section in text
    assert metrics["verdict"][0] in text and "Intra-class diversity" in text
    low, high = run_audit["virus"]["ratio_interval"]
    assert f"virus {run_audit['virus']['synthetic']:.3f} (real {run_audit['virus']['real']:.3f}; " \
           f"{run_audit['virus']['ratio']:.2f}x as varied, 95 % interval {low:.2f}-{high:.2f})" in text
    # no path, no identifier: nothing of the machine's folders, no patient group
    blob = json.dumps(card) + text
    assert str(run_dir.parent) not in blob and "/tmp" not in blob and "root" not in card["training_data"]


def test_a_run_writes_tensorboard_events_with_the_generator_and_classifier_curves(two_runs):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    run_dir, _ = two_runs[0]
    events = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    tags = events.Tags()
    scalars = set(tags["scalars"])
    assert {"generator/d_loss", "generator/g_loss", "selection/score"} <= scalars
    assert {"classifier/fake+real/s1/val_loss", "classifier/real+classic/s0/train_loss"} <= scalars
    assert "classifier/real/s0/val_loss" in scalars  # the audit's classifier, reused as real s0: its curves too
    assert "audit/all/synthetic/recall" in scalars and "audit/near_copies" in scalars
    logged = [int(r["step"]) for r in csv.DictReader(open(run_dir / "losses.csv"))]
    assert [e.step for e in events.Scalars("generator/d_loss")] == logged  # every row losses.csv has
    assert [e.step for e in events.Images(tags["images"][0])] == [10, 20, 30]  # a grid at each checkpoint
