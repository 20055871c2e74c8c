"""Figures are files only: augkit's plotting leaves matplotlib's global backend and figure state alone,
and the output layer never imports the audit (the audit writes through it, one way)."""

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

CORE = Path(__file__).parent.parent / "augkit"

# Run in a fresh interpreter: the backend is chosen before anything of augkit is imported, and
# ``sys.modules`` shows what importing and plotting pulled in.
DRAW_EVERY_FIGURE = textwrap.dedent("""
    import sys
    from pathlib import Path
    from types import SimpleNamespace

    import matplotlib
    import numpy as np
    import torch

    matplotlib.use("svg")  # not Agg: a library that forces Agg would show here
    import augkit.audit as A

    assert "matplotlib.figure" not in sys.modules, "importing augkit.audit loaded matplotlib's figures"
    from augkit.outputs import report

    out = Path(sys.argv[1])
    g = torch.Generator().manual_seed(0)
    images = torch.rand(6, 1, 8, 8, generator=g) * 2 - 1
    report.plot_losses([{"step": s, "d_loss": 1.0 / s, "g_loss": 2.0 / s} for s in (1, 2, 3)], out / "losses.png",
                       title="losses", keys=("d_loss", "g_loss"))
    report.image_grid(images, out / "grid.png", title="grid", columns=4)
    report.before_after([(np.zeros((10, 12)), images[0].numpy(), "normal")], out / "before_after.png")
    interval = {m: {"estimate": 0.6, "low": 0.5, "high": 0.7} for m in ("accuracy", "f1")}
    regime = {"confusion_matrix": [[3, 1], [0, 4]], "interval": interval, "accuracy": 0.6, "f1": 0.6}
    metrics = {"classes": ["a", "b"], "seeds": [0], "regimes": {"real": regime, "fake+real@1": regime}}
    curves = [{"regime": r, "seed": 0, "step": s, "train_loss": 1.0, "val_loss": 1.1}
              for r in metrics["regimes"] for s in (1, 2)]
    report.plot_study(metrics, curves, out)
    screen = A.Screen(torch.zeros(6, dtype=torch.long), None, torch.rand(6, generator=g), torch.rand(6, generator=g),
                      torch.arange(6), torch.tensor([True, False] * 3), [("near_copy",), (), (), (), (), ()])
    auditor = SimpleNamespace(held_pixel_distance=torch.rand(5, generator=g),
                              held_feature_distance=torch.rand(5, generator=g),
                              threshold={"pixel": 0.1, "feature": 0.1})
    A.plot_closest_pairs(images, screen, images, out / "closest_pairs.png", n=4)
    A.plot_distances(screen, auditor, out / "distances.png")

    assert matplotlib.get_backend() == "svg", matplotlib.get_backend()
    assert "matplotlib.pyplot" not in sys.modules, "plotting imported the global figure manager"
""")

FIGURES = ["losses.png", "grid.png", "before_after.png", "classifier_losses.png", "confusion_matrices.png",
           "metrics_by_regime.png", "ratio_sweep.png", "closest_pairs.png", "distances.png"]


def test_plotting_leaves_the_backend_alone_and_writes_every_figure(tmp_path):
    done = subprocess.run([sys.executable, "-c", DRAW_EVERY_FIGURE, str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    for name in FIGURES:
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


def test_no_module_selects_a_backend_or_uses_the_global_figure_state():
    offenders = [str(path.relative_to(CORE)) for path in sorted(CORE.rglob("*.py"))
                 if "matplotlib.use(" in path.read_text() or "pyplot" in path.read_text()]
    assert len(list(CORE.rglob("*.py"))) > 5
    assert not offenders, offenders


def _imports(path: Path):
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            yield node.module + "".join(f".{alias.name}" for alias in node.names)


def test_outputs_never_import_the_audit():
    """augkit.audit writes its report through augkit.outputs; the other way round would be a cycle."""
    offenders = [f"{path.name}: {mod}" for path in sorted((CORE / "outputs").glob("*.py")) for mod in _imports(path)
                 if mod == "augkit.audit" or mod.startswith("augkit.audit.")]
    assert not offenders, offenders


def test_report_numbers_read_as_numbers():
    from augkit.outputs.run_report import _ms

    assert _ms({"mean": 763.2, "std": 240.1}) == "763 ± 240"  # not 7.6e+02 ± 2.4e+02
    assert _ms({"mean": 0.4123, "std": 0.0312}) == "0.412 ± 0.031"
    assert _ms({"mean": 11.7, "std": 2.2}) == "11.7 ± 2.2" and _ms(None) == "n/a"
    assert _ms({"mean": 3.6e-9, "std": 4.08e-8}) == "< 0.0001"  # a KID of zero, not 0.0000000036 ± 0.0000000408
    assert _ms({"mean": 0.0012, "std": 0.0003}) == "0.00120 ± 0.00030" and _ms({"mean": 0, "std": 0}) == "0.000 ± 0.000"


def test_the_loss_plot_draws_whatever_losses_a_generator_logs(tmp_path):
    """The diffusion generator logs ``loss``, the AC-GAN ``d_loss`` / ``g_loss``, a plugin may log others: each
    is drawn (the quickstart's losses.png was an empty frame while the plot asked for d_loss and g_loss only)."""
    from augkit.outputs import report

    diffusion = [{"step": s, "loss": 1.0 / s, "sec_per_iter": 0.2} for s in (10, 20, 30)]
    assert report.plot_losses(diffusion, tmp_path / "a.png", title="t") == ("loss",)
    acgan = [{"step": 1}, {"step": 10, "d_loss": 1.0, "g_loss": 2.0, "d_real_acc": 0.5}]
    assert report.plot_losses(acgan, tmp_path / "b.png", title="t") == ("d_loss", "g_loss")
    wgan = [{"step": 5, "critic_loss": -1.0, "g_loss": 0.3, "gp": 0.1}]
    assert report.plot_losses(wgan, tmp_path / "c.png", title="t") == ("critic_loss", "g_loss")
    assert report.plot_losses([{"step": 1}], tmp_path / "d.png", title="t") == ()
    for name in "abcd":
        assert (tmp_path / f"{name}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_grid_keeps_each_images_colour_order_and_rows(tmp_path):
    import numpy as np
    import torch
    from PIL import Image

    from augkit.outputs import report

    rgb = torch.eye(3).view(3, 3, 1, 1).expand(3, 3, 16, 16) * 2 - 1  # pure red, green, blue in [-1, 1]
    report.image_grid(rgb, tmp_path / "rgb.png", title="synthetic: a class with a long name")
    pixels = np.asarray(Image.open(tmp_path / "rgb.png").convert("RGB")).astype(int)
    columns = {}
    for c, colour in enumerate(("red", "green", "blue")):
        pure = (pixels[..., c] > 200) & (np.delete(pixels, c, axis=-1) < 60).all(-1)
        assert pure.sum() > 100, colour  # the colour survives (not drawn grey)
        columns[colour] = np.nonzero(pure)[1].mean()
    assert columns["red"] < columns["green"] < columns["blue"]  # in order, left to right
    # 10 grey images in rows of 4: 3 rows, 4 columns wide; none: an empty figure, no error
    report.image_grid(torch.linspace(-1, 1, 10).view(10, 1, 1, 1).expand(10, 1, 8, 8), tmp_path / "g.png",
                      title="g", columns=4)
    assert Image.open(tmp_path / "g.png").size == (520, 400)  # (4 x 1.2 + 0.4, 3 x 1.2 + 0.4) inches at 100 dpi
    report.image_grid(torch.zeros(0, 1, 8, 8), tmp_path / "none.png", title="none")
    assert Image.open(tmp_path / "none.png").size == (300, 160)


def test_a_card_from_an_audit_before_diversity_intervals_still_reads(tmp_path):
    from augkit.outputs import card

    old = {"diversity": {"per_class": {  # audit.json before 2026-12-07: no ratio_interval; a class without a ratio
        "virus": {"synthetic": 0.30, "real": 0.36, "ratio": 0.8333, "collapsed": False},
        "normal": {"synthetic": None, "real": 0.36, "ratio": None, "collapsed": False}}}}
    made = card.build(None, provenance={"generator": "diffusion"}, per_class={"virus": 2, "normal": 0})
    made["audit"] = {**card._audit(old), "warnings": []}
    text = card.markdown(made)
    assert "virus 0.300 (real 0.360; 0.83x as varied); normal n/a (real 0.360)." in text
    assert made["audit"]["intra_class_diversity"]["virus"]["ratio_interval"] is None


def test_the_data_preview_draws_colour_files_as_they_look(tmp_path, caplog):
    """`augkit data`'s raw-beside-preprocessed preview of an 8-bit RGB JPEG: drawn in its colours, not clipped
    to white (matplotlib takes float colour in [0, 1] only; it warned "Clipping input data" on every such file)."""
    import numpy as np
    from PIL import Image

    from augkit.outputs import report

    raw = np.zeros((40, 40, 3), dtype=np.uint8)
    raw[:, :20] = (30, 90, 150)  # a dark blue-grey left half, a black right half
    with caplog.at_level("WARNING"):
        report.before_after([(raw, np.zeros((1, 8, 8), dtype=np.float32), "normal")], tmp_path / "p.png")
    assert "Clipping" not in caplog.text
    pixels = np.asarray(Image.open(tmp_path / "p.png").convert("RGB")).astype(int)
    assert ((pixels[..., 2] - pixels[..., 0] > 80) & (pixels.sum(-1) < 600)).sum() > 100  # blue, not white
