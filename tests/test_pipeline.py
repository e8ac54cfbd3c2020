from datetime import UTC, datetime

import pytest

from sie.pipeline import config_from_params, resolve_ds


def test_ds_param_wins():
    start = datetime(2026, 11, 19, 2, tzinfo=UTC)
    assert resolve_ds("2026-11-21", start) == "2026-11-21"


def test_data_interval_start_when_no_param():
    assert resolve_ds(None, datetime(2026, 11, 19, 2, tzinfo=UTC)) == "2026-11-19"
    assert resolve_ds("", "2026-11-19T02:00:00+00:00") == "2026-11-19"


def test_bad_or_missing_day_is_clear():
    with pytest.raises(ValueError, match="YYYY-MM-DD"):
        resolve_ds("21/11/2026", None)
    with pytest.raises(ValueError, match="no ds param"):
        resolve_ds(None, None)


def test_config_from_params():
    cfg = config_from_params({"methods": "random,loss", "config": {"train": {"epochs": 1}}})
    assert cfg.importance.methods == ["random", "loss"] and cfg.train.epochs == 1
    assert config_from_params({"methods": ["grad_norm"]}).importance.methods == ["grad_norm"]
