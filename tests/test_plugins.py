import json

import pytest
import torch

import augkit
import minimal_generator
from augkit.extension.registry import PluginError, get_plugin_manager
from conftest import plugin_module
from minimal_generator import MinimalGenerator


def test_default_plugins_are_found_through_entry_points(registry):
    names = {(i.role, i.name) for i in registry.all()}
    expected_names = [
        ("generator", "acgan"),
        ("generator", "diffusion"),
        ("classifier", "efficientnetv2"),
        ("dataset", "chest-phantom"),
        ("dataset", "brain-phantom"),
        ("dataset", "kaggle-chest-xray"),
        ("dataset", "image-folder"),
        ("dataset", "dicom"),
        ("dataset", "nifti"),
        ("preprocessor", "paper"),
        ("exporter", "png"),
        ("exporter", "nifti"),
        ("exporter", "dicom"),
    ]
    for expected in expected_names:
        assert expected in names
    own = {(i.role, i.name): i.distribution for i in registry.all()}
    assert all(own[name] == "augkit" for name in expected_names)
    assert not registry.failures


def test_third_party_module_registers_a_generator():
    plugin = plugin_module("my_gan", register_generators=lambda register: register("const", MinimalGenerator))
    registry = get_plugin_manager(extra=[plugin])
    assert registry.get("generator", "const") is MinimalGenerator
    assert augkit.build("generator", "const", registry=registry, steps=4).options.steps == 4


def test_an_installed_plugin_given_again_as_extra_counts_once():
    """plugins.md's `test_registered_by_its_hook` failed once the plugin was installed: pluggy's "Plugin already
    registered under a different name" with a dump of every module."""
    import augkit_wgan  # installed by the test command: its entry point registers this very module

    registry = get_plugin_manager(extra=[augkit_wgan])
    (info,) = [i for i in registry.all() if i.name == "wgan-gp"]
    assert registry.get("generator", "wgan-gp") is augkit_wgan.WGANGP and info.distribution == "augkit-wgan"
    assert not registry.failures


def test_a_plugin_package_registers_through_its_hook():
    registry = get_plugin_manager(extra=[minimal_generator])  # as if installed, without installing it
    assert registry.get("generator", "minimal") is MinimalGenerator
    (info,) = [i for i in registry.all() if i.name == "minimal"]
    assert (info.role, info.distribution) == ("generator", "minimal_generator")


def test_a_role_lists_what_a_plugin_must_implement():
    assert augkit.Generator.__abstractmethods__ == {"fit", "sample", "save", "load", "classes", "steps_done"}
    assert augkit.Classifier.__abstractmethods__ == {"fit", "predict_proba"}
    assert augkit.FeatureExtractor.__abstractmethods__ == {"features"}


class Defaults(augkit.Classifier):
    fit = predict_proba = None  # buildable, and nothing but the role's defaults otherwise


def test_the_documented_defaults():
    gen, clf = MinimalGenerator(), Defaults()
    assert (gen.total_steps, gen.device, gen.precision, gen.version, gen.supports_distributed) == (
        None, torch.device("cpu"), "fp32", "0", False)
    assert (clf.total_epochs, clf.device, clf.precision) == (None, torch.device("cpu"), "fp32")
    assert augkit.build("feature_extractor", "pixels").trained_classifier is None
    gen.device, gen.precision = torch.device("meta"), "bf16"  # plain attributes: a plugin may assign them
    assert (gen.device, gen.precision, MinimalGenerator.device) == (torch.device("meta"), "bf16", torch.device("cpu"))


def test_two_plugins_registering_one_name_is_an_error_naming_both():
    a = plugin_module("dist_a", register_generators=lambda register: register("acgan", MinimalGenerator))
    with pytest.raises(PluginError, match=r"two plugins register the generator name 'acgan': augkit .* and dist_a"):
        get_plugin_manager(extra=[a])


def test_registering_a_non_plugin_class_is_an_error():
    bad = plugin_module("bad", register_generators=lambda register: register("x", dict))
    with pytest.raises(PluginError, match="not a subclass of augkit.Generator"):
        get_plugin_manager(load_entry_points=False, extra=[bad])


def test_plugin_that_raises_is_reported_and_the_rest_keep_working():
    def broken(register):
        raise ImportError("needs libfoo")

    registry = get_plugin_manager(extra=[plugin_module("broken_plugin", register_generators=broken)])
    assert "needs libfoo" in registry.failures["broken_plugin"]
    assert registry.get("generator", "acgan")


def _with_entry_point(monkeypatch, name, value):
    import importlib.metadata as md

    real = md.entry_points
    added = md.EntryPoint(name, value, "augkit")
    monkeypatch.setattr(md, "entry_points", lambda group: [*real(group=group), added])


def test_entry_point_that_fails_to_import_is_reported(monkeypatch, cli):
    _with_entry_point(monkeypatch, "broken", "augkit_no_such_module")
    registry = get_plugin_manager()
    assert "ModuleNotFoundError" in registry.failures["broken"]
    assert registry.get("generator", "acgan")  # the others still load
    rows = json.loads(cli("plugins", "--json").stdout)  # scripts see it too, not only the console
    (failed,) = [r for r in rows if r["role"] is None]
    assert failed["name"] == "broken" and "ModuleNotFoundError" in failed["error"]


def test_two_plugins_claiming_one_name_are_named_by_augkit_plugins(monkeypatch, cli):
    """`augkit plugins`, the command to run to find out, crashed with a traceback."""
    _with_entry_point(monkeypatch, "png_again", "augkit_plugins.png_exporter:PNGExporterAgain")
    import augkit_plugins.png_exporter as png

    again = type("PNGAgain", (png.PNGExporter,), {})
    monkeypatch.setattr(png, "PNGExporterAgain", plugin_module(
        "png_again", register_exporters=lambda register: register("png", again)), raising=False)
    text = cli("plugins", expect=2).output
    assert "two plugins register the exporter name 'png'" in text and "Traceback" not in text


def test_unknown_name_suggests_the_closest(registry):
    with pytest.raises(PluginError, match=r"no generator plugin named 'acgn'; did you mean 'acgan'\?"):
        registry.get("generator", "acgn")


def test_misspelt_hook_fails_loudly():
    module = plugin_module("typo", register_generator=lambda register: None)
    with pytest.raises(Exception, match="register_generator"):
        get_plugin_manager(load_entry_points=False, extra=[module])


def test_cli_plugins_json(cli):
    result = cli("plugins", "--json")
    rows = json.loads(result.stdout)
    assert {"role", "name", "distribution", "version", "error"} == set(rows[0]) and rows[0]["error"] is None
    assert {r["role"] for r in rows} == {"dataset", "preprocessor", "generator", "classifier", "exporter", "feature_extractor"}


def test_build_names_the_plugin_and_each_bad_option():
    """It said "1 validation error for Options", naming neither the role nor the plugin."""
    with pytest.raises(ValueError, match=r"^generator 'acgan': width: Input should be greater than or equal to 8 "
                       r"\(got 0\); widht: unknown key; did you mean width\?"):
        augkit.build("generator", "acgan", width=0, widht=3)


def test_the_reference_says_when_a_plugin_has_no_options():
    from augkit.config.reference import reference

    class Bare(augkit.Exporter):
        """An exporter without options."""

        suffix = ".bare"

        def write_image(self, pixels, path, **_):
            pass

    registry = get_plugin_manager(extra=[plugin_module("bare", register_exporters=lambda register: register("bare", Bare))])
    text = reference(registry, distribution=None)
    assert "## exporter `bare`\n\nAn exporter without options.\n\nNo options.\n" in text
