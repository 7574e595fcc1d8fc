"""The tuning database: SQLite (WAL) under the user cache directory, one row per priced candidate
and the verified best per key.

A key is everything the answer depends on: the group's structural key, the target and a hash of
its arch table, the timing-model version and the search-space version. A second identical run
prices nothing. The driver is the only writer; two processes tuning at once share the file
(SQLite's locking, WAL, ``INSERT OR REPLACE``). A corrupt or foreign file is reported once and
rebuilt, never a crash.

    >>> import tempfile, pathlib
    >>> db = TuningDB(pathlib.Path(tempfile.mkdtemp()) / "t.db")
    >>> db.put_candidate("k", "{}", 1.0, "fast")
    >>> db.candidates("k")
    {'{}': (1.0, 'fast')}
"""
from __future__ import annotations

import json
import os
import sqlite3
import threading
import warnings
from pathlib import Path

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS candidate (
    key TEXT, schedule TEXT, ns REAL, how TEXT, PRIMARY KEY (key, schedule, how));
CREATE TABLE IF NOT EXISTS best (
    key TEXT PRIMARY KEY, schedule TEXT, ns REAL, default_ns REAL, verified TEXT, report TEXT);
"""


class TuningDBWarning(UserWarning):
    """The tuning database file could not be used as it was (it is rebuilt)."""


def default_path() -> Path:
    """``$NEURON_EMU_CACHE_DIR/tuning.db``, else the platform's user cache directory."""
    env = os.environ.get("NEURON_EMU_CACHE_DIR")
    if env:
        return Path(env) / "tuning.db"
    try:
        import platformdirs
        return Path(platformdirs.user_cache_dir("neuron-emu")) / "tuning.db"
    except ImportError:          # platformdirs is a dependency; this only guards odd installs
        return Path.home() / ".cache" / "neuron-emu" / "tuning.db"


class TuningDB:
    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()
        self._lock = threading.Lock()
        self.conn = self._open()

    def _open(self):
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            return self._connect()
        except sqlite3.DatabaseError as e:
            warnings.warn(f"tuning database {self.path} is unreadable ({e}); it is rebuilt "
                          "(the old file is kept as .corrupt)", TuningDBWarning, stacklevel=3)
            os.replace(self.path, self.path.with_suffix(".corrupt"))
            for extra in ("-wal", "-shm"):
                Path(str(self.path) + extra).unlink(missing_ok=True)
            return self._connect()

    def _connect(self):
        conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False,
                               isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.executescript(_SCHEMA)
        row = conn.execute("SELECT value FROM meta WHERE name='schema'").fetchone()
        if row is None:
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)",
                         (str(SCHEMA_VERSION),))
        elif row[0] != str(SCHEMA_VERSION):
            raise sqlite3.DatabaseError(f"schema version {row[0]}, expected {SCHEMA_VERSION}")
        conn.execute("SELECT count(*) FROM candidate").fetchone()     # reads a page: corruption
        return conn

    # -- candidates -------------------------------------------------------------------------
    def candidates(self, key: str, how: str | None = None) -> dict:
        q = "SELECT schedule, ns, how FROM candidate WHERE key=?" + (" AND how=?" if how else "")
        with self._lock:
            rows = self.conn.execute(q, (key, how) if how else (key,)).fetchall()
        return {s: (ns, h) for s, ns, h in rows}

    def put_candidates(self, rows):
        """``rows``: (key, schedule_key, ns, how) tuples, written in one transaction."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            self.conn.executemany("INSERT OR REPLACE INTO candidate VALUES (?, ?, ?, ?)", rows)
            self.conn.execute("COMMIT")

    def put_candidate(self, key, schedule, ns, how):
        self.put_candidates([(key, schedule, ns, how)])

    # -- winners ----------------------------------------------------------------------------
    def best(self, key: str):
        with self._lock:
            row = self.conn.execute("SELECT schedule, ns, default_ns, verified, report FROM best "
                                    "WHERE key=?", (key,)).fetchone()
        if row is None:
            return None
        return {"schedule": row[0], "ns": row[1], "default_ns": row[2], "verified": row[3],
                "report": json.loads(row[4] or "{}")}

    def put_best(self, key, schedule, ns, default_ns, verified, report):
        if not verified:
            raise ValueError("an unverified winner is never cached")
        with self._lock:
            self.conn.execute("INSERT OR REPLACE INTO best VALUES (?, ?, ?, ?, ?, ?)",
                              (key, schedule, ns, default_ns, verified, json.dumps(report)))

    def export_plan(self, keys) -> dict:
        return {k: b for k in keys if (b := self.best(k)) is not None}

    def import_plan(self, plan: dict):
        for k, b in plan.items():
            self.put_best(k, b["schedule"], b["ns"], b["default_ns"], b["verified"],
                          b.get("report", {}))

    def close(self):
        self.conn.close()
