from pathlib import Path

import pytest
import torch
import yaml

import augkit
from augkit.config.recipe import RecipeError, load_recipe
from conftest import plugin_module

EXAMPLES = Path(__file__).parent.parent / "examples"


def base(**changes):
    recipe = {"dataset": {"name": "chest-phantom"}, "image_size": 16}
    recipe.update(changes)
    return recipe


@pytest.mark.parametrize("name", ["tiny.yaml", "quickstart.yaml", "quickstart_acgan.yaml"])
def test_examples_validate(name):
    resolved = load_recipe(EXAMPLES / name)
    assert resolved.recipe.dataset.name == "chest-phantom"


def test_resolved_recipe_holds_every_default(registry):
    resolved = load_recipe(base(), registry=registry)
    data = resolved.to_dict()
    assert data["generator"]["options"]["latent_dim"] == 100  # the paper's default, written out
    assert data["generator"]["options"]["image_size"] == 16  # shared keys reach the plugins
    assert data["classifier"]["options"]["variant"] == "tf_efficientnetv2_b0"
    assert load_recipe(data, registry=registry).to_dict() == data  # round-trips


def test_unknown_top_level_key_names_path_and_alternatives(registry):
    with pytest.raises(RecipeError) as err:
        load_recipe(base(sed=3), registry=registry)
    assert "sed: unknown key; did you mean seed?" in str(err.value)


def test_unknown_plugin_option_names_full_key_path(registry):
    with pytest.raises(RecipeError) as err:
        load_recipe(base(generator={"name": "acgan", "options": {"iteratons": 5}}), registry=registry)
    msg = str(err.value)
    assert "generator.options.iteratons: unknown key; did you mean iterations?" in msg
    assert "latent_dim" in msg  # lists what is allowed


def test_misspelt_plugin_name_suggests_installed_names(registry):
    with pytest.raises(RecipeError, match=r"generator.name: no generator plugin named 'acgam'; did you mean 'acgan'"):
        load_recipe(base(generator={"name": "acgam"}), registry=registry)


def test_bad_value_names_path_value_and_rule(registry):
    with pytest.raises(RecipeError) as err:
        load_recipe(base(generator={"name": "acgan", "options": {"lr_g": -1}}), registry=registry)
    assert "generator.options.lr_g: Input should be greater than 0 (got -1)" in str(err.value)


def test_unknown_loss_names_path_and_choices(registry):
    with pytest.raises(RecipeError) as err:
        load_recipe(base(generator={"name": "acgan", "options": {"loss": "wgan"}}), registry=registry)
    assert "generator.options.loss: Input should be 'bce' or 'hinge' (got 'wgan')" in str(err.value)


def test_image_size_must_suit_the_generator(registry):
    with pytest.raises(RecipeError, match="image_size 100 is neither 7\\*2\\^k nor 2\\^k"):
        load_recipe(base(image_size=100), registry=registry)


def test_plugin_option_contradicting_shared_key(registry):
    with pytest.raises(RecipeError, match="generator.options.image_size: 32 differs from the recipe's image_size: 16"):
        load_recipe(base(generator={"name": "acgan", "options": {"image_size": 32}}), registry=registry)


def test_all_problems_reported_at_once(registry):
    with pytest.raises(RecipeError) as err:
        load_recipe(base(classifier={"name": "effnet"}, generator={"name": "acgan", "options": {"width": 0}}), registry=registry)
    assert len(err.value.problems) == 2


def test_recipe_and_plugin_problems_are_reported_at_once(registry):
    """A bad seed hid the misspelt generator option until the seed was mended (one round trip per problem)."""
    with pytest.raises(RecipeError) as err:
        load_recipe(base(seed=-3, image_size=0, generator={"name": "acgan", "options": {"widht": 16}},
                         dataset={"name": "nope"}), registry=registry)
    problems = err.value.problems
    assert problems[0].startswith("seed: Input should be greater than or equal to 0 (got -3)")
    assert any(p.startswith("generator.options.widht: unknown key; did you mean width?") for p in problems)
    assert any(p.startswith("dataset.name: no dataset plugin named 'nope'") for p in problems)
    assert not any(p.startswith("generator.options.image_size") for p in problems)  # the recipe's own, said once
    assert sum(p.startswith("image_size") for p in problems) == 1


def test_set_overrides(tmp_path, registry):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(base()))
    resolved = load_recipe(path, ["generator.options.iterations=7", "seed=3"], registry=registry)
    assert resolved.plugins["generator"][1].iterations == 7
    assert resolved.recipe.seed == 3


def test_bad_yaml_and_missing_file_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("dataset: [unclosed\n")
    with pytest.raises(RecipeError, match="bad.yaml: not valid YAML"):
        load_recipe(bad)
    with pytest.raises(RecipeError, match="nope.yaml: no such file"):
        load_recipe(tmp_path / "nope.yaml")


def test_cli_validate_misspelt_key_fails_fast_before_any_work(tmp_path, cli):
    path = tmp_path / "typo.yaml"
    recipe = yaml.safe_load((EXAMPLES / "tiny.yaml").read_text())
    recipe["generator"]["options"]["widht"] = 8
    path.write_text(yaml.safe_dump(recipe))
    result = cli("run", path, "--out", tmp_path / "runs", expect=2)
    assert "generator.options.widht: unknown key; did you mean width?" in result.output
    assert not (tmp_path / "runs").exists()  # nothing was started


def test_cli_validate_ok(cli):
    assert "valid" in cli("validate", EXAMPLES / "tiny.yaml").stdout


@pytest.mark.parametrize("name", ["chest_xray_paper.yaml", "brain_mri_paper.yaml"])
def test_paper_recipes_validate_with_a_data_root(name, tmp_path, registry):
    resolved = load_recipe(EXAMPLES / name, [f"dataset.options.root={tmp_path}"], registry=registry)
    gen = resolved.plugins["generator"][1]
    assert (gen.preset, gen.width, gen.iterations, gen.channels, gen.image_size) == ("paper", 1024, 32000, 3, 112)


@pytest.mark.parametrize("name, size", [("quickstart.yaml", 56), ("diffusion_brain_cpu.yaml", 56),
                                        ("diffusion_chest_gpu.yaml", 112), ("diffusion_brain_gpu.yaml", 128)])
def test_diffusion_recipes_validate(name, size, tmp_path, registry):
    data = [f"dataset.options.root={tmp_path}"] if "gpu" in name else []
    resolved = load_recipe(EXAMPLES / name, data, registry=registry)
    gen = resolved.plugins["generator"][1]
    assert resolved.recipe.generator.name == "diffusion" and gen.image_size == size


def test_audit_feature_extractor_trains_the_recipes_classifier_unless_told_otherwise(registry):
    resolved = load_recipe(base(classifier={"name": "efficientnetv2", "options": {"epochs": 3}}), registry=registry)
    cls, options = resolved.plugins["feature_extractor"]
    assert options.classifier == "efficientnetv2"
    assert options.classifier_options == resolved.plugins["classifier"][1].model_dump(mode="json")
    assert options.classifier_options["epochs"] == 3
    own = load_recipe(base(feature_extractor={"name": "real-classifier", "options": {"classifier_options": {"epochs": 1}}}),
                      registry=registry)
    assert own.plugins["feature_extractor"][1].classifier_options == {"epochs": 1}


def test_audit_settings_and_extractor_options_are_validated(registry):
    with pytest.raises(RecipeError) as err:
        load_recipe(base(audit={"copy_quantile": 0.7, "drop_copy": True}), registry=registry)
    assert "audit.copy_quantile" in str(err.value)
    assert "audit.drop_copy: unknown key; did you mean drop_copies?" in str(err.value)
    with pytest.raises(RecipeError, match="feature_extractor.options.weights: required"):
        load_recipe(base(feature_extractor={"name": "inception"}), registry=registry)
    with pytest.raises(RecipeError, match="feature_extractor.options: .*classifier_options.epochs: Input should be greater than or equal to 1"):
        load_recipe(base(feature_extractor={"name": "real-classifier", "options": {"classifier_options": {"epochs": 0}}}),
                    registry=registry)


# -- one registry per recipe ---------------------------------------------------------------


class FakeClassifier(augkit.Classifier):
    """A classifier registered only in the test's registry."""

    def fit(self, train, val, *, seed):
        yield {"step": 1}

    def predict_proba(self, images):
        return torch.full((len(images), 2), 0.5)


def test_the_registry_given_to_load_recipe_is_the_one_plugin_validators_see():
    reg = augkit.get_plugin_manager(extra=[plugin_module(
        "only_here", register_classifiers=lambda register: register("fake-classifier", FakeClassifier))])
    recipe = base(feature_extractor={"name": "real-classifier", "options": {"classifier": "fake-classifier"}})
    resolved = load_recipe(recipe, registry=reg)
    assert resolved.registry is reg
    options = resolved.plugins["feature_extractor"][1]
    assert options.classifier == "fake-classifier" and isinstance(options.build_classifier(), FakeClassifier)
    with pytest.raises(RecipeError, match="no classifier plugin named 'fake-classifier'"):
        load_recipe(recipe)  # a fresh registry has no such classifier


def test_feature_extractor_takes_the_recipes_classifier_only_through_classifier_fields(registry):
    class Declared(augkit.FeatureExtractor):
        classifier_fields = ("net", "net_options")

        class Options(augkit.FeatureExtractor.Options):
            net: str | None = None
            net_options: dict | None = None

        def features(self, images):
            return images.flatten(1)

    class Undeclared(Declared):
        classifier_fields = None

    class Wrong(Declared):
        classifier_fields = ("classifier", "net_options")

    reg = augkit.get_plugin_manager(extra=[plugin_module("extractors", register_feature_extractors=lambda register: [
        register(name, cls) for name, cls in (("declared", Declared), ("undeclared", Undeclared), ("wrong", Wrong))])])
    recipe = base(classifier={"name": "efficientnetv2", "options": {"epochs": 2}})
    declared = load_recipe({**recipe, "feature_extractor": {"name": "declared"}}, registry=reg)
    options = declared.plugins["feature_extractor"][1]
    assert options.net == "efficientnetv2" and options.net_options == declared.plugins["classifier"][1].model_dump(mode="json")
    options = load_recipe({**recipe, "feature_extractor": {"name": "undeclared"}}, registry=reg).plugins["feature_extractor"][1]
    assert options.net is None and options.net_options is None
    with pytest.raises(RecipeError, match="'wrong' declares classifier_fields .* its options have no classifier"):
        load_recipe({**recipe, "feature_extractor": {"name": "wrong"}}, registry=reg)


# -- regimes: one table ----------------------------------------------------------------------


def test_a_regime_added_to_the_table_is_accepted_and_counted(monkeypatch, registry):
    from augkit.config import regimes
    from augkit.stages import study

    spec = regimes.RegimeSpec("fake+oversample", "test: oversampled real plus synthetic", uses_real=True,
                              synthetic="per_class", oversample=True)
    with pytest.raises(RecipeError, match="evaluation.regimes.1: Input should be 'real', .*got 'fake\\+oversample'"):
        load_recipe(base(evaluation={"regimes": ["real", "fake+oversample"]}), registry=registry)
    monkeypatch.setitem(regimes.REGIMES, spec.name, spec)
    resolved = load_recipe(base(evaluation={"regimes": ["real", "fake+oversample"], "ratios": [2]}), registry=registry)
    assert resolved.recipe.evaluation.all_regimes() == ["real", "fake+oversample", "fake+real@2"]
    needs = study.synthetic_needs(resolved.recipe.evaluation.all_regimes(), [4, 2], per_class=3, multiplier=1.0,
                                  balance=False)
    assert needs == {"export": [3, 3], "fake+oversample": [3, 3], "fake+real@2": [6, 6]}
    train = augkit.LabeledImages(torch.zeros(6, 1, 4, 4), torch.tensor([0, 0, 0, 0, 1, 1]), ["a", "b"])
    pool = augkit.LabeledImages(torch.ones(6, 1, 4, 4), torch.tensor([0, 1] * 3), ["a", "b"])
    assert study.regime_data("fake+oversample", train, pool, needs, seed=0).counts() == [4 + 3, 4 + 3]


def test_regime_names_parse_through_the_table():
    from augkit.config import regimes

    assert regimes.parse("fake+real") == (regimes.REGIMES["fake+real"], None)
    assert regimes.parse("fake+real@0.5") == (regimes.REGIMES["fake+real@R"], 0.5)
    assert regimes.REGIMES[regimes.SWEEP].at(2.0) == "fake+real@2" and regimes.control() == "real"
    for bad in ("fake+real@R", "real@2", "nope"):
        with pytest.raises(ValueError):
            regimes.parse(bad)


def test_a_step_budget_needs_a_classifier_that_can_train_to_one():
    reg = augkit.get_plugin_manager(extra=[plugin_module(
        "only_here", register_classifiers=lambda register: register("fake-classifier", FakeClassifier))])
    recipe = base(classifier={"name": "fake-classifier"}, feature_extractor={"name": "pixels"})
    with pytest.raises(RecipeError, match="evaluation.budget: 'steps', but the 'fake-classifier' classifier cannot "
                                          "train to a step budget .* set evaluation.budget: epochs"):
        load_recipe(recipe, registry=reg)
    resolved = load_recipe({**recipe, "evaluation": {"budget": "epochs"}}, registry=reg)
    assert resolved.recipe.evaluation.budget == "epochs" and not FakeClassifier.trains_to_budget()
