"""Is the synthetic data good, and is it safe? Fidelity, diversity, label faithfulness, memorisation.

Everything is measured in a feature space given by a feature-extractor plugin (default: a
classifier trained on the real training split only) and, for copies, in pixel space too.

Fidelity and diversity (overall and per class): Frechet distance, KID, and precision /
recall / density / coverage (Naeem et al. 2020, k nearest neighbours). Each comes with a
*real-vs-real floor*: the same metric between the reference (training) images and an
equally large set of real images the generator never saw (the held-out set, or, without
one, the other half of the reference). A synthetic set is "as good as real" when its
figure reaches the floor. Means and standard deviations are over ``repeats`` random 80 %
subsets of the compared sets (synthetic images drawn with the real comparator's class mix).

Label faithfulness: the real-trained classifier labels each synthetic image; the confusion
of requested vs recognised class sits beside the same classifier's accuracy on real held-out
images.

Memorisation: each synthetic image's distance to its nearest training image (flip-invariant:
the image and its mirror are both compared), in pixel space (RMS over pixels) and in feature
space, against the same distances of held-out real images. An image is a *near copy* when
either distance is below ``copy_margin`` x the ``copy_quantile`` quantile of the held-out
distances. The data-copying statistic C_T (Meehan et al. 2020) compares, cell by cell of a
k-means partition of the training features, synthetic vs held-out distances to the training
set (Mann-Whitney Z): well below 0 (say < -3) means the generator copies, well above 0 means
its samples are farther from the training data than new real images are.

The package: ``maths`` (the metrics), ``auditor`` (``Auditor``, its ``Screen`` and summary,
``audit/flags.csv``), ``plots`` (the audit's figures), ``folders`` (``augkit audit`` on folders
of images). Everything public is importable from ``augkit.audit`` itself.
"""

from augkit.audit.auditor import (
    FIDELITY,
    FLAG_FIELDS,
    LOWER_IS_BETTER,
    AuditSettings,
    Auditor,
    Screen,
    regenerate,
    warnings_for,
    write_flags,
)
from augkit.audit.folders import audit_folders
from augkit.audit.maths import data_copying, fidelity, frechet_distance, kid, nearest, prdc
from augkit.audit.plots import plot_closest_pairs, plot_distances

__all__ = [
    "FIDELITY", "FLAG_FIELDS", "LOWER_IS_BETTER", "AuditSettings", "Auditor", "Screen", "audit_folders",
    "data_copying", "fidelity", "frechet_distance", "kid", "nearest", "plot_closest_pairs", "plot_distances",
    "prdc", "regenerate", "warnings_for", "write_flags",
]
