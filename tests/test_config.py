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


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"train": {"epochs": 0}}, "train.epochs=0 is out of range"),
        ({"train": {"batch_size": "0"}}, "train.batch_size=0 is out of range"),
        ({"simulate": {"bot_rate": 7}}, "simulate.bot_rate=7 is out of range"),
        ({"train": {"lr": 0.0}}, "train.lr=0.0 is out of range"),
        ({"train": {"epochs": "two"}}, "setting train.epochs: expected int"),
        ({"bench": {"grid": {"keep_ratios": [0.5, 0.0]}}}, "bench.grid.keep_ratios=0.0 is out of range"),
        ({"importance": {"aum_mode": "ranked"}}, "importance.aum_mode='ranked' must be one of"),
        ({"validate": {"min_ctr": 0.5, "max_ctr": 0.1}}, "min_ctr must not exceed"),
    ],
)
def test_every_setting_is_checked_when_loaded(overrides, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        SieConfig.load(overrides)


def test_every_numeric_setting_has_a_range():
    import dataclasses

    from sie.config import RANGES

    def numeric(obj, prefix=""):
        for f in dataclasses.fields(obj):
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                yield from numeric(value, f"{prefix}{f.name}.")
            elif isinstance(value, int | float) and not isinstance(value, bool):
                yield prefix + f.name
            elif isinstance(value, list) and value and isinstance(value[0], int | float):
                yield prefix + f.name
            elif f.type in ("list[int]", "list[float]"):  # numeric lists empty by default (bench.world_seeds)
                yield prefix + f.name

    assert set(numeric(SieConfig())) == set(RANGES)


def test_cli_errors_are_one_line_with_a_non_zero_exit(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    sie = str(Path(sys.executable).parent / "sie")
    out = subprocess.run(
        [sie, "--set", "train.epochs=0", "train", "--ds", "2026-11-20"], capture_output=True, text=True
    )
    assert out.returncode == 1
    assert (
        out.stderr.strip().splitlines()[-1]
        == "sie: error: ValueError: setting train.epochs=0 is out of range [1, None]"
    )
    out = subprocess.run([sie, "train", "--ds", "2026-02-30"], capture_output=True, text=True)
    assert out.returncode == 1 and "ds must be a real calendar day" in out.stderr
    debug = subprocess.run([sie, "--debug", "train", "--ds", "2026-02-30"], capture_output=True, text=True)
    assert debug.returncode == 1 and "Traceback" in debug.stderr


def test_replication_and_k_fold_settings():
    from sie.config import load_config

    cfg = load_config(pairs=["bench.world_seeds=7,8,9", "bench.model_seeds=0,1", "bench.folds=5"])
    assert (cfg.bench.world_seeds, cfg.bench.model_seeds, cfg.bench.folds) == ([7, 8, 9], [0, 1], 5)
    with pytest.raises(ValueError, match="k-fold needs k >= 2"):
        load_config(pairs=["bench.folds=1"])
    with pytest.raises(ValueError, match="holdout_fold must be below"):
        load_config(pairs=["simulate.holdout_folds=3", "simulate.holdout_fold=3"])
    with pytest.raises(ValueError, match="bench.world_seeds=.*-1.* is out of range"):
        load_config(pairs=["bench.world_seeds=-1"])
