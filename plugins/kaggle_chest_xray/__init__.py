"""The Kaggle "Chest X-Ray Images (Pneumonia)" data set, read from its downloaded folder."""

import augkit
from augkit_plugins.kaggle_chest_xray.source import KaggleChestXray

__all__ = ["KaggleChestXray"]


@augkit.hookimpl
def register_datasets(register):
    register("kaggle-chest-xray", KaggleChestXray)
