"""Exercise checks: immediate, specific feedback after every stub.

Generic machinery lives in :mod:`labs.checks.core`; each lesson's checks live in a
module named after the lesson's topic (``labs.checks.welcome``, …) and are plain
:class:`FunctionCheck` objects::

    from labs.checks.welcome import check_softmax
    softmax = check_softmax(softmax)   # your function if it passed, else the reference
"""

from labs.checks.core import (
    CHECK_MIMETYPE,
    Case,
    CheckResult,
    Comparison,
    FunctionCheck,
    cmp,
    compare,
)

__all__ = ["CHECK_MIMETYPE", "Case", "CheckResult", "Comparison", "FunctionCheck", "cmp", "compare"]
