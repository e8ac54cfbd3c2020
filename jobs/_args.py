"""The arguments every job takes, turned into (config, day) by the one config adapter."""

from __future__ import annotations

import argparse

from sie.config import DAILY_PARAMS, SieConfig, load_config
from sie.ds import Ds
from sie.log import setup


def parser(doc: str | None) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ds", required=True, type=Ds, help="the day, YYYY-MM-DD")
    p.add_argument("--warehouse", help="warehouse root (default: SIE_WAREHOUSE / config)")
    p.add_argument("--config", help="JSON config file (default: SIE_CONFIG)")
    p.add_argument("--set", action="append", default=[], metavar="SECTION.FIELD=VALUE", help="config override")
    return p


def config(args: argparse.Namespace, **params) -> SieConfig:
    setup()
    return load_config(params, DAILY_PARAMS, pairs=args.set, warehouse=args.warehouse, config_file=args.config)
