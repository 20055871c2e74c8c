"""A conditional WGAN-GP generator for augkit, registered as ``wgan-gp``."""

import augkit
from augkit_wgan.model import WGANGP

__all__ = ["WGANGP"]


@augkit.hookimpl
def register_generators(register):
    register("wgan-gp", WGANGP)
