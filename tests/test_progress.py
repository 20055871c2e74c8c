"""The progress display reads at 80 columns: stage, step / total, time left and the numbers that matter, whole."""

import io
import re

import pytest
from rich.console import Console

from augkit.outputs.progress import rich_progress


def _render(width: int, description: str, rows: list[dict], total: int) -> str:
    buf = io.StringIO()
    console = Console(file=buf, width=width, force_terminal=True, color_system=None)
    list(rich_progress(console)(rows, description, total))
    lines = [re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", line) for line in buf.getvalue().replace("\r", "\n").splitlines()]
    return [line for line in lines if line.strip()][-1]


GENERATOR = [{"step": s, "d_loss": 2.7512, "g_loss": 0.9634, "d_real_acc": 0.375, "d_fake_acc": 0.5, "lr": 0.0002}
             for s in (500, 1000, 1500, 2000)]
CLASSIFIER = [{"step": e, "train_loss": 0.8441, "val_loss": 0.9102, "val_acc": 0.625, "optimizer_steps": 13 * e}
              for e in range(1, 21)]


@pytest.mark.parametrize("description, rows, total, numbers", [
    ("train generator", GENERATOR, 2000, ["d_loss 2.75", "g_loss 0.963"]),
    ("fake+real+classic s1", CLASSIFIER, 20, ["train_loss 0.844", "val_loss 0.91"]),
    ("audit: feature extractor", CLASSIFIER, 20, ["train_loss 0.844"]),
])
def test_progress_at_80_columns_shows_everything_that_matters_uncut(description, rows, total, numbers):
    line = _render(80, description, rows, total)
    assert len(line) <= 80 and "…" not in line and "..." not in line
    assert line.startswith(description) and f"{total}/{total}" in line and re.search(r"eta \d+:\d\d:\d\d", line)
    for number in numbers:
        assert number in line


def test_a_training_stopped_early_ends_as_a_finished_bar_not_a_cut_one():
    """Early stopping at epoch 18 of 30 left "18/30" on screen, which reads like an interrupted training."""
    line = _render(100, "real s0", CLASSIFIER[:18], 30)
    assert "18/18" in line and "stopped at 18 of 30" in line and "18/30" not in line
    assert "20/20" in _render(100, "real s0", CLASSIFIER, 20)  # one that ran to its total says nothing more
    assert "stopped" not in _render(100, "train generator", [], 2000)  # resumed after training: nothing to say


def test_wider_terminals_show_more():
    narrow, wide = _render(80, "train generator", GENERATOR, 2000), _render(140, "train generator", GENERATOR, 2000)
    assert "d_real_acc" not in narrow and "d_real_acc 0.375" in wide and "…" not in wide


def test_without_tensorboard_a_run_writes_a_note_and_no_event_files(tmp_path, monkeypatch, caplog):
    import sys

    from augkit.outputs import tensorboard

    monkeypatch.setitem(sys.modules, "torch.utils.tensorboard", None)  # as if the package were not installed
    monkeypatch.setattr(tensorboard.Board, "_noted", False)
    with caplog.at_level("INFO", logger="augkit"):
        board = tensorboard.Board(tmp_path)
        board.scalars("generator", {"step": 1, "d_loss": 0.5}, 1)
        board.close()
    assert board.writer is None and not (tmp_path / "tensorboard").exists()
    assert "pip install 'augkit[tensorboard]'" in caplog.text


def _recording(seen: dict):
    """A renderer that notes (items done, total) per bar, as a bar's own update does: after each item,
    when the caller asks for the next one."""
    def progress(iterable, description="", total=None):
        done = 0
        for item in iterable:
            yield item
            done += 1
            seen[description] = (done, total)
    return progress


def test_the_preprocessing_bar_ends_at_its_total():
    import augkit
    from augkit.stages.data import _preprocess_all

    source = augkit.build("dataset", "chest-phantom", counts={"normal": 3, "bacteria": 3, "virus": 2})
    prep = augkit.build("preprocessor", "paper", image_size=16)
    seen = {}
    _preprocess_all(source, prep, _recording(seen), strict=False, workers=1)
    assert seen["preprocess"] == (8, 8)  # the loop used to stop asking after the last image: 7/8 stayed on screen


def test_feature_extractors_give_their_training_bar_a_total():
    import augkit

    real = augkit.build("feature_extractor", "real-classifier", classifier_options={"epochs": 3, "min_epochs": 1})
    assert real.total_steps == 3  # its classifier's epochs ("18/?" before)
    assert augkit.build("feature_extractor", "small-cnn", steps=5).total_steps == 5
    assert augkit.build("feature_extractor", "pixels").total_steps is None  # nothing to train
