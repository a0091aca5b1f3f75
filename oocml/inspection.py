"""``oocml.inspection``, as documented: the weights of a fitted model by feature name, the class
means of naive Bayes and the centres of k-means (see :mod:`oocml.evaluation.inspection`)."""

from .evaluation.inspection import *  # noqa: F403
from .evaluation.inspection import __all__  # noqa: F401
