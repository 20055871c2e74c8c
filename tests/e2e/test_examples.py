"""The examples run as a user runs them."""

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).parents[2]


def run_example(script: str, *args: str, timeout: int = 300) -> str:
    result = subprocess.run([sys.executable, str(ROOT / "examples" / script), *args], capture_output=True, text=True,
                            timeout=timeout, cwd=ROOT)
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_library_example():
    out = run_example("library.py")
    assert "synthetic virus images: (8, 1, 32, 32)" in out and "| real |" in out


def test_monai_pipeline_example():
    out = run_example("monai_pipeline.py", "--smoke")  # every step in 20 s; the whole example takes 44 s
    assert "AC-GAN step 100" in out and "DenseNet121 epoch 1" in out and "epoch 2" not in out
    assert "real test split (46 images): accuracy" in out


@pytest.mark.skipif(importlib.util.find_spec("augkit_wgan") is None,
                    reason="examples/augkit-wgan is not installed (the README's test command installs it)")
def test_third_party_generator_runs_a_recipe_by_name(tmp_path, cli):
    from augkit.extension.registry import get_plugin_manager

    info = {(i.role, i.name): i for i in get_plugin_manager().all()}[("generator", "wgan-gp")]
    assert info.distribution == "augkit-wgan"
    result = cli("run", ROOT / "examples" / "augkit-wgan" / "tiny-wgan.yaml", "--out", tmp_path,
                 "--set", "evaluation.seeds=1", "--set", "evaluation.regimes=[real,fake+real]", "--set", "evaluation.ratios=[]")
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    assert (run_dir / "metrics.json").exists()
    assert "wgan-gp" in (run_dir / "recipe.yaml").read_text()
