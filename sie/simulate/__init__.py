"""The built-in search-log simulator (the default data source); see docs/SIMULATOR.md.

Public API::

    simulate_day(cfg, ds) -> dict          one day into the raw landing contract
    simulate_days(cfg, start, days) -> list[dict]
    get_world(cfg.simulate) -> World       the catalog / intents / users in memory
    simulate_traffic(world, cfg.simulate, ds) -> DayLog   the day as numpy arrays
    world_stats(world, log) -> dict        CTR by position, noise shares, counts
"""

from sie.simulate.behaviour import ACTIONS, LABEL_NOISE, NOISE_TYPES, DayLog, simulate_traffic
from sie.simulate.core import oracle_table, simulate_day, simulate_day_with_arrays, simulate_days
from sie.simulate.stats import world_stats
from sie.simulate.world import World, get_world, resolve_esci_dir

__all__ = [
    "ACTIONS",
    "LABEL_NOISE",
    "NOISE_TYPES",
    "DayLog",
    "World",
    "get_world",
    "oracle_table",
    "resolve_esci_dir",
    "simulate_day_with_arrays",
    "simulate_day",
    "simulate_days",
    "simulate_traffic",
    "world_stats",
]
