"""The plugin contract kit, in the spirit of scikit-learn's ``check_estimator``::

    from augkit.testing import check_generator

    def test_contract():
        check_generator(MyGAN, image_size=16, width=8, iterations=2)

Each ``check_*`` builds the plugin as the runner does (``cls(cls.Options(**options))``), runs it
on tiny synthetic data and raises :class:`ContractError` (an ``AssertionError``) naming the
plugin class, the check, what was expected and what came back. Pass options that make the
plugin tiny: the checks train on a dozen 16x16 images. The global torch RNG is left alone.

One module per role family: ``networks`` (generator, classifier), ``distributed``, ``data``
(dataset, preprocessor) and ``exporters``; ``_checker`` holds what they share.
"""

from augkit.testing._checker import ContractError
from augkit.testing.data import check_dataset, check_preprocessor
from augkit.testing.distributed import check_distributed
from augkit.testing.exporters import check_exporter
from augkit.testing.networks import check_classifier, check_generator

__all__ = ["ContractError", "check_classifier", "check_dataset", "check_distributed", "check_exporter", "check_generator",
           "check_preprocessor"]
