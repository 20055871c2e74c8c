"""``torchrun --nproc_per_node 2 -m augkit ...`` on CPUs (gloo), against one process.

generate: the same files, byte for byte. run: every file of a run, the same metrics for the
regimes without synthetic images (the generator itself matches within a tolerance: dropout
masks differ per rank). evaluate: the same metrics; with every classifier trained over both
processes (DDP), the same training losses to float rounding. Two "machines" (torchrun's
multi-node rendezvous on this host): generate writes the files of one process; a run folder
they do not share is refused. A failing rank: a message naming it, the last checkpoint intact,
and ``resume`` with two processes ends where an uninterrupted run ends.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

import pytest
import torch

import augkit
from augkit.runner import run

pytestmark = pytest.mark.e2e

TINY = Path(__file__).parents[2] / "examples" / "tiny.yaml"
WITHOUT_SYNTHETIC = ("real", "real+classic", "real+oversample")
FAIL_AT_STEP_15_ON_RANK_1 = """
import os, sys
from augkit_plugins.acgan import acgan

fit = acgan.ACGAN.fit

def failing_fit(self, train, *, seed=0):
    for row in fit(self, train, seed=seed):
        if os.environ["RANK"] == "1" and row["step"] == 15:
            raise RuntimeError("injected failure at step 15")
        yield row

acgan.ACGAN.fit = failing_fit
sys.argv = ["augkit", *sys.argv[1:]]
from augkit.cli import main
main()
"""


@contextmanager
def rank_threads(per_machine: int = 2):
    """This process with the threads each rank has (cores // processes on its machine, as
    ``distributed.init`` gives them): float results on CPUs depend on the thread count (oneDNN and
    MKL split their sums by thread), so this is the one process to match."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, len(os.sched_getaffinity(0)) // per_machine))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def torchrun(*args, cwd: Path, ok: bool = True) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
               *map(str, args)]
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "COLUMNS": "160", "NO_COLOR": "1"})
    assert (result.returncode == 0) == ok, (result.returncode, result.stdout[-3000:], result.stderr[-6000:])
    return result


def files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def losses(run_dir: Path) -> list[dict]:  # every logged value but the wall time
    return [{k: v for k, v in r.items() if k != "sec_per_iter"} for r in csv.DictReader(open(run_dir / "losses.csv"))]


@pytest.fixture
def tiny_gan(tmp_path, tiny_images) -> Path:
    """A tiny trained AC-GAN's checkpoint."""
    from augkit_plugins.acgan import ACGAN

    gan = ACGAN(image_size=16, width=8, iterations=2, batch_size=4)
    list(gan.fit(tiny_images, seed=0))
    gan.save(tmp_path / "g.pt")
    return tmp_path / "g.pt"


def test_generate_with_two_processes_writes_the_files_of_one(tmp_path, cli, tiny_gan):
    args = ["generate", tiny_gan, "--class", "b", "-n", "70", "--batch-size", "16", "--seed", "3"]
    torchrun("-m", "augkit", *args, "--out", tmp_path / "two", cwd=tmp_path)
    with rank_threads():
        cli(*args, "--out", tmp_path / "one")
    one, two = files(tmp_path / "one"), files(tmp_path / "two")
    assert len(one) == 74 and one == two  # 70 PNGs, manifest.csv, classes.json and the card (.md, .json), byte for byte


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The tiny recipe in one process, and through torchrun with two."""
    base = tmp_path_factory.mktemp("torchrun")
    with rank_threads():
        one = run(augkit.load_recipe(TINY), base / "one")
    result = torchrun("-m", "augkit", "run", TINY, "--out", base / "two", cwd=base)
    two = Path(result.stdout.strip().splitlines()[-1])
    assert two.parent == base / "two"
    return one, two, result


def test_torchrun_run_writes_every_file_one_process_writes(runs):
    one, two, result = runs
    # TensorBoard's event files are named after the host, the process and the time
    written = [{f for f in files(d) if not f.startswith(("evaluations/", "tensorboard/"))} for d in (one, two)]
    assert written[0] == written[1]
    assert json.loads((two / "environment.json").read_text())["distributed"] == {"world_size": 2, "backend": "gloo"}
    assert "Accuracy (%)" in result.stderr  # rank 0 printed the table, once
    assert result.stderr.count("Accuracy (%)") == 1


def test_torchrun_run_gives_the_metrics_of_one_process(runs):
    one, two, _ = runs
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert list(m2["regimes"]) == list(m1["regimes"]) and m2["test_counts"] == m1["test_counts"]
    for regime in WITHOUT_SYNTHETIC:  # the study itself: identical, trainings spread over the ranks
        assert m2["regimes"][regime] == m1["regimes"][regime], regime
    rows1, rows2 = losses(one), losses(two)  # the generator: the same steps, losses within a tolerance
    assert [r["step"] for r in rows2] == [r["step"] for r in rows1]
    for a, b in zip(rows1, rows2):
        for key in ("d_loss", "g_loss"):
            assert abs(float(a[key]) - float(b[key])) < 0.25 * abs(float(a[key])) + 0.1, (key, a, b)
    seeds = [[r["seed"] for r in csv.DictReader(open(d / "synthetic" / "manifest.csv"))] for d in (one, two)]
    assert seeds[0] == seeds[1]


def test_torchrun_evaluate_gives_the_metrics_of_one_process(runs, cli):
    one, _, _ = runs
    args = ["evaluate", one, "--seeds", "2", "--regimes", "real,fake+real", "--ratios", ""]
    with rank_threads():
        single = Path(cli(*args).stdout.strip().splitlines()[-1])
    two = Path(torchrun("-m", "augkit", *args, cwd=one.parent).stdout.strip().splitlines()[-1])
    assert two != single and two.parent == single.parent
    assert (two / "metrics.json").read_text() == (single / "metrics.json").read_text()


def test_torchrun_evaluate_can_train_each_classifier_over_both_processes(runs, cli):
    one, _, _ = runs
    args = ["evaluate", one, "--seeds", "1", "--regimes", "real,fake+real", "--ratios", "",
            "--set", "classifier.options.drop_rate=0"]  # without dropout: one process's training to float rounding
    with rank_threads():
        single = Path(cli(*args).stdout.strip().splitlines()[-1])
    two = Path(torchrun("-m", "augkit", *args, "--set", "evaluation.distribute=ddp", cwd=one.parent)
               .stdout.strip().splitlines()[-1])
    assert "each run over all 2 processes (DDP)" in (two / "run.log").read_text()
    rows1, rows2 = (list(csv.DictReader(open(d / "classifier_losses.csv"))) for d in (single, two))
    assert [(r["regime"], r["step"]) for r in rows2] == [(r["regime"], r["step"]) for r in rows1]
    for a, b in zip(rows1, rows2):
        for key in ("train_loss", "val_loss"):
            assert float(b[key]) == pytest.approx(float(a[key]), rel=1e-3, abs=1e-4), (key, a, b)
    assert json.loads((two / "metrics.json").read_text())["test_counts"] == json.loads(
        (single / "metrics.json").read_text())["test_counts"]


def test_torchrun_run_with_every_classifier_over_both_processes(tmp_path):
    # the audit's classifier trains over both processes, the study scores it as real / seed 0 and
    # trains fake+real over both processes
    result = torchrun("-m", "augkit", "run", TINY, "--out", tmp_path, "--set", "evaluation.distribute=ddp",
                      "--set", "evaluation.seeds=1", "--set", "evaluation.regimes=[real, fake+real]",
                      "--set", "evaluation.ratios=[]", cwd=tmp_path)
    run_dir = Path(result.stdout.strip().splitlines()[-1])
    log = (run_dir / "run.log").read_text()
    assert "audit: the feature extractor trains over all 2 processes (DDP)" in log
    assert "the 2 classifier trainings each run over all 2 processes (DDP)" in log
    assert "real, seed 0: the audit's classifier" in log
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert list(metrics["regimes"]) == ["real", "fake+real"]
    rows = list(csv.DictReader(open(run_dir / "classifier_losses.csv")))
    assert {r["regime"] for r in rows} == {"real", "fake+real"}
    assert result.stderr.count("Accuracy (%)") == 1


def two_machines(*args, cwds: list[Path], timeout: int = 240) -> list[subprocess.CompletedProcess]:
    """torchrun's multi-node form, as on two machines of one process each: a c10d rendezvous on this host."""
    from augkit.compute.distributed import free_port

    port = free_port()
    command = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1",
               "--rdzv-backend", "c10d", "--rdzv-endpoint", f"127.0.0.1:{port}", "--rdzv-id", "augkit-test",
               *map(str, args)]
    env = {**os.environ, "COLUMNS": "160", "NO_COLOR": "1", "OMP_NUM_THREADS": "1"}
    nodes = [subprocess.Popen(command, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for cwd in cwds]
    out = []
    for node in nodes:
        stdout, stderr = node.communicate(timeout=timeout)
        out.append(subprocess.CompletedProcess(command, node.returncode, stdout, stderr))
    return out


def test_two_machines_generate_the_files_of_one_process(tmp_path, cli, tiny_gan):
    args = ["generate", tiny_gan, "--class", "a", "-n", "40", "--batch-size", "8", "--seed", "5"]
    nodes = two_machines("-m", "augkit", *args, "--out", tmp_path / "two", cwds=[tmp_path, tmp_path])
    assert [n.returncode for n in nodes] == [0, 0], [n.stderr[-3000:] for n in nodes]
    with rank_threads(per_machine=1):  # each "machine" ran one process
        cli(*args, "--out", tmp_path / "one")
    assert files(tmp_path / "one") == files(tmp_path / "two")


def test_a_run_folder_the_machines_do_not_share_is_refused_before_any_work(tmp_path):
    # "runs" is relative: each "machine" resolves it in its own working directory, as on two hosts
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(), b.mkdir()
    nodes = two_machines("-m", "augkit", "run", TINY, "--out", "runs", cwds=[a, b])
    assert [n.returncode for n in nodes] != [0, 0]
    said = "".join(n.stderr for n in nodes)
    assert "cannot see runs/tiny-" in said and "must be on a filesystem every machine shares" in said
    assert not list(tmp_path.glob("*/runs/*"))  # nothing done, nothing left


def test_a_failing_rank_stops_the_run_and_resume_continues_it(runs, tmp_path, cli):
    _, uninterrupted, _ = runs
    script = tmp_path / "failing.py"
    script.write_text(FAIL_AT_STEP_15_ON_RANK_1)
    result = torchrun(script, "run", TINY, "--out", tmp_path, "--set", "evaluation.seeds=1",
                      "--set", "evaluation.regimes=[real]", "--set", "evaluation.ratios=[]", cwd=tmp_path, ok=False)
    assert "augkit: rank 1 of 2 failed: RuntimeError: injected failure at step 15" in result.stderr
    (broken,) = tmp_path.glob("tiny-*")
    from augkit_plugins.acgan import ACGAN

    assert ACGAN.load(broken / "checkpoints" / "last.pt").step == 10  # the last complete checkpoint
    assert not (broken / "metrics.json").exists()
    alone = tmp_path / "alone" / broken.name
    shutil.copytree(broken, alone)

    cli("resume", alone)  # one process continues what two started
    assert "generator resumes at step 10" in (alone / "run.log").read_text()
    assert [r["step"] for r in losses(alone)] == ["10", "20", "30"] and (alone / "metrics.json").exists()

    resumed = torchrun("-m", "augkit", "resume", broken, cwd=tmp_path)
    assert resumed.stdout.strip().splitlines()[-1] == str(broken)
    assert "generator resumes at step 10" in (broken / "run.log").read_text()
    assert (broken / "metrics.json").exists()
    # dropout masks follow (seed, step, rank): resumed, the run draws what the uninterrupted one drew
    assert losses(broken) == losses(uninterrupted)


def test_a_batch_the_processes_cannot_share_is_refused_before_any_work(tmp_path):
    result = torchrun("-m", "augkit", "run", TINY, "--out", tmp_path / "runs",
                      "--set", "generator.options.batch_size=15", cwd=tmp_path, ok=False)
    assert "rank 0 of 2: generator.options.batch_size 15 is not divisible by the 2 processes" in result.stderr
    assert not (tmp_path / "runs").exists()
