"""A test plugin: the smallest generator that fills the Generator role, registered as ``minimal``.

Not installed: tests register it with ``augkit.get_plugin_manager(extra=[minimal_generator])``
and hand that registry to ``augkit.load_recipe(..., registry=...)`` and the library functions.
"""

import augkit
from minimal_generator.generator import MinimalGenerator

__all__ = ["MinimalGenerator"]


@augkit.hookimpl
def register_generators(register):
    register("minimal", MinimalGenerator)
