"""Hostile and broken inputs, one promise per test: no path in a reason, names that cannot become paths,
header caps before decoding, empty classes left out, one process per run folder, safe defaults."""

import logging
import os
from pathlib import Path

import numpy as np
import pydicom
import pytest
import torch
from PIL import Image

import augkit
from augkit.extension.names import check_class_name, inside, path_free
from augkit_plugins.dicom import Dicom
from augkit_plugins.dicom.testing import write_dicom
from augkit_plugins.image_folder import ImageFolder

PATIENT = "SMITH_JOHN_MRN-12345"


def test_path_free_takes_paths_out_of_reasons_and_leaves_the_rest():
    assert path_free(f"[Errno 2] No such file or directory: '/data/DOE_JANE0/{PATIENT}.dcm'") == \
        "[Errno 2] No such file or directory: '<path>'"
    assert path_free(f"cannot read DOE_JANE0/{PATIENT}.png now") == "cannot read <path> now"
    assert path_free("not a readable JPEG/PNG/BMP/TIFF image") == "not a readable JPEG/PNG/BMP/TIFF image"
    assert path_free("see ./a/b and ~/x") == "see <path> and <path>"


@pytest.mark.parametrize("bad", ["../../../escaped", "a/b", "a\\b", ".", "..", ".hidden", "", " padded", "tab\there"])
def test_class_names_that_could_become_paths_are_refused(bad):
    with pytest.raises(ValueError, match="label_map.yes: .* is not a usable class name"):
        check_class_name(bad, "label_map.yes")


def test_names_are_checked_where_they_enter(tmp_path):
    root = tmp_path / "data"
    for c in ("yes", "no"):
        (root / c).mkdir(parents=True)
        Image.fromarray(np.full((16, 16), 100, np.uint8)).save(root / c / "a.png")
    with pytest.raises(ValueError, match="label_map.yes: '../x' is not a usable class name"):
        ImageFolder(root=root, label_map={"yes": "../x", "no": "no"})
    with pytest.raises(ValueError, match="class_order: 'a/b' is not a usable class name"):
        ImageFolder(root=root, class_order=["a/b", "no"])
    dicoms = _dicoms(tmp_path)
    (dicoms / "labels.csv").write_text("path,label\nyes,../up\nno,no\n")
    with pytest.raises(ValueError, match="labels.csv line 2: label: '../up' is not a usable class name"):
        list(Dicom(root=dicoms, labels_csv="labels.csv").samples())
    with pytest.raises(ValueError, match="class_order: '.x' is not a usable class name"):
        Dicom(root=dicoms, class_order=[".x", "no"])
    assert inside(tmp_path, "a", "b.png") == tmp_path / "a" / "b.png"
    with pytest.raises(ValueError, match="outside its folder"):
        inside(tmp_path / "export", "..", "..", "x.png")


def _dicoms(tmp_path):
    root = tmp_path / "dicom"
    for c in ("yes", "no"):
        (root / c).mkdir(parents=True)
        write_dicom(root / c / "a.dcm", np.zeros((16, 16), np.uint16))
    return root


def test_a_relative_labels_csv_is_read_from_the_data_root_first(tmp_path, monkeypatch):
    root = _dicoms(tmp_path)
    (root / "labels.csv").write_text("path,label\nyes,pos\nno,neg\n")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labels.csv").write_text("path,label\nyes,other\nno,other2\n")  # a stray file in the current folder
    assert Dicom(root=root, labels_csv="labels.csv").classes == ["neg", "pos"]


def _folder(tmp_path, empty=("maybe",)):
    root = tmp_path / "data"
    for c in ("yes", "no"):
        (root / c).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((16, 16), 60 * i + 20, np.uint8)).save(root / c / f"{i}.png")
    for c in empty:
        (root / c).mkdir()
    return root


def test_an_empty_class_is_left_out_and_strict_mode_stops(tmp_path, caplog):
    from augkit.stages.data import DataError, load_and_preprocess

    root = _folder(tmp_path)
    source, prep = ImageFolder(root=root), augkit.build("preprocessor", "paper", image_size=16)
    with caplog.at_level(logging.WARNING, logger="augkit"):
        loaded = load_and_preprocess(source, prep, source_name="image-folder", prep_name="paper", cache_dir=None)
    assert loaded.data.classes == ["no", "yes"] and loaded.dropped_classes == ["maybe"]
    assert loaded.data.labels.tolist() == [0, 0, 0, 1, 1, 1]
    assert "class maybe has no usable image: left out" in caplog.text
    with pytest.raises(DataError, match="strict mode stops"):
        load_and_preprocess(source, prep, source_name="image-folder", prep_name="paper", cache_dir=None, strict=True)


def test_a_fifo_and_a_dangling_link_are_skipped_without_hanging(tmp_path):
    root = _folder(tmp_path, empty=())
    os.mkfifo(root / "yes" / f"{PATIENT}.png")
    os.symlink(tmp_path / "nowhere.png", root / "no" / f"{PATIENT}.png")
    source = ImageFolder(root=root)
    reasons = {}
    for s in source.samples():
        try:
            s.load()
        except ValueError as exc:
            reasons[s.key] = str(exc)
    assert sorted(reasons.values()) == ["not a regular file (a FIFO, socket or device): not read",
                                        "the file is gone or is a dangling link"]
    assert source.fingerprint()  # hashing the files for the cache does not block on the FIFO either


def test_a_symlinked_class_folder_is_followed_once(tmp_path):
    root = _folder(tmp_path, empty=())
    elsewhere = tmp_path / "elsewhere"
    (elsewhere / "sub").mkdir(parents=True)
    Image.fromarray(np.full((16, 16), 90, np.uint8)).save(elsewhere / "sub" / "x.png")
    os.symlink(elsewhere, root / "yes" / "linked")
    os.symlink(root / "yes", root / "yes" / "loop")  # a loop ends
    keys = [s.key for s in ImageFolder(root=root, reveal_file_names=True).samples()]
    assert "yes/linked/sub/x.png" in keys and len(keys) == 7


def test_only_the_decoder_the_extension_names_runs_and_pixel_caps_apply_before_decoding(tmp_path):
    from augkit_plugins._files import read_image

    eps = tmp_path / "scan.png"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\nshowpage\n")
    with pytest.raises(ValueError, match="the file is not a PNG image, as its extension says"):
        read_image(str(eps))
    jpeg_as_png = tmp_path / "photo.png"
    Image.fromarray(np.full((16, 16), 9, np.uint8)).save(jpeg_as_png, format="JPEG")
    with pytest.raises(ValueError, match="not a PNG image"):
        read_image(str(jpeg_as_png))
    big = tmp_path / "big.png"
    Image.new("L", (300, 300)).save(big)
    with pytest.raises(ValueError, match="300x300 pixels, more than the cap of 10,000"):
        read_image(str(big), max_pixels=10_000)
    assert read_image(str(big)).shape == (300, 300)


def test_float_images_with_nan_are_refused_not_turned_grey(tmp_path):
    root = _folder(tmp_path, empty=())
    nan = np.full((16, 16), 0.5, np.float32)
    nan[3:6, 3:6] = np.nan
    Image.fromarray(nan, mode="F").save(root / "yes" / "nan.tif")
    from augkit.stages.data import prepare_one

    prep = augkit.build("preprocessor", "paper", image_size=16)
    sample = next(s for s in ImageFolder(root=root, reveal_file_names=True).samples() if s.key == "yes/nan.tif")
    image, reason = prepare_one(sample, prep)
    assert image is None and "NaN" in reason


@pytest.mark.parametrize("frames, message", [("999999", "NumberOfFrames 999999 is outside 1..2000"),
                                             ("1e400", "NumberOfFrames .* is not a frame count")])
def test_a_bogus_frame_count_is_refused_from_the_header(tmp_path, frames, message):
    root = tmp_path / "dicom"
    (root / "a").mkdir(parents=True)
    (root / "b").mkdir(parents=True)
    write_dicom(root / "a" / "good.dcm", np.zeros((16, 16), np.uint16))
    write_dicom(root / "b" / "good.dcm", np.zeros((16, 16), np.uint16))
    path = write_dicom(root / "a" / "bomb.dcm", np.zeros((16, 16), np.uint16))
    ds = pydicom.dcmread(path)
    ds.NumberOfFrames = "77777"  # then the raw bytes: pydicom itself refuses to set 1e400
    ds.save_as(path)
    path.write_bytes(path.read_bytes().replace(b"77777 ", frames.ljust(6).encode()))
    samples = {s.key: s for s in Dicom(root=root, reveal_file_names=True).samples()}
    assert len(samples) == 3  # one sample for the bad file, not a million
    with pytest.raises(ValueError, match=message):
        samples["a/bomb.dcm"].load()


def test_pydicom_logs_nothing_through_the_root_logger():
    from augkit_plugins.dicom import pixels

    assert pixels.quiet and logging.getLogger("pydicom").getEffectiveLevel() >= logging.CRITICAL


def test_one_process_at_a_time_in_a_run_folder(tmp_path):
    from augkit.outputs.run_folder import FolderInUse, RunFolder

    folder = RunFolder(tmp_path)
    with folder.lock():
        with pytest.raises(FolderInUse, match="another augkit process is working in"):
            with RunFolder(tmp_path).lock():
                pass
    with folder.lock():  # released
        pass
    (tmp_path / ".metrics.json.abc.tmp").write_text("{")
    assert folder.remove_stale_temporaries() == 1 and not list(tmp_path.glob("*.tmp"))


def test_safe_defaults_tracebacks_without_locals_and_a_torch_without_the_weights_only_bypass():
    import tomllib

    from augkit.cli import app

    assert app.pretty_exceptions_show_locals is False
    deps = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["dependencies"]
    assert any(d.replace(" ", "").startswith("torch>=2.6") for d in deps)
    assert tuple(int(x) for x in torch.__version__.split(".")[:2]) >= (2, 6)


def test_figures_are_written_owner_only(tmp_path):
    from augkit.outputs import report

    report.image_grid(torch.zeros(4, 1, 8, 8), tmp_path / "g.png", title="real: x")
    assert (tmp_path / "g.png").stat().st_mode & 0o077 == 0


class KillsItsWorker(augkit.Preprocessor):
    """A preprocessor whose process dies (as if killed for memory) on the one image of value 77."""

    def __call__(self, image):
        if int(image.mean()) == 77:
            os.kill(os.getpid(), 9)
        return np.full((1, 16, 16), image.mean() / 255 * 2 - 1, np.float32)


def test_a_worker_killed_by_one_file_skips_that_file_not_the_run(tmp_path):
    from augkit.stages.data import load_and_preprocess

    root = tmp_path / "data"
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(40):
            value = 77 if (c, i) == ("a", 13) else 10 + i
            Image.fromarray(np.full((16, 16), value, np.uint8)).save(root / c / f"{i:02d}.png")
    loaded = load_and_preprocess(ImageFolder(root=root, reveal_file_names=True), KillsItsWorker(image_size=16),
                                 source_name="image-folder", prep_name="killer", cache_dir=None, workers=2)
    assert len(loaded.data) == 79
    assert loaded.skipped == [("a/13.png", "the process reading it died (killed for using too much memory, or a "
                                           "crash in the decoder)")]
    assert sorted(set(loaded.data.images[:, 0, 0, 0].mul(255 / 2).add(255 / 2).round().int().tolist())) == \
        sorted({10 + i for i in range(40)})


def test_an_unreadable_folder_is_reported_without_its_path(tmp_path, monkeypatch, caplog):
    from augkit_plugins._files import discovery

    root = _folder(tmp_path, empty=())
    (root / "yes" / f"{PATIENT}_private").mkdir()
    scandir = os.scandir

    def refusing(path="."):
        if str(path).endswith("_private"):
            raise PermissionError(13, "Permission denied", str(path))
        return scandir(path)

    monkeypatch.setattr(os, "scandir", refusing)
    with caplog.at_level(logging.WARNING, logger="augkit"):
        found = discovery.walk_files(root)
    assert len(found) == 6
    assert "1 folder under the data root could not be read (Permission denied)" in caplog.text
    assert PATIENT not in caplog.text and str(tmp_path) not in caplog.text


def test_an_atomic_write_syncs_the_file_and_then_its_folder(tmp_path, monkeypatch):
    from augkit.outputs import files

    synced = []
    fsync = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(os.path.isdir(f"/proc/self/fd/{fd}")), fsync(fd))[1])
    files.write_json(tmp_path / "selection.json", {"scores": []})
    assert synced == [False, True]  # the temporary file's data, then the rename in the folder
    assert not list(tmp_path.glob("*.tmp"))


def test_ctrl_c_inside_torch_save_stays_an_interrupt_and_keeps_the_old_checkpoint(tmp_path, monkeypatch):
    """Ctrl-C while a checkpoint is written: torch's zip writer then fails on its way out ("unexpected pos"),
    which hid the interrupt behind a traceback; the command must see the interrupt, the old file must stand."""
    import torch

    from augkit.outputs import files

    files.atomic_save({"step": 1}, tmp_path / "last.pt")

    def interrupted_save(obj, f):
        try:
            f.write(b"PK partial")
            raise KeyboardInterrupt
        finally:
            raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 1668224 vs 1668116")

    monkeypatch.setattr(torch, "save", interrupted_save)
    with pytest.raises(KeyboardInterrupt):
        files.atomic_save({"step": 2}, tmp_path / "last.pt")
    monkeypatch.undo()
    assert torch.load(tmp_path / "last.pt") == {"step": 1} and not list(tmp_path.glob(".*.tmp"))
    monkeypatch.setattr(torch, "save", lambda obj, f: (_ for _ in ()).throw(OSError(28, "No space left on device")))
    with pytest.raises(OSError, match="No space left"):  # any other failure stays what it is
        files.atomic_save({"step": 3}, tmp_path / "last.pt")
