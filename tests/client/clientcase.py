"""Shared set-up for the client tests: the installed speedmon_client, speedmon with a
SQLite store on loopback, and a reader of that store."""

import os
import sqlite3
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402

import speedmon_client  # noqa: E402  (the copy client.install put in the venv)

UNUSED_ENDPOINT = "127.0.0.1:9"  # discard: nothing is proxied there in these tests


def installed_from_venv():
    """The package must come from the venv ctest's client.install made, not the tree."""
    venv = os.environ.get("SPEEDMON_CLIENT_VENV")
    where = os.path.realpath(speedmon_client.__file__)
    if not venv or not where.startswith(os.path.realpath(venv)):
        raise AssertionError(f"speedmon_client imported from {where}, not from the venv "
                             f"{venv!r}: run these tests through ctest")


def store_ids(path, table="experiments"):
    """(ids as a list, one entry per row) of a speedmon store."""
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        return [r[0] for r in db.execute(f"SELECT id FROM {table}")]


class ClientCase(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        installed_from_venv()
        self.store = os.path.join(self.workdir, "speedmon.db")

    def config(self, upstreams=None, alerting=None, admin_port=None):
        cfg = harness.proxy_config(upstreams or {"emu": [UNUSED_ENDPOINT]})
        if admin_port is not None:
            cfg["admin"]["address"] = f"127.0.0.1:{admin_port}"
        cfg["speedrun"] = {"store_path": self.store}
        if alerting:
            cfg["alerting"].update(alerting)
        return cfg

    def client(self, sm_or_url, spool=None, **kw):
        url = sm_or_url if isinstance(sm_or_url, str) else sm_or_url.admin_url
        spool = spool or os.path.join(self.workdir, "spool")
        c = speedmon_client.SpeedmonClient(url, spool, **kw)
        self.addCleanup(c.close, 5.0)
        return c
