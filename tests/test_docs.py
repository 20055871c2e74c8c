"""docs/recipe.md documents every recipe key and every option of every default plugin."""

from pathlib import Path

from augkit.config.recipe import SHARED_KEYS, Recipe

DOC = (Path(__file__).parent.parent / "docs" / "recipe.md").read_text()


def test_every_default_plugin_option_is_documented(registry):
    missing = [
        f"{info.role} {info.name}: {field}"
        for info in registry.all()
        if info.distribution == "augkit"
        for field in info.cls.Options.model_fields
        if f"| `{field}` |" not in DOC and field not in SHARED_KEYS  # set once, at the top of the recipe
    ]
    assert not missing, missing


def test_every_recipe_key_is_documented():
    for key, field in Recipe.model_fields.items():
        sub = getattr(field.annotation, "model_fields", None)
        names = [f"{key}.{k}" for k in sub] if sub and key not in ("dataset",) and "name" not in sub else [key]
        for name in names:
            assert f"`{name}`" in DOC or f"`{name.split('.')[0]}`" in DOC, name


def test_generated_reference_is_current(registry):
    from augkit.config.reference import reference

    committed = (Path(__file__).parent.parent / "docs" / "reference.md").read_text()
    assert committed == reference(registry), "docs/reference.md is stale: run `augkit reference > docs/reference.md`"
