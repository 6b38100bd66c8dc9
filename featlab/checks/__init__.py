"""Automatic checks for the exercise notebooks in ``exercises/``, one module per notebook.

Each ``check_*`` takes the learner's function (or result), compares it with featlab's own
implementation or a library reference on fresh inputs, prints a ✓ line when right, and
raises :class:`ExerciseError` (an AssertionError) saying what is wrong when not.
Exercise ``NN`` calls ``fl.checks.check_…``; the code lives in ``checks/nbNN_<topic>.py``.

One meaning per outcome: every check is decorated with ``learner_check`` (``_common.py``), which
calls the learner's function through one path, so an exception raised inside it, or a change to
the tensors/arrays it was given, is an ExerciseError naming the call (a failed check). Any other
exception escaping a check is a bug of the check itself.

Every message a learner sees is marked for translation (``_("... {got} ...").format(got=...)``) and
given in the language :mod:`featlab.i18n` chooses: Chinese in ``exercises/zh/``, English elsewhere
(``FEATLAB_LANG`` overrides; docs/languages.md).
"""
from ._common import ExerciseError
from .nb01_convolution import *  # noqa: F401,F403
from .nb02_receptive import *  # noqa: F401,F403
from .nb03_reshape import *  # noqa: F401,F403
from .nb04_gap_cam import *  # noqa: F401,F403
from .nb05_feature_maps import *  # noqa: F401,F403
from .nb06_grad_cam import *  # noqa: F401,F403
from .nb07_embeddings import *  # noqa: F401,F403
from .nb08_arcface import *  # noqa: F401,F403
from .nb09_fisher import *  # noqa: F401,F403
from .nb10_frechet import *  # noqa: F401,F403
from .nb11_classic import *  # noqa: F401,F403
from .nb12_performance import *  # noqa: F401,F403
from .nb13_debugging import *  # noqa: F401,F403
from .nb14_dense import *  # noqa: F401,F403
from .nb15_activation import *  # noqa: F401,F403
from .nb16_search import *  # noqa: F401,F403
