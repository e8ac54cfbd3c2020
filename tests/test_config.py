import json

import pytest

from sie.config import SieConfig


def test_defaults_and_nested_overrides():
    cfg = SieConfig.load({"train": {"epochs": 7}, "importance": {"methods": ["loss"]}})
    assert cfg.train.epochs == 7
    assert cfg.importance.methods == ["loss"]
    assert cfg.simulate.world == "synthetic"


def test_env_and_file_priority(tmp_path, monkeypatch):
    path = tmp_path / "cfg.json"
    path.write_text(json.dumps({"train": {"epochs": 3, "lr": 0.5}, "warehouse": "/from/file"}))
    monkeypatch.setenv("SIE_CONFIG", str(path))
    monkeypatch.setenv("SIE_TRAIN__EPOCHS", "5")
    monkeypatch.setenv("SIE_IMPORTANCE__METHODS", "random,loss")
    monkeypatch.setenv("SIE_EVALUATE__KEEP_RATIOS", "0.1,0.5")
    monkeypatch.setenv("SIE_BENCH__GRID__SEEDS", "3,4")  # nested sections: one __ per level
    cfg = SieConfig.load({"train": {"lr": 0.25}})
    assert cfg.warehouse == "/from/file"  # file
    assert cfg.train.epochs == 5  # env beats file
    assert cfg.train.lr == 0.25  # explicit beats file
    assert cfg.importance.methods == ["random", "loss"]
    assert cfg.evaluate.keep_ratios == [0.1, 0.5]
    assert cfg.bench.grid.seeds == [3, 4]


def test_unknown_key_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown config key 'epochz'"):
        SieConfig.load({"train": {"epochz": 1}})


def test_overrides_from_pairs_nests_and_rejects_missing_value():
    from sie.config import overrides_from_pairs

    tree = overrides_from_pairs(["train.epochs=2", "simulate.bot_rate=0.1"], {"warehouse": "/w"})
    assert tree == {"warehouse": "/w", "train": {"epochs": "2"}, "simulate": {"bot_rate": "0.1"}}
    assert SieConfig.load(tree).train.epochs == 2
    with pytest.raises(ValueError, match="SECTION.FIELD=VALUE"):
        overrides_from_pairs(["train.epochs"])
