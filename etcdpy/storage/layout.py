"""Where things live under ``--data-dir`` and which on-disk format they are in.

Rule 1: everything a member writes lives under ``<data-dir>/member/`` (as etcd's does), so
a data dir is recognised, and refused, as a whole.
Rule 2: the format is versioned explicitly in ``member/VERSION``; a data dir written by an
incompatible version is refused at start instead of being misread.

    <data-dir>/member/VERSION      "etcdpy-format <n>\n"
    <data-dir>/member/wal/         raft log, hard state, snapshot metadata: segment files
                                   (storage.segment_wal; an LMDB env in older data dirs)
    <data-dir>/member/snap/        snapshot payload files <term>-<index>.snap
    <data-dir>/member/kv/          LMDB env: the MVCC key space (storage.backend)
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

FORMAT_VERSION = 1
"""Bump when any file under member/ changes incompatibly."""

MEMBER_DIR = "member"
VERSION_FILE = "member/VERSION"
WAL_DIR = "member/wal"
SNAP_DIR = "member/snap"
KV_DIR = "member/kv"

_VERSION_PREFIX = "etcdpy-format "


class FormatVersionError(Exception):
    """The data dir was written in a format this build cannot read."""


@dataclass(frozen=True, slots=True)
class DataDirLayout:
    """Paths of one member's data dir; creating it and checking its version."""

    data_dir: Path

    @classmethod
    def of(cls, data_dir: str | os.PathLike[str]) -> DataDirLayout:
        return cls(Path(data_dir))

    @property
    def member(self) -> Path:
        return self.data_dir / MEMBER_DIR

    @property
    def version_file(self) -> Path:
        return self.data_dir / VERSION_FILE

    @property
    def wal(self) -> Path:
        return self.data_dir / WAL_DIR

    @property
    def snap(self) -> Path:
        return self.data_dir / SNAP_DIR

    @property
    def kv(self) -> Path:
        return self.data_dir / KV_DIR

    def exists(self) -> bool:
        """True when a member has been initialised here (etcd's ``wal.Exist`` check)."""
        return self.version_file.is_file()

    def read_version(self) -> int | None:
        try:
            text = self.version_file.read_text(encoding="ascii")
        except FileNotFoundError:
            return None
        if not text.startswith(_VERSION_PREFIX):
            raise FormatVersionError(f"{self.version_file}: not an etcdpy data dir")
        try:
            return int(text[len(_VERSION_PREFIX) :].strip())
        except ValueError as exc:
            raise FormatVersionError(f"{self.version_file}: bad version {text!r}") from exc

    def ensure(self, *, fsync: bool = True) -> None:
        """Create member/ and its subdirectories; write or check the format version.

        The version file is written last, durably (temp file, fsync, rename, fsync dir),
        so a crash half-way through leaves a dir that ``exists()`` still calls empty.
        """
        version = self.read_version()
        if version is not None and version != FORMAT_VERSION:
            raise FormatVersionError(
                f"{self.data_dir}: data format version {version}, this build reads {FORMAT_VERSION}"
            )
        for d in (self.member, self.wal, self.snap, self.kv):
            d.mkdir(mode=0o700, parents=True, exist_ok=True)
        if version is None:
            tmp = self.version_file.with_suffix(".tmp")
            with open(tmp, "w", encoding="ascii") as f:
                f.write(f"{_VERSION_PREFIX}{FORMAT_VERSION}\n")
                f.flush()
                if fsync:
                    os.fsync(f.fileno())
            os.replace(tmp, self.version_file)
            if fsync:
                fsync_dir(self.member)
                fsync_dir(self.data_dir)


def fsync_path(path: str | os.PathLike[str]) -> None:
    """fsync a file (or directory) by path: its data and metadata reach the disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(path: Path) -> None:
    """Make a rename/create inside ``path`` durable (POSIX needs the directory synced)."""
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
