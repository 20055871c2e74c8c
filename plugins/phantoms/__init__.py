"""Embedded phantom data sets: procedurally rendered chest radiographs and brain MRI slices.

They need no download and no patient data, so the quickstart, the tests and the
benchmarks run anywhere, with a class signal a classifier can learn and a generator can
reproduce. See ``chest.py`` and ``brain.py`` for what each class looks like.
"""

import augkit
from augkit_plugins.phantoms.brain import BrainPhantom
from augkit_plugins.phantoms.chest import ChestPhantom

__all__ = ["BrainPhantom", "ChestPhantom"]


@augkit.hookimpl
def register_datasets(register):
    register("chest-phantom", ChestPhantom)
    register("brain-phantom", BrainPhantom)
