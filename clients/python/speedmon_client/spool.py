"""The durable local spool: records wait here, in order, until speedmon has them.

One SQLite database (spool.db, WAL) in a directory the user names. A record is a row
(kind, body); the sender reads the oldest rows, posts them and deletes them only after
speedmon answered 2xx. Rows speedmon refused for their content (4xx) move to the
`rejected` table with speedmon's answer, so nothing disappears silently.

Durability: WAL with synchronous=NORMAL, as speedmon's own store: a committed record
survives the client process being killed (SIGKILL included); a power cut may lose the
last moments. durable="full" (synchronous=FULL) survives that too, at one fsync per
record.

One client per directory at a time: an exclusive lock on spool.lock, so two processes
never send the same rows. Thread safety: every method takes the spool's lock.
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
import threading
import time
from typing import List, Tuple

from .errors import SpeedmonError, SpoolFullError, SpoolLockedError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
  seq INTEGER PRIMARY KEY AUTOINCREMENT,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
  seq INTEGER PRIMARY KEY,
  kind TEXT NOT NULL,
  body TEXT NOT NULL,
  created REAL NOT NULL,
  rejected REAL NOT NULL,
  status INTEGER NOT NULL,
  answer TEXT NOT NULL
);
"""

Row = Tuple[int, str, str]  # (seq, kind, body)


class Spool:
    def __init__(self, directory: str, max_records: int, durable: str = "normal") -> None:
        if max_records < 1:
            raise ValueError("max_spool_records must be at least 1")
        if durable not in ("normal", "full"):
            raise ValueError('durable must be "normal" or "full"')
        self.directory = os.path.abspath(directory)
        self.max_records = max_records
        os.makedirs(self.directory, exist_ok=True)
        self._lock_file = open(os.path.join(self.directory, "spool.lock"), "a+")
        try:
            fcntl.flock(self._lock_file.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            self._lock_file.close()
            raise SpoolLockedError(
                f"spool directory {self.directory} is in use by another speedmon client "
                "(one client per directory: give each process its own spool_dir)") from None
        self.path = os.path.join(self.directory, "spool.db")
        self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute(f"PRAGMA synchronous={durable.upper()}")
        self._db.executescript(_SCHEMA)
        self._mu = threading.Lock()
        self._closed = False
        self._count = int(self._db.execute("SELECT COUNT(*) FROM spool").fetchone()[0])
        self._last_seq = int(self._db.execute("SELECT MAX(seq) FROM spool").fetchone()[0] or 0)

    def close(self) -> None:
        with self._mu:
            if self._closed:
                return
            self._closed = True
            self._db.close()
            self._lock_file.close()

    def __len__(self) -> int:
        return self._count

    def append(self, kind: str, body: str) -> None:
        """Commits one record; raises SpoolFullError when max_records are waiting.

        One transaction per record, under one lock. Sharing commits between producer
        threads (group commit) was tried and measured slower: the hand-offs between
        threads cost more under the GIL than the commits they save."""
        with self._mu:
            if self._closed:
                raise SpeedmonError("this SpeedmonClient is closed")
            if self._count >= self.max_records:
                raise SpoolFullError(
                    f"speedmon client spool {self.path} is full: {self._count} records "
                    f"wait (max_spool_records={self.max_records}) because speedmon has not "
                    "accepted them; bring speedmon back or raise max_spool_records")
            cursor = self._db.execute("INSERT INTO spool(kind, body, created) VALUES (?, ?, ?)",
                                      (kind, body, time.time()))
            self._count += 1
            self._last_seq = cursor.lastrowid or self._last_seq

    @property
    def last_seq(self) -> int:
        """The seq of the newest record appended (0 when none ever was)."""
        return self._last_seq

    def delivered_through(self, seq: int) -> bool:
        """True when no record with a seq <= `seq` is still waiting."""
        with self._mu:
            if self._closed:
                return False
            row = self._db.execute("SELECT MIN(seq) FROM spool").fetchone()
        return row[0] is None or row[0] > seq

    def oldest(self, limit: int) -> List[Row]:
        """Up to `limit` of the oldest rows, oldest first."""
        with self._mu:
            return self._db.execute("SELECT seq, kind, body FROM spool ORDER BY seq LIMIT ?",
                                    (limit,)).fetchall()

    def delete(self, seqs: List[int]) -> None:
        if not seqs:
            return
        with self._mu:
            self._db.execute("BEGIN")
            self._db.executemany("DELETE FROM spool WHERE seq = ?", [(s,) for s in seqs])
            self._db.execute("COMMIT")
            self._count -= len(seqs)

    def reject(self, seq: int, status: int, answer: str) -> None:
        """Moves one row to the rejected table (speedmon refused it for its content)."""
        with self._mu:
            self._db.execute("BEGIN")
            self._db.execute(
                "INSERT OR REPLACE INTO rejected(seq, kind, body, created, rejected, status, "
                "answer) SELECT seq, kind, body, created, ?, ?, ? FROM spool WHERE seq = ?",
                (time.time(), status, answer, seq))
            deleted = self._db.execute("DELETE FROM spool WHERE seq = ?", (seq,)).rowcount
            self._db.execute("COMMIT")
            self._count -= deleted

    def rejected(self) -> List[Tuple[str, str, int, str]]:
        """(kind, body, HTTP status, speedmon's answer) of every rejected record."""
        with self._mu:
            if self._closed:
                raise SpeedmonError("this SpeedmonClient is closed")
            return self._db.execute(
                "SELECT kind, body, status, answer FROM rejected ORDER BY seq").fetchall()
