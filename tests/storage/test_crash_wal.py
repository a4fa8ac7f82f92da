"""WAL crash tests: a writer process is SIGKILLed at random moments and at etcd's failpoints.

After each kill the parent reopens the store and checks it equals the model state after
exactly the acknowledged operations (or one more, when the kill came after the commit but
before the acknowledgement): acknowledged entries and hard state survive, no batch is torn,
term and vote never go back. The next writer resumes from the recovered state, so one data
dir goes through many crashes. Every test runs against both stores: ``wal`` (LMDB) and
``seg`` (segment files, small enough here that kills also land while a segment is cut).
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.storage.crash_writer import fingerprint, model_fingerprints, open_store

ROOT = Path(__file__).resolve().parents[2]
OPS_PER_RUN = 400


class Writer:
    def __init__(
        self, data_dir: Path, seed: int, start: int, store: str, failpoints: str = ""
    ) -> None:
        env = dict(os.environ, PYTHONPATH=str(ROOT), ETCDPY_FAILPOINTS=failpoints)
        self.start = start
        self.stderr = tempfile.TemporaryFile()
        self.acked = start  # operations [0, acked) are acknowledged
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.storage.crash_writer",
                str(data_dir),
                str(seed),
                str(start),
                str(start + OPS_PER_RUN),
                store,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=self.stderr,
            text=True,
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line == "READY\n", line + self._stderr()

    def _stderr(self) -> str:
        self.proc.kill()
        self.proc.wait(timeout=30)
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")

    def _consume(self, line: str) -> None:
        word, _, i = line.partition(" ")
        assert word == "ACK", line
        assert int(i) == self.acked, (line, self.acked)
        self.acked += 1

    def read_acks(self, until: int) -> None:
        assert self.proc.stdout is not None
        while self.acked < until:
            line = self.proc.stdout.readline()
            if not line:
                return
            self._consume(line)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.finish()

    def finish(self) -> int:
        """Wait for the process to end; count every acknowledgement it got out.

        Reads through ``proc.stdout`` itself: lines ``readline`` already buffered would be
        lost to ``communicate()``, which reads the raw pipe.
        """
        assert self.proc.stdout is not None
        for line in self.proc.stdout.read().splitlines():  # EOF once the writer is dead
            self._consume(line)
        rc = self.proc.wait(timeout=30)
        assert rc in (0, -signal.SIGKILL), f"writer failed rc={rc}\n{self._stderr()}"
        self.stderr.close()
        return rc


class Checker:
    """Maps a reopened store to the index of the model state it equals."""

    def __init__(self, seed: int, horizon: int, store: str) -> None:
        self.fps = model_fingerprints(seed, horizon)
        self.last_term = 0
        self.store = store

    def recover(self, data_dir: Path, acked: int, exact: int | None = None) -> int:
        with open_store(self.store, str(data_dir)) as w:
            fp = fingerprint(w)
            hs = w.hard_state
        allowed = [exact] if exact is not None else [acked, acked + 1]
        matches = [n for n in allowed if n < len(self.fps) and self.fps[n] == fp]
        assert matches, (
            f"recovered state is not the model after {allowed} ops "
            f"(acked {acked}); found at {[i for i, f in enumerate(self.fps) if f == fp]}"
        )
        assert hs.term >= self.last_term, "term went back"
        self.last_term = hs.term
        return max(matches)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("store", ["wal", "seg"])
@pytest.mark.parametrize("seed", [11, 12])
def test_sigkill_at_random_moments(tmp_path: Path, seed: int, store: str) -> None:
    rng = random.Random(seed)
    cycles = 15
    checker = Checker(seed, cycles * OPS_PER_RUN + 1, store)
    n = 0
    for _ in range(cycles):
        w = Writer(tmp_path, seed, n, store)
        w.read_acks(n + rng.randint(0, 60))
        time.sleep(rng.uniform(0, 0.004))  # land the kill anywhere inside the next save
        w.kill()
        n = checker.recover(tmp_path, w.acked)
    assert n > 0


@pytest.mark.timeout(120)
@pytest.mark.parametrize(
    ("failpoint", "committed", "max_skip"),
    [
        ("raftBeforeSave", False, 40),
        ("raftAfterSave", True, 40),
        ("raftBeforeApplySnap", False, 4),
        ("raftAfterApplySnap", True, 4),
        ("raftBeforeSaveSnap", False, 4),
        ("raftAfterSaveSnap", True, 4),
    ],
)
@pytest.mark.parametrize("store", ["wal", "seg"])
def test_sigkill_at_failpoints(
    tmp_path: Path, failpoint: str, committed: bool, max_skip: int, store: str
) -> None:
    rng = random.Random(failpoint)
    seed = 23
    cycles = 3
    checker = Checker(seed, cycles * OPS_PER_RUN + 1, store)
    n = 0
    for _ in range(cycles):
        skip = rng.randint(0, max_skip)
        w = Writer(tmp_path, seed, n, store, failpoints=f"{failpoint}={skip}*off->kill")
        rc = w.finish()
        assert rc == -signal.SIGKILL, f"{failpoint} never fired"
        n = checker.recover(tmp_path, w.acked, exact=w.acked + 1 if committed else w.acked)
