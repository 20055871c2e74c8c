"""The audit: fidelity metrics, label faithfulness, memorisation, the Inception path, `augkit audit`."""

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision.transforms.functional as TF
from PIL import Image

import augkit
from augkit import audit as A
from augkit.extension.roles import LabeledImages

REG = augkit.get_plugin_manager()
SIZE = 32
TINY_CLASSIFIER = {"variant": "test_efficientnet", "epochs": 5, "batch_size": 16, "image_size": SIZE}


def phantoms(seed: int, per_class: int) -> LabeledImages:
    """Independent patients per seed, one image each: no real image has a twin in another set."""
    src = REG.get("dataset", "chest-phantom")(counts={"normal": per_class, "bacteria": per_class, "virus": per_class},
                                              image_size=64, images_per_patient=1, seed=seed)
    prep = REG.get("preprocessor", "paper")(image_size=SIZE, channels=1, crop=False, denoise=False)
    samples = list(src.samples())
    images = torch.stack([torch.tensor(prep(s.load())) for s in samples])
    return LabeledImages(images, torch.tensor([s.label for s in samples]), src.classes)


@pytest.fixture(scope="module")
def real():
    return {"train": phantoms(0, 50), "heldout": phantoms(1, 20), "honest": phantoms(2, 70)}


@pytest.fixture(scope="module")
def auditor(real):
    extractor = REG.get("feature_extractor", "real-classifier")(classifier="efficientnetv2",
                                                                 classifier_options=TINY_CLASSIFIER)
    list(extractor.fit(real["train"], real["heldout"], seed=0))
    return A.Auditor(extractor, real["train"], real["heldout"])


def jpeg(image: torch.Tensor, quality: int = 85) -> torch.Tensor:
    pixels = ((image[0].numpy() + 1) / 2 * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, "JPEG", quality=quality)
    return torch.from_numpy(np.asarray(Image.open(buf)).astype(np.float32) / 255 * 2 - 1)[None]


def test_frechet_distance_of_a_set_with_itself_is_zero_and_matches_the_matrix_square_root():
    from scipy import linalg

    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(200, 12, generator=g), torch.randn(150, 12, generator=g) * 1.5 + 0.3
    assert A.frechet_distance(x, x) == pytest.approx(0, abs=1e-9)
    # the textbook formula with scipy's sqrtm, where it is well conditioned (N > D)
    xs, ys = x.double().numpy(), y.double().numpy()
    s1, s2 = np.cov(xs, rowvar=False), np.cov(ys, rowvar=False)
    expected = ((xs.mean(0) - ys.mean(0)) ** 2).sum() + np.trace(s1 + s2 - 2 * linalg.sqrtm(s1 @ s2).real)
    assert A.frechet_distance(x, y) == pytest.approx(expected, rel=1e-6)
    # fewer images than dimensions (every real audit): still finite, still 0 against itself
    wide = torch.randn(20, 300, generator=g)
    assert A.frechet_distance(wide, wide) == pytest.approx(0, abs=1e-9)


def test_kid_and_prdc_separate_the_same_distribution_from_a_shifted_one():
    g = torch.Generator().manual_seed(1)
    a, b, far = torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g), torch.randn(300, 8, generator=g) + 3
    assert abs(A.kid(a, b)) < 0.02 * A.kid(a, far)
    same, shifted = A.prdc(a, b, k=5), A.prdc(a, far, k=5)
    assert same["precision"] > 0.8 and same["recall"] > 0.8 and same["coverage"] > 0.8
    assert 0.8 < same["density"] < 1.25  # ~1 for identical distributions (Naeem et al. 2020)
    assert shifted["precision"] < 0.1 and shifted["coverage"] < 0.1


@pytest.mark.parametrize("corruption", ["noise", "blur"])
def test_frechet_distance_grows_with_noise_and_blur_in_the_real_trained_space(auditor, real, corruption):
    images = real["honest"].images
    levels = [0, 0.05, 0.1, 0.2, 0.4] if corruption == "noise" else [0, 1, 2, 3, 5]

    def corrupt(level):
        if level == 0:
            return images
        if corruption == "noise":
            return (images + level * torch.randn(images.shape, generator=torch.Generator().manual_seed(1))).clamp(-1, 1)
        return TF.gaussian_blur(images, 2 * level + 1, sigma=level * 0.6)

    fds = [A.frechet_distance(auditor.ref_feats, auditor.extractor.features(corrupt(level))) for level in levels]
    assert all(a < b for a, b in zip(fds, fds[1:])), fds


def test_planted_copies_are_all_flagged_and_honest_samples_almost_never(auditor, real):
    train = real["train"]
    idx = torch.arange(0, len(train), 5)  # 30 training images, 10 per kind of copy
    exact = train.images[idx[:10]]
    flipped = train.images[idx[10:20]].flip(-1)
    reencoded = torch.stack([jpeg(train.images[i]) for i in idx[20:30]])
    copies, _ = auditor.screen(torch.cat([exact, flipped, reencoded]), train.labels[idx])
    assert all("near_copy" in f for f in copies.flags), [f for f in copies.flags]
    assert copies.mirrored[10:20].all()  # the mirror was what matched

    honest = real["honest"]
    screen, _ = auditor.screen(honest.images, honest.labels)
    flagged = sum("near_copy" in f for f in screen.flags)
    assert flagged <= 0.01 * len(honest), f"{flagged} of {len(honest)} honest held-out images flagged"


def test_summary_has_floors_faithfulness_and_data_copying(auditor, real):
    honest = real["honest"]
    screen, feats = auditor.screen(honest.images, honest.labels)
    summary = A.Auditor.summary(auditor, screen, feats)
    json.dumps(summary)  # audit.json is plain JSON
    overall = summary["fidelity"]["overall"]
    for part in ("synthetic", "real_floor"):
        assert set(overall[part]) == set(A.FIDELITY)
        assert overall[part]["fd"]["std"] >= 0
    # honest real images are as good as real: their FD is the floor's order of magnitude
    assert overall["synthetic"]["fd"]["mean"] < 3 * overall["real_floor"]["fd"]["mean"]
    assert set(summary["fidelity"]["per_class"]) == {"normal", "bacteria", "virus"}
    faith = summary["faithfulness"]
    assert np.array(faith["confusion"]).sum() == len(honest)
    assert faith["real_heldout"]["accuracy"] > 0
    c_t = summary["memorisation"]["data_copying"]["c_t"]
    assert -3 < c_t < 3  # new real images are neither copies nor strangers


def test_data_copying_statistic_is_negative_for_copies():
    g = torch.Generator().manual_seed(3)
    train, heldout = torch.randn(200, 6, generator=g), torch.randn(100, 6, generator=g)
    copies = train[:100] + 0.01 * torch.randn(100, 6, generator=g)
    assert A.data_copying(train, heldout, copies, cells=3, seed=0)["c_t"] < -3
    assert abs(A.data_copying(train, heldout, torch.randn(100, 6, generator=g), cells=3, seed=0)["c_t"]) < 3


def test_inception_extractor_reads_only_a_local_weights_file(tmp_path):
    from torchvision.models import inception_v3

    cls = REG.get("feature_extractor", "inception")
    with pytest.raises(ValueError, match="no such file"):
        cls(weights=tmp_path / "missing.pth")
    torch.manual_seed(0)
    weights = tmp_path / "inception.pth"
    torch.save(inception_v3(weights=None, aux_logits=False, init_weights=True).state_dict(), weights)
    extractor = cls(weights=weights, batch_size=2)
    feats = extractor.features(torch.rand(3, 1, SIZE, SIZE) * 2 - 1)
    assert feats.shape == (3, 2048) and torch.isfinite(feats).all()
    assert "inception.pth" in extractor.describe()
    wrong = tmp_path / "wrong.pth"
    torch.save({"conv.weight": torch.zeros(1)}, wrong)
    with pytest.raises(ValueError, match="not an inception_v3 state dict"):
        cls(weights=wrong).features(torch.zeros(1, 1, SIZE, SIZE))


def _write_folder(root: Path, data: LabeledImages, names=None) -> None:
    for i, (image, label) in enumerate(zip(data.images, data.labels.tolist())):
        folder = root / data.classes[label]
        folder.mkdir(parents=True, exist_ok=True)
        pixels = ((image[0].numpy() + 1) / 2 * 255).round().astype(np.uint8)
        Image.fromarray(pixels).save(folder / (names[i] if names else f"img_{i:04d}.png"))


def test_audit_command_on_folders_from_any_tool(real, tmp_path, cli):
    train, heldout = real["train"], real["heldout"]
    # patient ids in the real file names: they must not reach any output
    _write_folder(tmp_path / "train", train, [f"MRN-7{i:05d}_DOE.png" for i in range(len(train))])
    _write_folder(tmp_path / "heldout", heldout, [f"MRN-8{i:05d}_ROE.png" for i in range(len(heldout))])
    honest = real["honest"].subset(torch.arange(0, 60))
    planted = train.subset(torch.arange(0, 150, 15))  # 10 exact copies hidden among honest images
    synthetic = LabeledImages.concat([honest, planted])
    _write_folder(tmp_path / "synthetic", synthetic)
    (tmp_path / "synthetic" / "virus" / "broken.png").write_bytes(b"not a png")
    (tmp_path / "heldout" / "virus" / "MRN-899999_ROE.png").write_bytes(b"")  # skipped, and said so by key only

    result = cli("audit", tmp_path / "synthetic", "--reference", tmp_path / "train", "--holdout", tmp_path / "heldout",
                 "--image-size", SIZE, "--out", tmp_path / "audits", "--feature-option", "classifier_options="
                 + json.dumps({k: v for k, v in TINY_CLASSIFIER.items() if k != "image_size"}))
    out = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((out / "audit.json").read_text())
    assert summary["sizes"] == {"reference": 150, "heldout": 60, "synthetic": 70}
    assert [f["file"] for f in summary["skipped"]["synthetic"]] == ["virus/broken.png"]
    assert "not a PNG image" in summary["skipped"]["synthetic"][0]["reason"]
    assert summary["skipped"]["reference"] == [] and len(summary["skipped"]["heldout"]) == 1
    assert summary["skipped"]["heldout"][0]["reason"] == "ValueError: file is empty (0 bytes)"
    assert "unreadable files skipped: 1 held-out, 1 synthetic" in result.stderr
    rows = list(csv.DictReader(open(out / "audit" / "flags.csv", newline="")))
    flagged = {r["file"] for r in rows if "near_copy" in r["flags"]}
    planted_files = {f"{synthetic.classes[int(synthetic.labels[i])]}/img_{i:04d}.png" for i in range(60, 70)}
    assert planted_files <= flagged and len(flagged - planted_files) <= 1
    assert "near copies: " in result.stderr
    report = (out / "report.md").read_text()
    assert "## Audit: quality and privacy of the synthetic images" in report and "real floor" in report
    for p in out.rglob("*"):
        if p.is_file():
            blob = p.read_bytes()  # "-", "_" and "." never occur in the base64 of embedded images
            assert b"MRN-" not in blob and b"_DOE" not in blob and b"_ROE" not in blob, p


def test_audit_command_errors_name_the_problem(real, tmp_path, cli):
    _write_folder(tmp_path / "train", real["heldout"])
    other = LabeledImages(real["heldout"].images[:4], torch.zeros(4, dtype=torch.long), ["pneumothorax"])
    _write_folder(tmp_path / "synthetic", other)
    result = cli("audit", tmp_path / "synthetic", "--reference", tmp_path / "train", "--features", "pixels",
                 "--image-size", SIZE, "--out", tmp_path / "audits", expect=2)
    assert "pneumothorax" in result.stderr and "normal" in result.stderr
    assert not (tmp_path / "audits").exists() or not list((tmp_path / "audits").iterdir())  # no empty audit folder
    result = cli("audit", tmp_path / "train", "--reference", tmp_path / "train", "--features", "pixels",
                 "--feature-option", "sise=8", "--out", tmp_path / "audits", expect=2)
    assert "sise" in result.stderr and "size" in result.stderr


def test_audit_command_warns_of_far_images_missing_classes_and_blanks_without_a_holdout(real, tmp_path, cli):
    """Inverted images (recall 0 against a floor of 1) read "Warnings: None"; a class without synthetic images
    emptied the overall figures ("too few images") without a word; without --holdout the report spoke of held-out
    images; a NaN pixel was audited; a blank image went unnoticed."""
    _write_folder(tmp_path / "train", real["train"])
    inverted = real["heldout"].subset(torch.nonzero(real["heldout"].labels != 2).flatten())  # no virus
    _write_folder(tmp_path / "synthetic", LabeledImages(-inverted.images, inverted.labels, inverted.classes))
    Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "synthetic" / "normal" / "black.png")
    nan = np.full((32, 32), 0.5, np.float32)
    nan[3, 3] = np.nan
    Image.fromarray(nan, mode="F").save(tmp_path / "synthetic" / "normal" / "nan.tiff")
    result = cli("audit", tmp_path / "synthetic", "--reference", tmp_path / "train", "--features", "pixels",
                 "--feature-option", "size=8", "--image-size", SIZE, "--out", tmp_path / "audits")
    out = Path(result.stdout.strip().splitlines()[-1])
    summary = json.loads((out / "audit.json").read_text())
    assert summary["fidelity"]["overall"]["n"] > 0 and summary["fidelity"]["left_out"]["no synthetic images"] == ["virus"]
    assert [f["file"] for f in summary["skipped"]["synthetic"]] == ["normal/nan.tiff"]
    assert "NaN" in summary["skipped"]["synthetic"][0]["reason"]
    text = " ".join(result.stderr.split())
    assert "class virus: no synthetic images, left out of the overall fidelity figures" in text
    assert "far from real ones in the audit's feature space (under 0.5x the real floor): overall: " in text
    assert "blank images (one value in every pixel), audited as they are: 1 synthetic (normal/black.png)" in text
    assert "C_T: needs a held-out real set" in text
    report = (out / "report.md").read_text()
    assert "held-out real images fall under" not in report and "reference (each to the others)" in report
    assert "![the first 8 synthetic images of each class](audit/synthetic_grid.png)" in report  # figures beside images
    assert (out / "audit" / "synthetic_grid.png").is_file() and (out / "audit" / "reference_grid.png").is_file()


def test_without_a_holdout_the_feature_space_is_checked_on_a_share_of_each_class_if_there_are_enough(real, tmp_path,
                                                                                                      cli):
    """Without --holdout the weak-space check never ran; on 1-3 validation images it would read chance."""
    _write_folder(tmp_path / "train", real["train"])
    _write_folder(tmp_path / "synthetic", real["heldout"].subset(torch.arange(0, 60, 3)))
    small = real["train"].subset(torch.cat([torch.nonzero(real["train"].labels == c).flatten()[:5] for c in range(3)]))
    _write_folder(tmp_path / "small", small)
    for reference, measured in (("train", True), ("small", False)):
        result = cli("audit", tmp_path / "synthetic", "--reference", tmp_path / reference, "--features", "small-cnn",
                     "--feature-option", "steps=30", "--image-size", SIZE, "--out", tmp_path / "audits")
        summary = json.loads((Path(result.stdout.strip().splitlines()[-1]) / "audit.json").read_text())
        real_check = summary["faithfulness"]["real_heldout"]
        if measured:  # 7 of each class's 50 reference images, left out of the extractor's training
            assert real_check["on"] == "reference images left out of the feature extractor's training"
        else:  # 5 a class: too few to say anything
            assert real_check is None
