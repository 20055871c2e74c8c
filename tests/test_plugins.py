import json

import pytest

import augkit
from augkit.extension.registry import PluginError, get_plugin_manager
from conftest import ConstantGenerator, plugin_module


def test_default_plugins_are_found_through_entry_points(registry):
    names = {(i.role, i.name) for i in registry.all()}
    expected_names = [
        ("generator", "acgan"),
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
    plugin = plugin_module("my_gan", register_generators=lambda register: register("const", ConstantGenerator))
    registry = get_plugin_manager(extra=[plugin])
    assert registry.get("generator", "const") is ConstantGenerator
    assert augkit.build("generator", "const", registry=registry, image_size=4).options.image_size == 4


def test_two_plugins_registering_one_name_is_an_error_naming_both():
    a = plugin_module("dist_a", register_generators=lambda register: register("acgan", ConstantGenerator))
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


def test_entry_point_that_fails_to_import_is_reported(monkeypatch):
    import importlib.metadata as md

    real = md.entry_points
    broken = md.EntryPoint("broken", "augkit_no_such_module", "augkit")

    def entry_points(group):
        return [*real(group=group), broken]

    monkeypatch.setattr(md, "entry_points", entry_points)
    registry = get_plugin_manager()
    assert "ModuleNotFoundError" in registry.failures["broken"]
    assert registry.get("generator", "acgan")  # the others still load


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
    assert {"role", "name", "distribution", "version"} == set(rows[0])
    assert {r["role"] for r in rows} == {"dataset", "preprocessor", "generator", "classifier", "exporter", "feature_extractor"}
