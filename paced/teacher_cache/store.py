"""Storing teacher-cache entries: in memory while built or for small runs, on disk as shards read lazily.

On disk a cache is an index file (the path you give: a small ``.npz`` holding one JSON ``meta`` record) and a
directory ``<path>.shards/`` of raw ``.npy`` arrays, one set per shard: ``NNNNN.logp.npy`` [rows, k or V] fp32,
and for top-k caches ``NNNNN.ids.npy`` [rows, k] int32 and ``NNNNN.tail.npy`` [rows] fp32, every problem's
tokens one after the other. The index maps each problem id to (shard, first row, length). A reader memory-maps
a shard the first time one of its problems is asked for, so a batch reads only its own rows from only its own
shards: no process holds the whole cache (29–65 GB at the paper's pool with top-64), and a writer holds at
most one shard (``shard_tokens`` rows) while the cache is built. A cache saved by an earlier version (one
``.npz`` with every array) still loads, eagerly.
"""

from __future__ import annotations

import json
import logging
import shutil
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from paced._checks import check_positive_int
from paced.teacher_cache.entry import CacheEntry, build_entry

log = logging.getLogger(__name__)
FORMAT = "paced-teacher-cache/sharded-1"
DEFAULT_SHARD_TOKENS = 1 << 20  # rows a shard: ~0.5 GB at top-64 (516 bytes a token)


def shards_dir(path: str | Path) -> Path:
    return Path(str(path) + ".shards")


def _entry_arrays(e: CacheEntry) -> dict[str, np.ndarray]:
    out = {"logp": e.logp.detach().cpu().float().numpy()}
    if e.ids is not None:
        out["ids"] = e.ids.detach().cpu().to(torch.int32).numpy()
        out["tail"] = e.tail_logp.detach().cpu().float().numpy()
    return out


class ShardWriter:
    """Append entries to a sharded cache at ``path``; ``close()`` writes the index (the cache appears only then).

    Holds at most one shard of rows in memory.
    """

    def __init__(self, path: str | Path, vocab_size: int, top_k: int | None,
                 shard_tokens: int = DEFAULT_SHARD_TOKENS) -> None:
        self.path = Path(path)
        self.vocab_size, self.top_k = vocab_size, top_k
        self.shard_tokens = check_positive_int("shard_tokens", shard_tokens)
        self.tmp = Path(str(shards_dir(self.path)) + ".tmp")
        if self.tmp.exists():
            shutil.rmtree(self.tmp)
        self.tmp.mkdir(parents=True)
        self.problems: dict[str, list[int]] = {}
        self.shards: list[str] = []
        self._pending: list[dict[str, np.ndarray]] = []
        self._rows = 0
        self.nbytes = 0

    def add(self, problem_id: str, entry: CacheEntry) -> None:
        pid = str(problem_id)
        if pid in self.problems:
            raise ValueError(f"problem id {pid!r} is already in the cache being written")
        arrays = _entry_arrays(entry)
        if self._rows and self._rows + entry.length > self.shard_tokens:
            self._flush()
        self.problems[pid] = [len(self.shards), self._rows, entry.length]
        self._pending.append(arrays)
        self._rows += entry.length
        self.nbytes += sum(a.nbytes for a in arrays.values())

    def _flush(self) -> None:
        if not self._pending:
            return
        name = f"{len(self.shards):05d}"
        for key in self._pending[0]:
            np.save(self.tmp / f"{name}.{key}.npy", np.concatenate([p[key] for p in self._pending]))
        self.shards.append(name)
        self._pending, self._rows = [], 0

    def close(self) -> None:
        self._flush()
        final = shards_dir(self.path)
        if final.exists():
            shutil.rmtree(final)
        self.tmp.replace(final)
        meta = {"format": FORMAT, "vocab_size": self.vocab_size, "top_k": self.top_k, "shards": self.shards,
                "problems": self.problems, "nbytes": self.nbytes}
        tmp = self.path.with_name(self.path.name + ".tmp.npz")
        np.savez(tmp, meta=np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8))
        tmp.replace(self.path)
        log.info("saved teacher cache: %d problems in %d shards, %.1f MB -> %s", len(self.problems),
                 len(self.shards), self.nbytes / 1e6, self.path)


class ShardReader:
    """Entries of a sharded cache, read on demand; ``opened`` lists the shards memory-mapped so far."""

    def __init__(self, path: Path, meta: dict[str, Any]) -> None:
        self.dir = shards_dir(path)
        self.shards: list[str] = meta["shards"]
        self.problems: dict[str, list[int]] = meta["problems"]
        self.nbytes = int(meta.get("nbytes", 0))
        self.vocab_size = int(meta["vocab_size"])
        self._maps: dict[int, dict[str, np.ndarray]] = {}

    @property
    def opened(self) -> list[int]:
        return sorted(self._maps)

    def _shard(self, i: int) -> dict[str, np.ndarray]:
        if i not in self._maps:
            name = self.shards[i]
            files = {key: self.dir / f"{name}.{key}.npy" for key in ("logp", "ids", "tail")}
            if not files["logp"].is_file():
                raise FileNotFoundError(f"teacher cache shard {files['logp']} is missing; rebuild the cache")
            self._maps[i] = {k: np.load(f, mmap_mode="r") for k, f in files.items() if f.is_file()}
        return self._maps[i]

    def entry(self, pid: str) -> CacheEntry:
        shard, start, length = self.problems[pid]
        arrays = self._shard(shard)
        rows = slice(start, start + length)
        logp = torch.from_numpy(np.array(arrays["logp"][rows]))  # a copy of this problem's rows only
        if "ids" not in arrays:
            return CacheEntry(logp, None, None, self.vocab_size)
        return CacheEntry(logp, torch.from_numpy(np.array(arrays["ids"][rows]).astype(np.int64)),
                          torch.from_numpy(np.array(arrays["tail"][rows])), self.vocab_size)


class TeacherCache:
    """Per-problem teacher log-probs on fixed references: exact (``top_k=None``) or top-k + tail mass.

    ``add(problem_id, teacher_logits [T, V])`` stores an entry in memory; ``batch(ids, length)`` stacks
    entries into a right-padded [B, length, ·] entry for :func:`forward_kl_from_cache`; ``save`` writes the
    sharded files, ``load`` opens them lazily (see the module docstring).
    """

    def __init__(self, vocab_size: int, top_k: int | None = None) -> None:
        self.vocab_size = check_positive_int("vocab_size", vocab_size)
        self.top_k = None if top_k is None else check_positive_int("top_k", top_k)
        self._entries: dict[str, CacheEntry] = {}
        self._reader: ShardReader | None = None

    def add(self, problem_id: str, teacher_logits: torch.Tensor) -> CacheEntry:
        if teacher_logits.shape[-1] != self.vocab_size:
            raise ValueError(f"teacher_logits V={teacher_logits.shape[-1]} does not match the cache's "
                             f"vocab_size={self.vocab_size}")
        return self.add_entry(problem_id, build_entry(teacher_logits, self.top_k))

    def add_entry(self, problem_id: str, entry: CacheEntry) -> CacheEntry:
        """Store an already-built entry (e.g. built chunk by chunk) on the CPU."""
        self._entries[str(problem_id)] = entry.to("cpu")
        return entry

    def __getitem__(self, problem_id: str) -> CacheEntry:
        pid = str(problem_id)
        if pid in self._entries:
            return self._entries[pid]
        if self._reader is not None and pid in self._reader.problems:
            return self._reader.entry(pid)
        raise KeyError(pid)

    def __contains__(self, problem_id: object) -> bool:
        pid = str(problem_id)
        return pid in self._entries or (self._reader is not None and pid in self._reader.problems)

    def __len__(self) -> int:
        return len(self._entries) + (len(self._reader.problems) if self._reader is not None else 0)

    def __iter__(self) -> Iterator[str]:
        yield from self._reader.problems if self._reader is not None else ()
        yield from self._entries

    @property
    def nbytes(self) -> int:
        """Bytes of the entries as stored: fp32 log-probs and tail, int32 ids."""
        mem = sum(x.numel() * 4 for e in self._entries.values() for x in (e.logp, e.ids, e.tail_logp)
                  if x is not None)
        return mem + (self._reader.nbytes if self._reader is not None else 0)

    @property
    def opened_shards(self) -> list[int]:
        """Shards a loaded cache has memory-mapped so far (lazy reads: only those of the batches asked for)."""
        return self._reader.opened if self._reader is not None else []

    def batch(self, problem_ids: Sequence[str], length: int | None = None,
              device: torch.device | str = "cpu") -> CacheEntry:
        """Entries of ``problem_ids`` right-padded to ``length`` tokens (default: the longest): [B, length, ·].

        Padded positions hold log-prob 0, id 0 and tail −inf; mask them out (the response mask does).
        """
        entries = [self[pid] for pid in problem_ids]
        length = max(e.length for e in entries) if length is None else length
        short = [pid for pid, e in zip(problem_ids, entries, strict=True) if e.length > length]
        if short:
            raise ValueError(f"length={length} is shorter than the cached responses of {short[:5]}")
        width = int(entries[0].logp.shape[-1])
        logp = torch.zeros(len(entries), length, width)
        ids = None if self.top_k is None or entries[0].exact else torch.zeros(len(entries), length, width,
                                                                              dtype=torch.long)
        tail = None if ids is None else torch.full((len(entries), length), float("-inf"))
        for i, e in enumerate(entries):
            logp[i, :e.length] = e.logp
            if ids is not None:
                ids[i, :e.length] = e.ids
                tail[i, :e.length] = e.tail_logp
        return CacheEntry(logp, ids, tail, self.vocab_size).to(device)

    def save(self, path: str | Path, shard_tokens: int = DEFAULT_SHARD_TOKENS) -> None:
        """Write every entry as a sharded cache at ``path`` (index) + ``<path>.shards/``."""
        writer = ShardWriter(path, self.vocab_size, self.top_k, shard_tokens)
        for pid in list(self):
            writer.add(pid, self[pid])
        writer.close()

    @classmethod
    def load(cls, path: str | Path) -> TeacherCache:
        """Open a cache: sharded ones lazily (nothing is read until a batch asks), a single-file one eagerly."""
        with np.load(Path(path), allow_pickle=False) as data:
            meta = json.loads(data["meta"].tobytes().decode())
            cache = cls(meta["vocab_size"], meta["top_k"])
            if meta.get("format") == FORMAT:
                cache._reader = ShardReader(Path(path), meta)
                return cache
            for i, key in enumerate(meta["problem_ids"]):  # the single-file format of earlier versions
                logp = torch.from_numpy(data[f"logp_{i}"].copy())
                if f"ids_{i}" in data:
                    entry = CacheEntry(logp, torch.from_numpy(data[f"ids_{i}"].astype(np.int64)),
                                       torch.from_numpy(data[f"tail_{i}"].copy()), cache.vocab_size)
                else:
                    entry = CacheEntry(logp, None, None, cache.vocab_size)
                cache._entries[key] = entry
        return cache
