"""Prepare a day's landed raw files for Spark: sniff, check, and give them safe names.

Why a pre-pass: Spark treats a path as a glob and a URI (a ``:``, ``[`` or ``{`` in a
file name fails with "Path does not exist"), picks the codec by the name's extension (a
plain file named ``.gz`` fails, a gzip file named ``.json`` is read as bytes) and fails
the whole job on a truncated or damaged gzip stream. So each landed file is sniffed by
its magic bytes and linked into a private folder under a safe name whose extension says
what it is; a compressed stream is decompressed once here to check it (cheap next to the
parse, and streamed), and where it is damaged only its readable lines are copied out,
the rest becoming one ``truncated_file`` quarantine row. Lines keep the landed file's
own name in the ``file`` column.

The same pass notes whether a file holds ``"_index"`` at all: only such files can hold
OpenSearch bulk action lines, and only they are read a second time, line by line, to find
the source each line's preceding action line names (``routes``: one byte per line, which
Spark looks up by line number; no shuffle, no window over the day's lines).
"""

from __future__ import annotations

import bz2
import dataclasses
import gzip
import json
import logging
import lzma
import os
import re
import shutil
import time
import uuid
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sie.ingest import reasons as R

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
_INDEX_KEY = b'"_index"'
_GZIP, _BZIP2, _XZ = b"\x1f\x8b", b"BZh", b"\xfd7zXZ\x00"  # (a text line may start with "BZh": see _BZIP2_HEAD)
# Formats Spark cannot read here: a whole file of one of them is quarantined (`unreadable_file`).
_UNSUPPORTED = {
    b"\x28\xb5\x2f\xfd": "zstd",
    b"PK\x03\x04": "zip",
    b"7z\xbc\xaf\x27\x1c": "7z",
    b"\x04\x22\x4d\x18": "lz4",
}
# bzip2: "BZh", the block size, then a block's (or the empty stream's end) 48-bit magic
_BZIP2_HEAD = re.compile(rb"BZh[1-9](1AY&SY|\x17rE8P\x90)")
_DAMAGE = (zlib.error, OSError, EOFError, lzma.LZMAError)
FOLDER_PREFIX = "ingest-input-"
# A line's route code: the source the `_index` of the bulk action line before it names.
ROUTE_CODES = {"ubi_queries": 1, "ubi_events": 2}
_BULK_ACTIONS = ("index", "create", "update", "delete")
_DOC_FIELDS = ("timestamp", "action_name", "query_id", "_source")
_SPACE = b" \t\n\x0b\x0c\r"
_BOM = b"\xef\xbb\xbf"


@dataclass(frozen=True)
class LandedFile:
    """One landed raw file, prepared for Spark.

    ``read_as``: the safe path Spark reads (a link to the file, or a copy of its readable
    decompressed lines), None when nothing can be read. ``bulk``: the file contains
    ``"_index"``; ``routes``: then byte ``n - 1`` is the :data:`ROUTE_CODES` code of line
    ``n`` (0: not after a bulk action line naming a source). ``fault``/``detail``: a
    file-level reason (``truncated_file``, ``unreadable_file``). ``tail``/``tail_line``:
    for ``truncated_file``, the bytes after its last complete line and that line's number.
    """

    index: int
    source: str
    name: str
    path: Path
    read_as: Path | None
    bulk: bool = False
    fault: str | None = None
    detail: str | None = None
    tail: bytes | None = None
    tail_line: int | None = None
    routes: bytes | None = None


def list_raw_files(root: Path) -> list[Path]:
    """Data files of one landing folder: every regular, non-hidden file (any name, any format).

    A link to nothing is not a file: it is logged and skipped.
    """
    if not root.is_dir():
        return []
    out = []
    for p in sorted(root.iterdir()):
        if p.name.startswith((".", "_")):
            continue
        if p.is_file():
            out.append(p)
        elif p.is_symlink():
            log.warning("skipping %s: a link to nothing", p)
    return out


@contextmanager
def prepared(files: dict[str, list[Path]], parent: Path) -> Iterator[list[LandedFile]]:
    """The day's files prepared in a private folder under ``parent`` (removed on exit).

    ``parent`` must be readable by Spark's executors (the warehouse's staging folder).
    """
    _remove_stale(parent)
    folder = parent / f"{FOLDER_PREFIX}{uuid.uuid4().hex}"
    folder.mkdir(parents=True)
    try:
        landed = [p for source in sorted(files) for p in files[source]]
        sources = [source for source in sorted(files) for _ in files[source]]
        yield [with_routes(prepare(i, s, path, folder)) for i, (s, path) in enumerate(zip(sources, landed))]
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_stale(parent: Path, older_than_s: float = 86_400.0) -> None:
    """Remove private folders a killed ingest left behind (older than a day)."""
    if not parent.is_dir():
        return
    for p in parent.glob(f"{FOLDER_PREFIX}*"):
        try:
            if time.time() - p.stat().st_mtime > older_than_s:
                shutil.rmtree(p, ignore_errors=True)
        except OSError:
            pass


def display_name(path: Path) -> str:
    """The file's name as valid UTF-8 text (a name's undecodable bytes become U+FFFD)."""
    return os.fsencode(path.name).decode("utf-8", "replace")


def prepare(index: int, source: str, path: Path, folder: Path) -> LandedFile:
    """Sniff one landed file and give Spark a safe path to it (see the module docstring)."""
    base = LandedFile(index, source, display_name(path), path, None)
    try:
        with open(path, "rb") as f:
            magic = f.read(10)
    except OSError as e:
        return _unreadable(base, f"cannot be opened: {e.strerror or e}")
    for prefix, fmt in _UNSUPPORTED.items():
        if magic.startswith(prefix):
            return _unreadable(
                base, f"a {fmt} file (magic bytes {prefix.hex()}): the ingest reads plain, gzip, bzip2, xz"
            )
    target = path.resolve()
    if magic.startswith(_GZIP):
        damage, bulk = _check(path, "gzip")
        if damage is None:  # a healthy gzip file: Spark decompresses it itself
            return _link(base, target, folder / f"{index:06d}.gz", bulk)
        return _copy_readable(base, "gzip", folder, damage)
    if _BZIP2_HEAD.match(magic) or magic.startswith(_XZ):  # rare: always a decompressed copy (also checks it)
        fmt = "xz" if magic.startswith(_XZ) else "bzip2"
        return _copy_readable(base, fmt, folder, None)
    try:
        bulk = _holds_index_key(path)
    except OSError as e:
        return _unreadable(base, f"cannot be read: {e.strerror or e}")
    return _link(base, target, folder / f"{index:06d}.txt", bulk)


def _unreadable(base: LandedFile, detail: str) -> LandedFile:
    return LandedFile(base.index, base.source, base.name, base.path, None, fault=R.UNREADABLE_FILE, detail=detail)


def _link(base: LandedFile, target: Path, link: Path, bulk: bool) -> LandedFile:
    link.symlink_to(target)
    return LandedFile(base.index, base.source, base.name, base.path, link, bulk=bulk)


def _holds_index_key(path: Path) -> bool:
    with open(path, "rb") as f:
        return _find_index_key(iter(lambda: f.read(_CHUNK), b""))


def _find_index_key(chunks) -> bool:
    """Whether ``"_index"`` occurs in the stream (also across chunk boundaries); consumes ``chunks``."""
    found, carry = False, b""
    for chunk in chunks:
        if not found and (_INDEX_KEY in chunk or _INDEX_KEY in carry + chunk[: len(_INDEX_KEY)]):
            found = True
        carry = chunk[-len(_INDEX_KEY) :]
    return found


def _decompressor(fmt: str):
    if fmt == "gzip":
        return zlib.decompressobj(31)
    return bz2.BZ2Decompressor() if fmt == "bzip2" else lzma.LZMADecompressor()


_MAGIC = {"gzip": _GZIP, "bzip2": _BZIP2, "xz": _XZ}


class _Damaged(Exception):
    """The compressed stream cannot be read past this point."""


def _decompressed(path: Path, fmt: str, exact: bool = False) -> Iterator[bytes]:
    """The decompressed chunks of every stream of ``path`` (concatenated streams are one file);
    raises :class:`_Damaged` where the data stops being a clean sequence of streams.

    A decompressor that fails drops the output of the failing call; with ``exact`` a gzip
    chunk that fails is fed again byte by byte from a copy of the state before it, so every
    byte before the damage comes out; bzip2 and xz (no copy) are fed 16 KiB at a time and
    lose about the block they were decoding.
    """
    d, fed = _decompressor(fmt), False
    size = _CHUNK if not exact or fmt == "gzip" else 1 << 14  # bzip2/xz: fed in small pieces instead
    with open(path, "rb") as f:
        for data in iter(lambda: f.read(size), b""):
            while data:
                before = d.copy() if exact and fmt == "gzip" else None
                try:
                    out = d.decompress(data)
                except _DAMAGE as e:
                    if before is not None:
                        yield from _up_to_damage(before, data)
                    raise _Damaged(f"damaged {fmt} data: {e}") from None
                fed = True
                if out:
                    yield out
                if not d.eof:
                    break
                data = d.unused_data  # a next stream follows, or trailing bytes
                if data and not _MAGIC[fmt].startswith(data[: len(_MAGIC[fmt])]):
                    raise _Damaged(f"bytes after the end of the {fmt} data (not another {fmt} stream)")
                d, fed = _decompressor(fmt), False
    if fed and not d.eof:
        raise _Damaged(f"the {fmt} data ends early (the file is truncated)")


def _up_to_damage(d, data: bytes) -> Iterator[bytes]:
    """What ``d`` decompresses from ``data`` fed byte by byte, up to the byte it fails on."""
    for i in range(len(data)):
        try:
            out = d.decompress(data[i : i + 1])
        except _DAMAGE:
            return
        if out:
            yield out
        if d.eof:
            return


def _check(path: Path, fmt: str) -> tuple[str | None, bool]:
    """(why the stream is damaged or None, whether it holds ``"_index"``), in one streamed pass."""
    chunks = _decompressed(path, fmt)
    try:
        return None, _find_index_key(chunks)
    except _Damaged as e:
        return str(e), False
    except OSError as e:
        return f"cannot be read: {e.strerror or e}", False


def _copy_readable(base: LandedFile, fmt: str, folder: Path, damage: str | None) -> LandedFile:
    """Decompress the file into a plain copy Spark reads; a damaged stream keeps its complete
    lines and leaves the bytes after the last newline as the ``truncated_file`` tail."""
    copy = folder / f"{base.index:06d}.txt"
    size = lines = last_nl = 0
    bulk, carry = False, b""
    with open(copy, "wb") as out:
        try:
            for chunk in _decompressed(base.path, fmt, exact=True):
                out.write(chunk)
                if not bulk and (_INDEX_KEY in chunk or _INDEX_KEY in carry + chunk[: len(_INDEX_KEY)]):
                    bulk = True
                carry = chunk[-len(_INDEX_KEY) :]
                n = chunk.count(b"\n")
                if n:
                    lines += n
                    last_nl = size + chunk.rindex(b"\n") + 1
                size += len(chunk)
        except _Damaged as e:
            damage = str(e)
        except OSError as e:
            damage = f"cannot be read: {e.strerror or e}"
    if damage is None:
        return LandedFile(base.index, base.source, base.name, base.path, copy, bulk=bulk)
    with open(copy, "r+b") as f:
        f.seek(last_nl)
        tail = f.read()
        f.truncate(last_nl)
    detail = f"{damage}; read {lines} complete lines ({size} bytes decompressed)"
    return LandedFile(
        base.index, base.source, base.name, base.path, copy, bulk, R.TRUNCATED_FILE, detail, tail, lines + 1
    )


def with_routes(f: LandedFile) -> LandedFile:
    """``f`` with its route codes when it may hold bulk action lines (a second, line-by-line read)."""
    if not f.bulk or f.read_as is None:
        return f
    opener = gzip.open if f.read_as.suffix == ".gz" else open
    with opener(f.read_as, "rb") as lines:
        routes = bulk_routes(lines)
    return dataclasses.replace(f, routes=routes)


def bulk_routes(lines) -> bytes:
    """Per line, the route code of the bulk action line just before it (the previous non-blank
    line), as one byte per line: what Spark's line ``n`` reads at byte ``n - 1``."""
    out = bytearray()
    code = 0
    for n, line in enumerate(lines, start=1):
        out.append(code)
        text = line.strip(_SPACE)
        if n == 1 and text.startswith(_BOM):
            text = text[len(_BOM) :]
        if text:
            code = _action_code(text)
    return bytes(out)


def _action_code(text: bytes) -> int:
    """The route code of a bulk action line (as :func:`sie.ingest.parse._is_action`), else 0."""
    if not (text.startswith(b"{") and text.endswith(b"}") and _INDEX_KEY in text):
        return 0
    try:
        doc = json.loads(text)
    except ValueError:
        return 0
    if not isinstance(doc, dict) or any(doc.get(k) is not None for k in _DOC_FIELDS):
        return 0
    actions = [doc.get(a) for a in _BULK_ACTIONS if doc.get(a) is not None]
    targets = [a.get("_index") for a in actions if isinstance(a, dict) and a.get("_index") is not None]
    if not actions or not targets:
        return 0
    index = str(targets[0]).lower()  # as sie.ingest.parse._source_of
    if "ubi_events" in index:
        return ROUTE_CODES["ubi_events"]
    return ROUTE_CODES["ubi_queries"] if "ubi_queries" in index else 0
