"""The one atomic file writer: write to a hidden temporary file beside the target, then rename.

A reader sees the old file or the new one, never a partial write; a killed writer leaves
at most a hidden ``.<name>.<random>.tmp`` file that no reader looks at.
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path to write; on clean exit it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_atomic(path: str | Path, write: Callable[[Path], Any]) -> Path:
    """Call ``write(tmp)`` and move the result into place as ``path``."""
    with atomic_path(path) as tmp:
        write(tmp)
    return Path(path)


def write_text_atomic(path: str | Path, text: str) -> Path:
    return write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: str | Path, data: Any, **dump_kwargs: Any) -> Path:
    dump_kwargs.setdefault("indent", 2)
    dump_kwargs.setdefault("default", str)
    return write_text_atomic(path, json.dumps(data, **dump_kwargs))
