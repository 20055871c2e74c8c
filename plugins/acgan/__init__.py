"""The paper's generator: a class-conditional AC-GAN."""

import augkit
from augkit_plugins.acgan.acgan import ACGAN

__all__ = ["ACGAN"]


@augkit.hookimpl
def register_generators(register):
    register("acgan", ACGAN)
