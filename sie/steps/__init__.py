"""The daily steps: the only code that reads and writes the warehouse for a ``ds``.

``daily`` holds one function per step of ``sie_daily`` (and ``run_day``, all of them in
order); ``window``, ``models`` and ``scoring`` load and publish what the steps share.
"""

from sie.config import DAILY_PARAMS, SieConfig, load_config
from sie.log import setup


def params_config(params: dict | None) -> SieConfig:
    """A sie_daily task's config from its DAG params (through the one adapter); routes ``sie`` logging."""
    setup(target="stdout")  # the task log records stdout as info
    return load_config(params, DAILY_PARAMS)
