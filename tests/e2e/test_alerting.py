"""speedmon's alerting through the daemon, against a real Alertmanager and a webhook
receiver: a rule on the healthy emulator count goes pending, fires after its `for`,
reaches Alertmanager and the webhook with its labels and annotations, resolves when the
emulator is back; with Alertmanager down speedmon keeps serving, counts the failed
sends and delivers once Alertmanager returns. Plus the alert-rules API's refusals.
"""

import datetime
import os
import signal
import sys
import unittest

import requests

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import harness  # noqa: E402
import stack  # noqa: E402  (tests/e2e/stack.py)
from harness import prom  # noqa: E402

ALERTS = "pokemon_speedrun_alerts"
NOTIFICATIONS = "pokemon_speedrun_alert_notifications_total"
QUEUE = "pokemon_speedrun_alert_notification_queue_length"
NOT_YET = "0001-01-01T00:00:00Z"  # a firing alert's endsAt in the webhook format

RULE = {
    "id": "emulators_down", "name": "EmulatorsDown",
    "description": "No emulator passes its health check",
    "metric": "pokemon_speedrun_healthy_processes", "operator": "<", "threshold": 1,
    "for": "2s", "severity": "critical", "labels": {"team": "speedrun"},
    "annotations": {"summary": "No healthy emulator",
                    "description": "{{ $value }} healthy emulators, fewer than {{ $threshold }}"},
}
LABELS = {"alertname": "EmulatorsDown", "severity": "critical", "rule_id": "emulators_down",
          "team": "speedrun"}
ANNOTATIONS = {"summary": "No healthy emulator",
               "description": "0 healthy emulators, fewer than 1"}


def alerting_config(fake, **alerting):
    """speedmon in front of `fake`, health-checked every 200ms (down after one failed
    check), evaluating RULE every 1s; `alerting`: more [alerting] keys (targets)."""
    cfg = harness.proxy_config(
        {"emu": [fake.address]},
        health_check={"path": "/status", "interval": "200ms", "timeout": "150ms",
                      "healthy_threshold": 1, "unhealthy_threshold": 1})
    cfg["alerting"] = {"default_rules": False, "evaluation_interval": "1s",
                       "resend_interval": "2s", "rules": [RULE], **alerting}
    return cfg


def parse_time(text):
    """speedmon's and Alertmanager's RFC 3339 times ("...T17:36:59.903Z")."""
    return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%f%z")


class AlertingTest(harness.HarnessTestCase):
    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()
        self.am = stack.Alertmanager(self.workdir).start()
        self.addCleanup(self.am.stop)
        self.hook = stack.WebhookReceiver()
        self.addCleanup(self.hook.stop)
        self.sm = self.start_speedmon(alerting_config(
            self.fake, alertmanagers=[{"url": self.am.url}], webhooks=[{"url": self.hook.url}]))
        self.generator = self.sm.admin_url + "/api/v1/alerts"

    # ---- helpers ----------------------------------------------------------------------

    def alerts(self):
        return self.sm.get_json("/api/v1/alerts")

    def wait_alert_state(self, state, timeout=20.0):
        """The EmulatorsDown entry of GET /api/v1/alerts once it is in `state`."""
        def check():
            doc = self.alerts()
            if state == "resolved":
                return doc["resolved"][0] if not doc["alerts"] and doc["resolved"] else None
            found = [a for a in doc["alerts"] if a["state"] == state]
            return found[0] if found else None
        return harness.wait_for(check, timeout, interval=0.05,
                                what=f"EmulatorsDown {state} in GET /api/v1/alerts")

    def alert_gauges(self, samples):
        return {st: prom.value(samples, ALERTS, alertname="EmulatorsDown", severity="critical",
                               alertstate=st) for st in ("pending", "firing")}

    def notifications(self, samples, target, result):
        return prom.value_or_zero(samples, NOTIFICATIONS, target=target, result=result)

    def kill_fake(self):
        self.fake.proc.kill()

    def restart_fake(self):
        """A fresh fake on the port the old one had (the upstream's only endpoint)."""
        self.fake = self.start_fake("--port", str(self.fake.port))

    def assertWebhook(self, post, status, alert):
        self.assertEqual(post["path"], "/hook")
        self.assertEqual(post["headers"].get("Content-Type"), "application/json")
        resolved = status == "resolved"
        self.assertEqual(post["json"], {
            "version": "4", "groupKey": "speedmon", "truncatedAlerts": 0, "status": status,
            "receiver": "speedmon", "groupLabels": {}, "commonLabels": LABELS,
            "commonAnnotations": ANNOTATIONS, "externalURL": self.sm.admin_url,
            "alerts": [{"status": status, "labels": LABELS, "annotations": ANNOTATIONS,
                        "startsAt": alert["firedAt"],
                        "endsAt": alert["resolvedAt"] if resolved else NOT_YET,
                        "generatorURL": self.generator,
                        "fingerprint": alert["fingerprint"]}]})

    # ---- tests ------------------------------------------------------------------------

    def test_fires_resolves_and_survives_an_alertmanager_outage(self):
        harness.wait_for(lambda: self.sm.get_json("/api/v1/processes")["healthy_endpoints"]
                         == 1, 10, what="the fake healthy")
        rules = harness.wait_for(
            lambda: [r for r in self.sm.get_json("/api/v1/alert-rules")["rules"]
                     if r["lastEvaluation"]], 10, what="the rule evaluated")
        self.assertEqual([(r["id"], r["state"], r["health"]) for r in rules],
                         [("emulators_down", "inactive", "ok")])
        self.assertEqual(self.alerts(), {"alerts": [], "resolved": []})

        # The only emulator dies: pending at once, firing `for` (2s) later.
        self.kill_fake()
        pending = self.wait_alert_state("pending")
        self.assertEqual({k: pending[k] for k in ("id", "name", "severity", "value", "labels",
                                                  "annotations", "firedAt")},
                         {"id": "emulators_down", "name": "EmulatorsDown",
                          "severity": "critical", "value": 0.0, "labels": LABELS,
                          "annotations": ANNOTATIONS, "firedAt": None})
        firing = self.wait_alert_state("firing")
        self.assertEqual((firing["fingerprint"], firing["activeAt"]),
                         (pending["fingerprint"], pending["activeAt"]))
        self.assertGreaterEqual(parse_time(firing["firedAt"]) - parse_time(firing["activeAt"]),
                                datetime.timedelta(seconds=2))
        samples = self.sm.metrics()
        self.assertEqual(self.alert_gauges(samples), {"pending": 0, "firing": 1})

        # Alertmanager has it with every label and annotation.
        got = harness.wait_for(lambda: self.am.alerts("EmulatorsDown"), 20, interval=0.1,
                               what="EmulatorsDown in Alertmanager")
        self.assertEqual(len(got), 1, got)
        self.assertEqual((got[0]["labels"], got[0]["annotations"], got[0]["status"]["state"],
                          got[0]["startsAt"], got[0]["generatorURL"]),
                         (LABELS, ANNOTATIONS, "active", firing["firedAt"], self.generator))
        self.assertGreaterEqual(parse_time(got[0]["endsAt"]) - parse_time(got[0]["startsAt"]),
                                datetime.timedelta(seconds=8))  # 4 x resend_interval

        # The webhook gets the transition once; Alertmanager also gets the re-sends.
        first = self.hook.wait_posts(1)[0]
        self.assertWebhook(first, "firing", firing)
        samples = self.sm.metrics_when(
            lambda s: self.notifications(s, self.am.url, "sent") >= 2,
            timeout=20, what="a re-send to Alertmanager")
        self.assertEqual(self.notifications(samples, self.hook.url, "sent"), 1)
        self.assertEqual(self.notifications(samples, self.am.url, "failed"), 0)
        self.assertEqual(len(self.hook.snapshot()), 1, "webhooks get transitions only")

        # The emulator is back: resolved everywhere.
        self.restart_fake()
        resolved = self.wait_alert_state("resolved")
        self.assertEqual((resolved["state"], resolved["fingerprint"], resolved["firedAt"]),
                         ("resolved", firing["fingerprint"], firing["firedAt"]))
        self.assertIsNotNone(resolved["resolvedAt"])
        self.assertEqual(self.alert_gauges(self.sm.metrics()), {"pending": 0, "firing": 0})
        harness.wait_for(lambda: not self.am.alerts("EmulatorsDown"), 20, interval=0.1,
                         what="EmulatorsDown gone from Alertmanager's active alerts")
        # Not merely inactive: Alertmanager's API drops an alert once its endsAt (here
        # the resolution time speedmon sent) has passed.
        self.assertEqual(self.am.alerts("EmulatorsDown", active_only=False), [])
        # Every notice speedmon counts as sent, Alertmanager counts as received, and it
        # got the resolution as such (not a firing alert left to expire).
        counts = {}

        def counts_match():
            counts["speedmon sent"] = self.notifications(self.sm.metrics(), self.am.url, "sent")
            counts["alertmanager received"] = self.am.received()
            return counts["alertmanager received"] == {
                "firing": counts["speedmon sent"] - 1, "resolved": 1, "invalid": 0}
        try:
            harness.wait_for(counts_match, 20, interval=0.1, what="matching counts")
        except AssertionError as e:
            raise AssertionError(f"{e}: {counts}") from None
        second = self.hook.wait_posts(2)[1]
        self.assertWebhook(second, "resolved", resolved)

        # Alertmanager goes away and the emulator dies again: speedmon keeps serving,
        # the webhook still hears of it, the failed sends are counted.
        self.am.stop()
        self.kill_fake()
        again = self.wait_alert_state("firing")
        self.assertNotEqual(again["firedAt"], firing["firedAt"])
        self.assertWebhook(self.hook.wait_posts(3)[2], "firing", again)
        samples = self.sm.metrics_when(
            lambda s: self.notifications(s, self.am.url, "failed") >= 1,
            timeout=20, what="a failed send to the stopped Alertmanager")
        sent_before = self.notifications(samples, self.am.url, "sent")
        self.assertEqual(self.alert_gauges(samples), {"pending": 0, "firing": 1})
        self.assertEqual(self.sm.get("/healthz")[0], 200)
        r = requests.get(self.sm.url + "/status", timeout=10)  # no healthy endpoint: 503
        self.assertEqual(r.status_code, 503, r.text)
        self.assertEqual(r.json()["upstream"], "emu")

        # Back on the same port: the alert arrives.
        self.am.start()
        got = harness.wait_for(lambda: self.am.alerts("EmulatorsDown"), 60, interval=0.2,
                               what="EmulatorsDown in the restarted Alertmanager")
        self.assertEqual((got[0]["labels"], got[0]["annotations"], got[0]["startsAt"]),
                         (LABELS, ANNOTATIONS, again["firedAt"]))
        samples = self.sm.metrics_when(
            lambda s: self.notifications(s, self.am.url, "sent") > sent_before,
            timeout=20, what="a delivery counted after Alertmanager's return")
        self.assertEqual(prom.value(samples, QUEUE, target=self.hook.url), 0)
        self.assertEqual(len(self.hook.snapshot()), 3)

    def test_alert_rules_api_refuses_bad_rules(self):
        url = self.sm.admin_url + "/api/v1/alert-rules"
        cases = [
            (b"{not json", None),  # the body as a whole: null, as every error body
            (b"[]", None),
            (b'{"metric": "pokemon_speedrun_healthy_processes", "operator": "<", '
             b'"threshold": 1}', "id"),
            (b'{"id": "x", "metric": "pokemon_speedrun_healthy_processes", '
             b'"operator": "=~", "threshold": 1}', "operator"),
            (b'{"id": "x", "metric": "pokemon_speedrun_healthy_processes", '
             b'"operator": "<", "threshold": "1"}', "threshold"),
            (b'{"id": "x", "metric": "pokemon_speedrun_healthy_processes", '
             b'"operator": "<", "threshold": 1, "for": "soon"}', "for"),
            (b'{"id": "x", "metric": "pokemon_speedrun_healthy_processes", '
             b'"operator": "<", "threshold": 1, "severity": "page"}', "severity"),
            (b'{"id": "x", "metric": "pokemon_speedrun_healthy_processes", '
             b'"operator": "<", "threshold": 1, "treshold": 2}', "treshold"),
        ]
        for body, field in cases:
            with self.subTest(body=body):
                r = requests.post(url, data=body, headers={"Content-Type": "application/json"},
                                  timeout=10)
                self.assertEqual(r.status_code, 400, r.text)
                doc = r.json()
                self.assertEqual(set(doc), {"error", "field"})
                self.assertEqual(doc["field"], field, doc)
                self.assertTrue(doc["error"], doc)

        r = requests.delete(url + "/no_such_rule", timeout=10)
        self.assertEqual((r.status_code, r.json()),
                         (404, {"error": 'no rule with id "no_such_rule"', "field": "id"}))

        # Refusals changed nothing; a good rule is added, listed, removed.
        self.assertEqual([x["id"] for x in self.sm.get_json("/api/v1/alert-rules")["rules"]],
                         ["emulators_down"])
        rule = {"id": "api_rule", "metric": "pokemon_speedrun_healthy_processes",
                "operator": "<", "threshold": 0}
        r = requests.post(url, json=rule, timeout=10)
        self.assertEqual(r.status_code, 201, r.text)
        self.assertEqual((r.json()["id"], r.json()["origin"]), ("api_rule", "api"))
        r = requests.post(url, json=rule, timeout=10)
        self.assertEqual((r.status_code, r.json()),
                         (409, {"error": 'rule "api_rule" already exists', "field": "id"}))
        self.assertEqual([x["id"] for x in self.sm.get_json("/api/v1/alert-rules")["rules"]],
                         ["emulators_down", "api_rule"])
        r = requests.delete(url + "/api_rule", timeout=10)
        self.assertEqual((r.status_code, r.json()), (200, {"deleted": "api_rule"}))
        r = requests.delete(url + "/api_rule", timeout=10)
        self.assertEqual(r.status_code, 404)
        self.assertEqual(prom.value(self.sm.metrics(), "pokemon_speedrun_alert_rules"), 1)


class HungTargetTest(harness.HarnessTestCase):
    """A notification target that accepts the connection and never answers (timeout 10m)
    must hold up nothing but its own sender thread: not a reload, not the exit."""

    HUNG_TIMEOUT = "10m"

    def fire_into_hung(self, kind, check_exit=True):
        """speedmon whose only `kind` target hangs; returns once a notice is in flight.
        check_exit: as in start_speedmon."""
        self.fake = self.start_fake()
        self.hung = stack.HungServer()
        self.sm = self.start_speedmon(alerting_config(
            self.fake, **{kind: [{"url": self.hung.url, "timeout": self.HUNG_TIMEOUT}]}),
            check_exit=check_exit)
        self.addCleanup(self.hung.close)  # runs before speedmon's stop: ends the request
        self.fake.proc.kill()
        self.wait_firing()
        self.hung.wait_connections(1)

    def wait_firing(self):
        harness.wait_for(lambda: [a for a in self.sm.get_json("/api/v1/alerts")["alerts"]
                                  if a["state"] == "firing"], 20, what="EmulatorsDown firing")

    def test_sigterm_exits_while_an_alertmanager_hangs(self):
        self.fire_into_hung("alertmanagers", check_exit=False)  # checked here
        self.sm.signal(signal.SIGTERM)
        code = self.sm.wait(20)
        self.assertEqual(code, 0, "speedmon (drain_timeout 2s) has not exited 20s after "
                         f"SIGTERM while an Alertmanager hangs (its timeout is "
                         f"{self.HUNG_TIMEOUT}); stderr:\n{self.sm.stderr()}")

    def test_reload_away_from_a_hung_alertmanager_keeps_the_main_loop_running(self):
        self.fire_into_hung("alertmanagers")
        am = stack.Alertmanager(self.workdir).start()
        self.addCleanup(am.stop)
        cfg = self.sm.config
        cfg["alerting"]["alertmanagers"] = [{"url": am.url}]
        with open(self.sm.config_path, "w") as f:
            f.write(harness.toml_dumps(cfg))
        self.sm.signal(signal.SIGHUP)
        # The new Alertmanager gets the re-send, and the admin server (main loop) answers,
        # while the old one still hangs.
        try:
            harness.wait_for(lambda: am.alerts("EmulatorsDown"), 20, interval=0.2,
                             what="EmulatorsDown in the new Alertmanager")
            status = self.sm.get("/healthz", timeout=20)[0]
        except (AssertionError, OSError) as e:
            self.fail(f"{e}: after SIGHUP the main loop (admin API, health checks, alert "
                      f"evaluation) waits for the hung Alertmanager's request "
                      f"(timeout {self.HUNG_TIMEOUT}); stderr:\n{self.sm.stderr()}")
        self.assertEqual(status, 200)
        self.wait_firing()


if __name__ == "__main__":
    unittest.main()
