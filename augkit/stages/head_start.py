"""A head start for the study's real-data classifier trainings (``evaluation.head_start``).

The trainings on real data only (``real``, ``real+classic``, ``real+oversample``) need no synthetic
image, so a run queues them before the study in a :class:`augkit.stages.side_by_side.Pool` whose
one worker starts beside the audit or the generator; :func:`augkit.stages.study.evaluate` then adds
the others and opens every worker. docs/evaluation.md, "A head start for the real-data trainings".
"""

from __future__ import annotations

import contextlib
import logging

from augkit.extension.roles import LabeledImages
from augkit.stages import reuse, side_by_side
from augkit.stages.reuse import n_trainings
from augkit.stages.study import budget, job_list, recipe_needs, regime_data

log = logging.getLogger("augkit")


class HeadStart:
    """The study's real-data trainings (:func:`head_start`), queued in ``pool`` before the study; ``jobs`` maps
    their index in :func:`job_list` to (regime, None, seed); they start at stage ``when`` (generator or audit)."""

    def __init__(self, pool: side_by_side.Pool, jobs: dict[int, tuple], when: str):
        self.pool, self.jobs, self.when, self.started = pool, jobs, when, False

    @contextlib.contextmanager
    def during(self, stage: str):
        """Run ``stage`` (generator or audit) of the run: the head start's worker begins at its stage, and from
        then on this process computes on one core fewer."""
        if stage == self.when:
            self.pool.slots(1)
            self.started = True
        with side_by_side.beside(self.pool, max(1, side_by_side.cores() - 1)) if self.started \
                else contextlib.nullcontext():
            yield  # the synthetic images are still sampled on every core (side_by_side.full_speed)


def during(head: HeadStart | None, stage: str):
    """:meth:`HeadStart.during`, or nothing without a head start."""
    return contextlib.nullcontext() if head is None else head.during(stage)


@contextlib.contextmanager
def head_start(resolved, train: LabeledImages, val: LabeledImages, test: LabeledImages, seeds: list[int]):
    """Queue the trainings on real data only (``real``, ``real+classic``, ``real+oversample``, ...: they need no
    synthetic image) for one one-thread worker that starts before the study (``evaluation.head_start``: when the
    audit starts, or the generator); yields a :class:`HeadStart` for :func:`evaluate`, or None when the study
    does not train side by side or the recipe says none.

    ``audit``: the audit's classifier trains on one thread, so a worker beside it costs nothing.
    ``generator``: the generator trains on one core fewer; on 2 cores the study-size AC-GAN gains only
    1.3-1.5x from its second thread, the CPU-size diffusion model 1.6x (benchmarks/overlap.py), so it pays
    for the first and not the second. The ("real", first seed) training stays with the audit when its
    classifier stands in for it (:func:`augkit.stages.reuse.audit_stands_in`). A run that fails or is
    interrupted stops the worker.
    """
    evaluation = resolved.recipe.evaluation
    if not reuse.head_started(resolved):
        yield None
        return
    regimes = evaluation.all_regimes()
    generators = list(range(max(evaluation.generator_seeds, 1)))
    jobs = {j: key for j, key in enumerate(job_list(regimes, generators, seeds)) if key[1] is None}
    if reuse.audit_stands_in(resolved):
        jobs = {j: key for j, key in jobs.items() if key[::2] != ("real", seeds[0])}
    cls, options = resolved.plugins["classifier"]
    needs = recipe_needs(resolved.recipe, train)
    datasets = {r: regime_data(r, train, None, needs, seed=seeds[0]) for r in {key[0] for key in jobs.values()}}
    pool = side_by_side.Pool(cls, options, val, test.images, budget(resolved, train),
                             reuse.workers_for(resolved, n_trainings(resolved)), slots=0)
    with pool:
        pool.add([side_by_side.Training(j, datasets[regime], seed) for j, (regime, _, seed) in jobs.items()])
        log.info("%d classifier trainings on real data start beside the %s (evaluation.head_start)", len(jobs),
                 evaluation.head_start)
        yield HeadStart(pool, jobs, evaluation.head_start)
