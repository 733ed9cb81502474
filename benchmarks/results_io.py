"""Reading and writing benchmark results, plain or gzip-compressed.

The raw per-seed rows in ``benchmarks/results/`` are stored compressed (``*.jsonl.gz`` and the
large ``*.json.gz``). Every reader in ``benchmarks/`` goes through :func:`open_text`, which takes
either form; a plain path whose file is absent is read from ``path + ".gz"`` (so a command naming
``results/utility_full_k50.json`` reads ``results/utility_full_k50.json.gz``). A path ending in
``.gz`` is written compressed, deterministically (no name or time in the gzip header).
"""

from __future__ import annotations

import gzip
import json
import os
from typing import IO, Any


def resolve(path: str | os.PathLike) -> str:
    """``path``, or ``path + ".gz"`` when only the compressed file exists."""
    path = os.fspath(path)
    if not path.endswith(".gz") and not os.path.exists(path) and os.path.exists(path + ".gz"):
        return path + ".gz"
    return path


def open_text(path: str | os.PathLike) -> IO[str]:
    """A UTF-8 text handle for reading ``path`` (decompressed when it, or the file found, ends in ``.gz``)."""
    path = resolve(path)
    if path.endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8")
    return open(path, encoding="utf-8")


def read_json(path: str | os.PathLike) -> Any:
    with open_text(path) as handle:
        return json.load(handle)


def read_jsonl(path: str | os.PathLike) -> list:
    """The JSON value of every non-blank line."""
    with open_text(path) as handle:
        return [json.loads(line) for line in handle if line.strip()]


def encode(path: str | os.PathLike, text: str) -> str | bytes:
    """What to write to ``path``: ``text``, gzip-compressed bytes when the path ends in ``.gz``
    (for :func:`zodc.data.io.write_files_atomic`, which takes either)."""
    if os.fspath(path).endswith(".gz"):
        return gzip.compress(text.encode("utf-8"), mtime=0)
    return text


def append_text(path: str | os.PathLike, text: str) -> None:
    """Appends ``text``; to a ``.gz`` file as one more gzip member (readers see one stream). A plain
    path whose file is absent while ``path + ".gz"`` exists appends to the compressed log."""
    path = resolve(path)
    if path.endswith(".gz"):
        with open(path, "ab") as handle:
            handle.write(gzip.compress(text.encode("utf-8"), mtime=0))
    else:
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(text)


def stem(path: str | os.PathLike) -> str:
    """``path`` without ``.gz`` and then its extension: ``a/x.json.gz`` -> ``a/x`` (where its ``.md`` goes)."""
    path = os.fspath(path)
    if path.endswith(".gz"):
        path = path[:-3]
    return os.path.splitext(path)[0]


def write_markdown(markdown: str | None, out: str | None, text: str) -> None:
    """Writes ``text`` to ``markdown`` (default: ``out`` with ``.md``; neither: nothing) and prints it."""
    path = markdown or (os.path.splitext(out)[0] + ".md" if out else None)
    if path:
        with open(path, "w") as handle:
            handle.write(text)
    print(text)


def write_json_atomic(path: str, result: Any) -> None:
    """``result`` as indented JSON at ``path`` (its directory created), replaced atomically."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = path + ".tmp"
    with open(temporary, "w") as handle:
        json.dump(result, handle, indent=1)
        handle.write("\n")
    os.replace(temporary, path)


def finish_run(result: dict, began: float, out: str | None) -> dict:
    """A benchmark run's closing bookkeeping: total seconds since ``began`` (``time.perf_counter``),
    the load average at the end, and the JSON written to ``out`` (when given)."""
    import time

    result["total_seconds"] = time.perf_counter() - began
    if hasattr(os, "getloadavg"):
        result["machine"]["load_average_end"] = list(os.getloadavg())
    if out:
        write_json_atomic(out, result)
    return result
