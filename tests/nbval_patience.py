"""A pytest plugin for the nbval runs: wait longer for a finished cell's outputs.

After a cell's execute reply, nbval reads each remaining output message with a
hard-coded 5 s timeout (nbval 0.11, issues #136 and #231 upstream). On a busy 2-core
CI machine a kernel can take longer than that to flush a training cell's outputs, and
the cell fails with "Timeout of 5 seconds exceeded waiting for output" although it ran
fine. Loaded with ``-p nbval_patience`` by ``tests/test_nbval.py``.
"""

from __future__ import annotations

import pytest
from nbval.plugin import IPyNbCell

OUTPUT_TIMEOUT_S = 120


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if isinstance(item, IPyNbCell):
            if not hasattr(item, "output_timeout"):
                raise RuntimeError(
                    "nbval no longer has IPyNbCell.output_timeout: see whether its "
                    "--nbval-output-timeout option exists now and use that instead"
                )
            item.output_timeout = OUTPUT_TIMEOUT_S
