"""Whether the audit's real-data classifier can stand in for the study's ("real", first seed) training.

It can when it is the same training to the last bit: same plugin, options, data and seed (the
audit trains on the study's splits with the recipe's seed), and the same thread count, since
``augkit evaluate`` must give the run's numbers. Side by side, the study's trainings run in
one-thread workers (:mod:`augkit.stages.side_by_side`); the audit then trains on one thread when
standing in saves the study work (beside a head start's worker, always).
"""

from __future__ import annotations

from augkit.compute import distributed
from augkit.config import regimes as regime_table
from augkit.stages import side_by_side
from augkit.stages.data import picklable


def n_trainings(resolved) -> int:
    """The study's (regime, generator seed, seed) trainings, as :func:`augkit.stages.study.evaluate` lists them."""
    evaluation = resolved.recipe.evaluation
    pools = max(evaluation.generator_seeds, 1)
    return evaluation.seeds * sum(pools if regime_table.uses_synthetic(r) else 1 for r in evaluation.all_regimes())


def workers_for(resolved, trainings: int) -> int:
    """Trainings side by side for ``trainings`` to train, as :func:`augkit.stages.study.evaluate` decides (1 over several processes,
    also asked from rank 0 working alone)."""
    cls, options = resolved.plugins["classifier"]
    if distributed.world().size > 1 or distributed.launched() or not trainings:
        return 1
    workers = side_by_side.worker_count(resolved.recipe.evaluation.workers, cls(options), trainings)
    return workers if workers == 1 or picklable(cls, options) else 1


def audit_stands_in(resolved) -> bool:
    """Whether the audit will train the study's ("real", first seed) classifier: it audits, the study has
    a ``real`` regime and the feature extractor's classifier is the study's, with its options."""
    recipe = resolved.recipe
    if not recipe.audit.enabled or "real" not in recipe.evaluation.all_regimes():
        return False
    build = getattr(resolved.build("feature_extractor").options, "build_classifier", None)
    if build is None:
        return False
    cls, options = resolved.plugins["classifier"]
    classifier = build()
    return type(classifier) is cls and classifier.options == options


def head_started(resolved) -> bool:
    """Whether a run starts the real-data trainings before the study (:func:`augkit.stages.head_start.head_start`)."""
    evaluation = resolved.recipe.evaluation
    if evaluation.head_start == "none" or distributed.world().size > 1 or side_by_side.cores() < 2:
        return False
    real_only = evaluation.seeds * sum(not regime_table.uses_synthetic(r) for r in evaluation.all_regimes())
    return real_only - audit_stands_in(resolved) > 0 and workers_for(resolved, n_trainings(resolved)) > 1


def audit_threads(resolved, classifier) -> int | None:
    """Threads the audit's real-data ``classifier`` trains with: 1, or None for this process's own.

    One when the study trains side by side and the audit's training, standing in for the study's
    ("real", first seed) one, saves it work: its numbers are then a worker's (one thread), which
    ``augkit evaluate`` reproduces. That is always so with a head start (a worker trains beside
    the audit: :func:`head_started`), else when the other trainings fill their rounds without it
    (with 2 workers: an even number left); otherwise it trains on every core, sooner, and the
    study trains its own.
    """
    cls, options = resolved.plugins["classifier"]
    evaluation = resolved.recipe.evaluation
    n = n_trainings(resolved)
    if "real" not in evaluation.all_regimes() or type(classifier) is not cls or classifier.options != options:
        return None
    if head_started(resolved):
        return 1  # beside the head start's worker: one thread is what this process has to spare
    workers = workers_for(resolved, n - 1)
    return 1 if workers > 1 and (n - 1) % workers == 0 else None


def reusable(resolved, trained: tuple | None, seed: int) -> dict:
    """The audit's real-trained classifier stands in for the study's ("real", seed) run when it is the same training.

    ``trained``: (classifier, its training rows) or None. The audit trains with the recipe's seed on
    the same training and validation splits, so only the plugin and its options need to match; and
    the thread count too: the study trains one at a time in this process (always so over several
    processes), or side by side in one-thread workers and the audit trained on one thread
    (:func:`audit_threads`). ``augkit evaluate`` must give the run's numbers.
    """
    cls, options = resolved.plugins["classifier"]
    if trained is None or type(trained[0]) is not cls or trained[0].options != options:
        return {}
    if workers_for(resolved, n_trainings(resolved)) == 1 or audit_threads(resolved, trained[0]) == 1:
        return {("real", seed): trained}
    return {}
