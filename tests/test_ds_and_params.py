from datetime import UTC, date, datetime

import pytest

from sie.config import BENCH_PARAMS, DAILY_PARAMS, load_config
from sie.ds import Ds


def test_ds_param_wins():
    start = datetime(2026, 11, 19, 2, tzinfo=UTC)
    assert Ds.resolve("2026-11-21", start) == "2026-11-21"


def test_data_interval_start_when_no_param():
    assert Ds.resolve(None, datetime(2026, 11, 19, 2, tzinfo=UTC)) == "2026-11-19"
    assert Ds.resolve("", "2026-11-19T02:00:00+00:00") == "2026-11-19"


def test_bad_or_missing_day_is_clear():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        Ds.resolve("21/11/2026", None)
    with pytest.raises(ValueError, match="no ds param"):
        Ds.resolve(None, None)
    for bad in ("2026-02-30", "2026-1-05", " ", "2026-11-19T00:00"):
        with pytest.raises(ValueError, match="ds must be"):
            Ds(bad)


def test_ds_is_a_day_value():
    day = Ds("2026-11-03")
    assert isinstance(day, str) and Ds(day) is day and Ds(date(2026, 11, 3)) == day
    assert day.date == date(2026, 11, 3) and day.shift(-3) == "2026-10-31"
    assert day.window(3) == ["2026-11-01", "2026-11-02", "2026-11-03"]
    assert Ds.span("2026-12-30", 3) == ["2026-12-30", "2026-12-31", "2027-01-01"]
    with pytest.raises(ValueError):
        day.window(0)


def test_daily_params_through_the_one_adapter():
    cfg = load_config({"methods": "random,loss", "config": {"train": {"epochs": 1}}}, DAILY_PARAMS)
    assert cfg.importance.methods == ["random", "loss"] and cfg.train.epochs == 1
    assert load_config({"methods": ["grad_norm"]}, DAILY_PARAMS).importance.methods == ["grad_norm"]
    cfg = load_config({"keep_ratios": "0.3,0.5", "seeds": [1, 2]}, DAILY_PARAMS)
    assert cfg.evaluate.keep_ratios == [0.3, 0.5] and cfg.evaluate.seeds == [1, 2]


def test_bench_params_through_the_one_adapter():
    params = {"keep_ratios": "0.1,1.0", "seeds": "4", "model": {"epochs": 2}, "dataset": "esci", "days": None}
    cfg = load_config(params, BENCH_PARAMS, pairs=["bench.grid.baselines=random"])
    assert cfg.bench.grid.keep_ratios == [0.1, 1.0] and cfg.bench.grid.seeds == [4]
    assert cfg.bench.grid.baselines == ["random"] and cfg.train.epochs == 2
    assert cfg.bench.dataset == "esci" and cfg.bench.days == 1  # None = not given
    # --set pairs win over options, options over the nested `config` param
    cfg = load_config({"config": {"bench": {"days": 3}}, "days": 2}, BENCH_PARAMS, pairs=["bench.days=4"])
    assert cfg.bench.days == 4
    assert load_config({"config": {"bench": {"days": 3}}, "days": 2}, BENCH_PARAMS).bench.days == 2
