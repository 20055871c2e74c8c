"""A class-conditional diffusion model on MONAI's DiffusionModelUNet, with classifier-free guidance."""

import augkit
from augkit_plugins.diffusion.diffusion import Diffusion

__all__ = ["Diffusion"]


@augkit.hookimpl
def register_generators(register):
    register("diffusion", Diffusion)
