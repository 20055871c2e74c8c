"""The plugin manager: entry-point discovery, lookup by name, clear errors."""

from __future__ import annotations

import difflib
import importlib.metadata
from dataclasses import dataclass, field
from types import ModuleType

import pluggy

from augkit.extension import hookspecs
from augkit.extension.roles import ROLES, Plugin

ENTRY_POINT_GROUP = "augkit"

# role -> the hook that registers it
HOOKS = {
    "dataset": "register_datasets",
    "preprocessor": "register_preprocessors",
    "generator": "register_generators",
    "classifier": "register_classifiers",
    "exporter": "register_exporters",
    "feature_extractor": "register_feature_extractors",
}


class PluginError(Exception):
    """A plugin could not be found, loaded or registered."""


@dataclass(frozen=True)
class PluginInfo:
    role: str
    name: str
    cls: type[Plugin]
    distribution: str
    version: str

    def as_dict(self) -> dict[str, str]:
        return {"role": self.role, "name": self.name, "distribution": self.distribution, "version": self.version}


@dataclass
class Registry:
    """Every registered plugin class by role and name, plus the plugins that failed to load."""

    pm: pluggy.PluginManager
    plugins: dict[str, dict[str, PluginInfo]] = field(default_factory=lambda: {r: {} for r in ROLES})
    failures: dict[str, str] = field(default_factory=dict)  # entry point -> error

    def get(self, role: str, name: str) -> type[Plugin]:
        if role not in self.plugins:
            raise PluginError(f"unknown role {role!r}; roles are: {', '.join(ROLES)}")
        try:
            return self.plugins[role][name].cls
        except KeyError:
            raise PluginError(self.unknown_name_message(role, name)) from None

    def unknown_name_message(self, role: str, name: str) -> str:
        known = sorted(self.plugins[role])
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        msg = f"no {role} plugin named {name!r}"
        if close:
            msg += f"; did you mean {' or '.join(repr(c) for c in close)}?"
        msg += f"{'' if close else '.'} Installed {role} plugins: {', '.join(known) or '(none)'}."
        if self.failures:
            msg += " Plugins that failed to load: " + ", ".join(sorted(self.failures)) + " (see `augkit plugins`)."
        return msg

    def all(self) -> list[PluginInfo]:
        return [info for role in ROLES for info in sorted(self.plugins[role].values(), key=lambda i: i.name)]


def get_plugin_manager(*, load_entry_points: bool = True, extra: list[ModuleType | object] = ()) -> Registry:
    """Build a fresh plugin manager and collect every registration.

    A plugin that fails to import is recorded in ``Registry.failures`` (and reported by
    ``augkit plugins``); the others keep working. Two plugins registering one name in
    one role is an error naming both distributions. A module in ``extra`` that an entry point
    has registered already (a plugin's own tests, run with the plugin installed) counts once.
    """
    pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
    pm.add_hookspecs(hookspecs)
    registry = Registry(pm)
    dists: dict[str, tuple[str, str]] = {}  # plugin name -> (distribution, version)
    if load_entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if pm.get_plugin(ep.name) is not None or pm.is_blocked(ep.name):
                continue
            try:
                module = ep.load()
                pm.register(module, name=ep.name)
            except Exception as exc:  # a broken third-party plugin must not take augkit down
                registry.failures[ep.name] = f"{type(exc).__name__}: {exc}"
                continue
            if ep.dist is not None:
                dists[ep.name] = (ep.dist.metadata["Name"], ep.dist.version)
    for plugin in extra:
        if pm.is_registered(plugin):  # installed too (its entry point loaded the same module): once is enough
            continue
        name = pm.register(plugin)
        dists[name] = (getattr(plugin, "__name__", name), "unknown")
    pm.check_pending()

    for role, hook_name in HOOKS.items():
        hook = getattr(pm.hook, hook_name)
        for impl in hook.get_hookimpls():
            dist, version = dists.get(impl.plugin_name, (impl.plugin_name, "unknown"))

            def register(name: str, cls: type, *, _role=role, _dist=dist, _version=version) -> None:
                _register(registry, _role, name, cls, _dist, _version)

            try:
                impl.function(**{a: register for a in impl.argnames})
            except PluginError:
                raise
            except Exception as exc:
                registry.failures[impl.plugin_name] = f"{hook_name} raised {type(exc).__name__}: {exc}"
    return registry


def _register(registry: Registry, role: str, name: str, cls: type, dist: str, version: str) -> None:
    base = ROLES[role]
    if not (isinstance(cls, type) and issubclass(cls, base)):
        raise PluginError(f"{dist} registered {role} {name!r} as {cls!r}, which is not a subclass of augkit.{base.__name__}")
    existing = registry.plugins[role].get(name)
    if existing is not None and existing.cls is not cls:
        raise PluginError(
            f"two plugins register the {role} name {name!r}: {existing.distribution} "
            f"({existing.cls.__module__}.{existing.cls.__qualname__}) and {dist} "
            f"({cls.__module__}.{cls.__qualname__}); uninstall one of them"
        )
    registry.plugins[role][name] = PluginInfo(role, name, cls, dist, version)
