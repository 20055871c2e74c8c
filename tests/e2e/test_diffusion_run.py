"""The diffusion generator through the whole pipeline, as a user runs it: augkit run, then augkit generate."""

import json
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

TINY = Path(__file__).parents[2] / "examples" / "tiny.yaml"
DIFFUSION = {"name": "diffusion", "options": {"widths": [16, 16], "attention": [False, True], "head_channels": 16,
                                              "norm_groups": 8, "iterations": 20, "batch_size": 16,
                                              "sampling_steps": 4}}


def test_a_diffusion_run_is_selected_audited_studied_and_generates(tmp_path, cli):
    result = cli("run", TINY, "--out", tmp_path / "runs", "--set", f"generator={json.dumps(DIFFUSION)}",
                 "--set", "evaluation.seeds=1", "--set", "evaluation.regimes=[real, fake+real]",
                 "--set", "evaluation.ratios=[]")
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    selection = json.loads((run_dir / "selection.json").read_text())
    assert [s["step"] for s in selection["scores"]] == [10, 20]  # the judge scored every checkpoint
    audit = json.loads((run_dir / "audit.json").read_text())
    assert set(audit["diversity"]["per_class"]) == {"normal", "bacteria", "virus"}
    assert set(json.loads((run_dir / "metrics.json").read_text())["regimes"]) == {"real", "fake+real"}
    card = json.loads((run_dir / "synthetic" / "dataset_card.json").read_text())
    assert card["generator"]["generator"] == "diffusion"

    out = tmp_path / "generated"
    cli("generate", run_dir / "checkpoints" / selection["used"], "--class", "virus", "-n", "5", "--seed", "2", "--out", out)
    assert len(list(out.rglob("*.png"))) == 5

    # a sampling option changed at evaluation: the pool is sampled again with it (and audited), not the run's
    # images re-used under a recipe that says otherwise
    result = cli("evaluate", run_dir, "--seeds", "1", "--regimes", "fake", "--ratios", "",
                 "--set", "generator.options.guidance=3")
    again = Path(result.stdout.strip().splitlines()[-1])
    seeds = json.loads((again / "synthetic_seeds.json").read_text())
    assert seeds["generator_options_changed"] == {"guidance": 3.0}
    assert seeds["run"]["images"] == 0 and seeds["extra"]["images"] == 36 and seeds["extra"]["audited"]
    assert "guidance: 3.0" in (again / "recipe.yaml").read_text()
    same = Path(cli("evaluate", run_dir, "--seeds", "1", "--regimes", "fake", "--ratios", "").stdout
                .strip().splitlines()[-1])
    assert "generator_options_changed" not in json.loads((same / "synthetic_seeds.json").read_text())
    # what the network was trained as cannot change: a clear error naming the option, no traceback
    out = cli("evaluate", run_dir, "--set", "generator.options.widths=[32,32]", expect=2).output
    assert "generator.options.widths" in out and "cannot change once trained" in out and "Traceback" not in out
