"""Alert notices over https: speedmon sends an alert to webhooks served by Python's `ssl`
on 127.0.0.1 with each target's TLS and auth settings, and counts what fails.

Keys and certificates are made at test time with the `openssl` CLI into a temp dir (a CA,
a server certificate for 127.0.0.1, one that names only hooks.speedmon.test, a client
certificate, and a second CA nobody signed with); nothing secret is in the repository.
A rule that is always true (healthy processes >= 0) fires at the first evaluation, so
each webhook gets one "firing" notice within a second.
"""

import base64
import http.server
import json
import os
import signal
import ssl
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))
import harness  # noqa: E402
from harness import prom  # noqa: E402

NOTIFICATIONS = "pokemon_speedrun_alert_notifications_total"
RULE = {"id": "tls_probe", "metric": "pokemon_speedrun_healthy_processes", "operator": ">=",
        "threshold": 0, "severity": "info"}


def openssl(*args, cwd):
    subprocess.run(["openssl", *args], cwd=cwd, check=True, stdout=subprocess.DEVNULL,
                   stderr=subprocess.PIPE)


def make_pki(d):
    """CA, server, named-only server, client certificates and an unrelated CA in d."""
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for ca in ("ca", "other_ca"):
        openssl("req", "-x509", *ec, "-keyout", f"{ca}.key", "-out", f"{ca}.pem", "-days", "2",
                "-subj", f"/CN=speedmon test {ca}", cwd=d)
    leaves = {
        "server": ("/CN=127.0.0.1", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        "named": ("/CN=hooks.speedmon.test",
                  "subjectAltName=DNS:hooks.speedmon.test\nextendedKeyUsage=serverAuth"),
        "client": ("/CN=speedmon-client", "extendedKeyUsage=clientAuth"),
    }
    for name, (subject, ext) in leaves.items():
        with open(os.path.join(d, f"{name}.ext"), "w") as f:
            f.write(ext + "\n")
        openssl("req", *ec, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject,
                cwd=d)
        openssl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile",
                f"{name}.ext", cwd=d)
    return {k: os.path.join(d, k) for k in os.listdir(d)}


class HttpsReceiver:
    """An HTTPS server on 127.0.0.1 that records every request (headers, body, the client
    certificate's subject, the SNI name) and answers 200 {}."""

    def __init__(self, pki, cert="server", require_client_cert=False):
        self.requests = []
        self.sni = []
        self.lock = threading.Lock()
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(pki[f"{cert}.pem"], pki[f"{cert}.key"])
        if require_client_cert:
            ctx.verify_mode = ssl.CERT_REQUIRED
            ctx.load_verify_locations(pki["ca.pem"])

        def on_sni(sock, name, context):
            with self.lock:
                self.sni.append(name)
        ctx.sni_callback = on_sni
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                peer = self.connection.getpeercert()
                subject = dict(x[0] for x in peer["subject"]) if peer else None
                with receiver.lock:
                    receiver.requests.append({"path": self.path, "headers": dict(self.headers),
                                              "body": json.loads(body), "peer": subject})
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        class Server(http.server.ThreadingHTTPServer):
            daemon_threads = True

            def handle_error(self, request, client_address):
                pass  # failed handshakes are what some tests are about

        self.server = Server(("127.0.0.1", 0), Handler)
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.url = f"https://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def snapshot(self):
        with self.lock:
            return list(self.requests)

    def wait_requests(self, n, timeout=10.0):
        return harness.wait_for(lambda: len(self.snapshot()) >= n and self.snapshot(), timeout,
                                what=f"{n} request(s) at {self.url}")

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class AlertTlsTest(harness.HarnessTestCase):
    @classmethod
    def setUpClass(cls):
        cls.pki_dir = harness.temp_dir("speedmon-pki-")
        cls.pki = make_pki(cls.pki_dir)

    def setUp(self):
        super().setUp()
        self.fake = self.start_fake()

    def receiver(self, **kw):
        r = HttpsReceiver(self.pki, **kw)
        self.addCleanup(r.stop)
        return r

    def start(self, webhooks, rule=RULE):
        cfg = harness.proxy_config({"emu": [self.fake.address]})
        cfg["alerting"] = {"default_rules": False, "evaluation_interval": "300ms",
                           "rules": [rule], "webhooks": webhooks}
        return self.start_speedmon(cfg)

    def secret_file(self, name, text):
        path = os.path.join(self.workdir, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    def assertFiring(self, request, rule_id="tls_probe"):
        self.assertEqual(request["path"], "/hook")
        self.assertEqual(request["headers"]["Content-Type"], "application/json")
        self.assertEqual([(a["status"], a["labels"]["rule_id"]) for a in request["body"]["alerts"]],
                         [("firing", rule_id)])

    def test_basic_auth_over_https_with_ca_file(self):
        r = self.receiver()
        sm = self.start([{"url": r.url, "tls_ca_file": self.pki["ca.pem"],
                          "basic_auth_username": "speedmon",
                          "basic_auth_password_file": self.secret_file("pw", "s3cret pw\n")}])
        [req] = r.wait_requests(1)
        self.assertFiring(req)
        expected = "Basic " + base64.b64encode(b"speedmon:s3cret pw").decode()
        self.assertEqual(req["headers"]["Authorization"], expected)
        self.assertIsNone(req["peer"])  # no client certificate configured
        self.assertEqual(r.sni, [None])  # an IP literal is not sent as SNI
        s = self.waitMetric(sm, 1, NOTIFICATIONS, target=r.url, result="sent")
        self.assertMetric(s, 0, NOTIFICATIONS, target=r.url, result="failed")

    def test_bearer_token_file_read_at_start_and_at_sighup(self):
        r = self.receiver()
        token = self.secret_file("token", "tok-1\n")
        hook = {"url": r.url, "tls_ca_file": self.pki["ca.pem"], "bearer_token_file": token}
        sm = self.start([hook])
        [req] = r.wait_requests(1)
        self.assertFiring(req)
        self.assertEqual(req["headers"]["Authorization"], "Bearer tok-1")

        # A new token in the file and a new rule: the reload reads the file again and the
        # new rule's firing goes out with the new token (the old rule's resolve too).
        self.secret_file("token", "tok-2\n")
        cfg = json.loads(json.dumps(sm.config))
        cfg["alerting"]["rules"] = [dict(RULE, id="tls_probe_2")]
        with open(sm.config_path, "w") as f:
            f.write(harness.toml_dumps(cfg))
        sm.signal(signal.SIGHUP)

        def later_alerts():
            return [(a["status"], a["labels"]["rule_id"])
                    for x in r.snapshot()[1:] for a in x["body"]["alerts"]]
        harness.wait_for(lambda: ("firing", "tls_probe_2") in later_alerts(), 10,
                         what="the new rule's notice")
        self.assertEqual({x["headers"]["Authorization"] for x in r.snapshot()[1:]},
                         {"Bearer tok-2"})

    def test_libcurl_is_loaded_only_once_a_target_is_configured(self):
        def curl_mapped(sm):
            with open(f"/proc/{sm.proc.pid}/maps") as f:
                return "libcurl" in f.read()
        sm = self.start([])
        self.waitMetric(sm, 1, "pokemon_speedrun_alert_evaluations_total")
        self.assertFalse(curl_mapped(sm))

        r = self.receiver()
        cfg = json.loads(json.dumps(sm.config))
        cfg["alerting"]["webhooks"] = [{"url": r.url, "tls_ca_file": self.pki["ca.pem"]}]
        cfg["alerting"]["rules"] = [dict(RULE, id="tls_probe_2")]  # a new alert to send
        with open(sm.config_path, "w") as f:
            f.write(harness.toml_dumps(cfg))
        sm.signal(signal.SIGHUP)
        harness.wait_for(lambda: any(a["labels"]["rule_id"] == "tls_probe_2"
                                     for x in r.snapshot() for a in x["body"]["alerts"]),
                         10, what="the new rule's notice")
        self.assertTrue(curl_mapped(sm))

    def test_client_certificate_for_a_receiver_that_requires_one(self):
        r = self.receiver(require_client_cert=True)
        without = f"https://127.0.0.1:{r.port}/hook/"
        sm = self.start([
            {"url": r.url, "tls_ca_file": self.pki["ca.pem"],
             "tls_cert_file": self.pki["client.pem"], "tls_key_file": self.pki["client.key"]},
            # The same receiver without a certificate: the handshake is refused.
            {"url": without, "tls_ca_file": self.pki["ca.pem"]},
        ])
        [req] = r.wait_requests(1)
        self.assertFiring(req)
        self.assertEqual(req["peer"], {"commonName": "speedmon-client"})
        self.waitMetric(sm, 1, NOTIFICATIONS, target=r.url, result="sent")
        s = sm.metrics_when(lambda s: prom.value_or_zero(
            s, NOTIFICATIONS, target=without, result="failed") >= 1, what="failed without cert")
        self.assertMetric(s, 0, NOTIFICATIONS, target=without, result="sent")
        self.assertEqual(len(r.snapshot()), 1)
        self.assertIn(f"alerting: sending to {without} failed (", sm.stderr())

    def test_tls_server_name_is_checked_and_sent_as_sni(self):
        r = self.receiver(cert="named")  # its certificate names hooks.speedmon.test only
        sm = self.start([
            {"url": r.url, "tls_ca_file": self.pki["ca.pem"],
             "tls_server_name": "hooks.speedmon.test"},
            {"url": f"https://127.0.0.1:{r.port}/hook/", "tls_ca_file": self.pki["ca.pem"]},
        ])
        [req] = r.wait_requests(1)
        self.assertFiring(req)
        self.assertEqual(req["headers"]["Host"], f"127.0.0.1:{r.port}")
        self.assertIn("hooks.speedmon.test", r.sni)
        without = f"https://127.0.0.1:{r.port}/hook/"
        self.waitMetric(sm, 1, NOTIFICATIONS, target=r.url, result="sent")
        sm.metrics_when(lambda s: prom.value_or_zero(
            s, NOTIFICATIONS, target=without, result="failed") >= 1, what="name mismatch")
        self.assertIn(f"alerting: sending to {without} failed (TLS: certificate verify failed: ",
                      sm.stderr())

    def test_wrong_ca_fails_and_is_counted_while_the_daemon_serves(self):
        r = self.receiver()
        sm = self.start([{"url": r.url, "tls_ca_file": self.pki["other_ca.pem"]}])
        s = sm.metrics_when(lambda s: prom.value_or_zero(
            s, NOTIFICATIONS, target=r.url, result="failed") >= 2, what="two failed sends")
        self.assertMetric(s, 0, NOTIFICATIONS, target=r.url, result="sent")
        self.assertEqual(r.snapshot(), [])
        self.assertIn(f"alerting: sending to {r.url} failed (TLS: certificate verify failed: "
                      "SSL certificate problem: unable to get local issuer certificate); "
                      "retrying with back-off", sm.stderr())
        # Still serving: the admin side and the proxy.
        self.assertEqual(sm.get("/healthz")[0], 200)
        resp = self.raw(sm.port).request("GET", "/status", [], b"")
        self.assertEqual(resp.status, 200)

    def test_unresolvable_name_fails_within_the_timeout_and_is_counted(self):
        url = "http://speedmon-no-such-host.invalid:80/hook"
        sm = self.start([{"url": url, "timeout": "1s"}])
        started = time.monotonic()
        s = sm.metrics_when(lambda s: prom.value_or_zero(
            s, NOTIFICATIONS, target=url, result="failed") >= 1, what="a failed send")
        self.assertLess(time.monotonic() - started, 3.0)
        self.assertMetric(s, 0, NOTIFICATIONS, target=url, result="sent")
        self.assertIn(f"alerting: sending to {url} failed (resolve speedmon-no-such-host.invalid: ",
                      sm.stderr())
        self.assertEqual(sm.get("/healthz")[0], 200)


if __name__ == "__main__":
    import unittest
    unittest.main()
