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
