#!/usr/bin/python3
"""Static checks of monitoring/kubernetes/ against the speedmon config its ConfigMap holds.

    /usr/bin/python3 monitoring/kubernetes_test.py [-v]
    PROMTOOL=/usr/bin/promtool  SPEEDMON_BIN=build/release/app/speedmon  (the defaults)

Every manifest parses (PyYAML); the probes, the Service and the PodMonitor use the ports of
the ConfigMap's [admin].address and listener; the grace period covers the preStop sleep
and [proxy] drain_timeout; the process namespace is shared and [[processes]] matches the
emulator's command line; the admin token is a Secret file at [admin].auth_token_file;
`speedmon --check-config` accepts the ConfigMap's TOML; the kubernetes_sd scrape job keeps
exactly speedmon's admin port (its relabelling run here on the pod's container ports) and
passes `promtool check config`.

Debian's promtool is built without Kubernetes service discovery ("field
kubernetes_sd_configs not found"). With such a promtool the scrape config is checked with
the discovery block swapped for a static target (everything else, relabelling included, as
written); a promtool that knows kubernetes_sd_configs checks the file as it is.

Needs /usr/bin/python3 with Debian's python3-yaml.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
K8S = os.path.join(HERE, "kubernetes")
sys.dont_write_bytecode = True

DURATION = re.compile(r"^(?:(\d+)h)?(?:(\d+)m(?!s))?(?:(\d+)s)?(?:(\d+)ms)?$")


def seconds(text):
    """speedmon's duration strings ("15s", "1m30s", "250ms") in seconds."""
    m = DURATION.match(text)
    assert m and text, text
    h, mi, s, ms = (int(g or 0) for g in m.groups())
    return h * 3600 + mi * 60 + s + ms / 1000


def promtool():
    return os.environ.get("PROMTOOL") or shutil.which("promtool") or "/usr/bin/promtool"


def speedmon_bin():
    path = os.environ.get("SPEEDMON_BIN") or os.path.join(REPO, "build", "release", "app",
                                                          "speedmon")
    if not os.access(path, os.X_OK):
        raise AssertionError(f"{path} is not an executable file: build the speedmon target "
                             "(scripts/build.sh release) or set SPEEDMON_BIN")
    return path


def manifests():
    """{file name: [documents]} for every YAML manifest in monitoring/kubernetes/."""
    out = {}
    for name in sorted(os.listdir(K8S)):
        if name.endswith((".yaml", ".yml")) and name != "prometheus-kubernetes.yml":
            with open(os.path.join(K8S, name), encoding="utf-8") as f:
                out[name] = [d for d in yaml.safe_load_all(f) if d is not None]
    return out


def port_of(address):
    return int(address.rsplit(":", 1)[1])


def relabel(rules, labels):
    """Prometheus relabelling (replace and keep, the actions the job uses) of one target's
    labels; None when dropped."""
    labels = dict(labels)
    for r in rules:
        action = r.get("action", "replace")
        value = r.get("separator", ";").join(labels.get(s, "") for s in
                                             r.get("source_labels", []))
        m = re.fullmatch(r.get("regex", "(.*)"), value)
        if action == "keep":
            if not m:
                return None
        elif action == "drop":
            if m:
                return None
        elif action == "replace":
            if m:
                repl = re.sub(r"\$\{?(\w+)\}?", lambda g: m.group(int(g.group(1)))
                              if g.group(1).isdigit() else "", r.get("replacement", "$1"))
                if repl:
                    labels[r["target_label"]] = repl
                else:
                    labels.pop(r["target_label"], None)
        else:
            raise AssertionError(f"relabel action {action} is not simulated here")
    return labels


def label_name(key):
    return re.sub(r"[^a-zA-Z0-9_]", "_", key)


class KubernetesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.docs = manifests()
        by_kind = {}
        for docs in cls.docs.values():
            for d in docs:
                by_kind.setdefault(d["kind"], []).append(d)
        cls.by_kind = by_kind
        [cm] = by_kind["ConfigMap"]
        cls.toml_text = cm["data"]["speedmon.toml"]
        cls.config = tomllib.loads(cls.toml_text)
        [cls.deployment] = by_kind["Deployment"]
        cls.pod = cls.deployment["spec"]["template"]["spec"]
        cls.containers = {c["name"]: c for c in cls.pod["containers"]}
        cls.speedmon = cls.containers["speedmon"]
        cls.ports = {p["name"]: p["containerPort"] for p in cls.speedmon["ports"]}
        cls.admin_port = port_of(cls.config["admin"]["address"])
        [listener] = cls.config["listeners"]
        cls.proxy_port = port_of(listener["address"])

    def test_every_manifest_parses_with_kind_and_metadata(self):
        self.assertEqual(set(self.docs), {"configmap.yaml", "deployment.yaml", "service.yaml",
                                          "podmonitor.yaml"})
        for name, docs in self.docs.items():
            for d in docs:
                with self.subTest(file=name, kind=d.get("kind")):
                    self.assertIn("apiVersion", d)
                    self.assertIn("kind", d)
                    self.assertTrue(d["metadata"]["name"])
        self.assertEqual(self.deployment["apiVersion"], "apps/v1")
        [pm] = self.by_kind["PodMonitor"]
        self.assertEqual(pm["apiVersion"], "monitoring.coreos.com/v1")
        # No Secret is shipped: the token is never in a file of this repository.
        self.assertNotIn("Secret", self.by_kind)

    def test_selectors_match_the_pod(self):
        labels = self.deployment["spec"]["template"]["metadata"]["labels"]
        sel = self.deployment["spec"]["selector"]["matchLabels"]
        self.assertLessEqual(sel.items(), labels.items())
        [svc] = self.by_kind["Service"]
        self.assertLessEqual(svc["spec"]["selector"].items(), labels.items())
        [pm] = self.by_kind["PodMonitor"]
        self.assertLessEqual(pm["spec"]["selector"]["matchLabels"].items(), labels.items())

    def test_listeners_bind_the_pod_ip_and_the_upstream_is_the_loopback_emulator(self):
        self.assertEqual(self.config["admin"]["address"], f"0.0.0.0:{self.admin_port}")
        self.assertEqual(self.config["listeners"][0]["address"], f"0.0.0.0:{self.proxy_port}")
        self.assertEqual(self.ports, {"proxy": self.proxy_port, "admin": self.admin_port})
        [up] = self.config["upstreams"]
        cmd = self.containers["emulator"]["command"]
        self.assertEqual(up["endpoints"], [f"127.0.0.1:{cmd[cmd.index('--port') + 1]}"])
        self.assertEqual(cmd[cmd.index("--host") + 1], "127.0.0.1")

    def resolve(self, port):
        return self.ports[port] if isinstance(port, str) else port

    def test_probes(self):
        live = self.speedmon["livenessProbe"]["httpGet"]
        ready = self.speedmon["readinessProbe"]["httpGet"]
        self.assertEqual((live["path"], self.resolve(live["port"])), ("/healthz", self.admin_port))
        self.assertEqual((ready["path"], self.resolve(ready["port"])), ("/ready", self.admin_port))

    def test_service_ports(self):
        [svc] = self.by_kind["Service"]
        ports = {p["name"]: (p["port"], self.resolve(p["targetPort"])) for p in
                 svc["spec"]["ports"]}
        self.assertEqual(ports, {"proxy": (self.proxy_port, self.proxy_port),
                                 "admin": (self.admin_port, self.admin_port)})

    def test_podmonitor_scrapes_the_admin_port(self):
        [pm] = self.by_kind["PodMonitor"]
        [ep] = pm["spec"]["podMetricsEndpoints"]
        self.assertEqual(self.resolve(ep["port"]), self.admin_port)
        self.assertEqual(ep["path"], "/metrics")
        self.assertIn({"targetLabel": "job", "replacement": "speedmon"}, ep["relabelings"])

    def prestop_sleep(self, container):
        cmd = container["lifecycle"]["preStop"]["exec"]["command"]
        self.assertEqual(cmd[0], "sleep")
        return int(cmd[1])

    def test_grace_period_covers_the_drain(self):
        drain = seconds(self.config["proxy"]["drain_timeout"])
        grace = self.pod["terminationGracePeriodSeconds"]
        speedmon_sleep = self.prestop_sleep(self.speedmon)
        self.assertGreater(grace, drain)
        # SIGTERM comes after preStop, within the same grace period; keep a margin.
        self.assertGreaterEqual(grace, speedmon_sleep + drain + 5)
        # The emulator gets its SIGTERM only after speedmon has drained.
        emulator_sleep = self.prestop_sleep(self.containers["emulator"])
        self.assertGreaterEqual(emulator_sleep, speedmon_sleep + drain)
        self.assertLess(emulator_sleep, grace)

    def test_process_namespace_shared_and_processes_match_the_emulator(self):
        self.assertIs(self.pod["shareProcessNamespace"], True)
        [proc] = self.config["processes"]
        emulator = " ".join(self.containers["emulator"]["command"])
        self.assertRegex(emulator, proc["cmdline_regex"])
        for c in self.containers.values():
            for cmd in (c.get("command", []), c["lifecycle"]["preStop"]["exec"]["command"]):
                if cmd is not self.containers["emulator"]["command"]:
                    self.assertNotRegex(" ".join(cmd), proc["cmdline_regex"])
        # Open fds are readable by the same uid only: one uid for the pod.
        self.assertEqual(self.pod["securityContext"]["runAsUser"], 10001)

    def test_token_is_a_secret_file_at_auth_token_file(self):
        path = self.config["admin"]["auth_token_file"]
        self.assertNotIn("auth_token", self.config["admin"])
        self.assertFalse(self.config["admin"].get("allow_unauthenticated_writes", False))
        volumes = {v["name"]: v for v in self.pod["volumes"]}
        found = []
        for m in self.speedmon["volumeMounts"]:
            v = volumes[m["name"]]
            if "secret" in v:
                self.assertTrue(m.get("readOnly"))
                for item in v["secret"]["items"]:
                    found.append(os.path.join(m["mountPath"], item["path"]))
        self.assertEqual(found, [path])
        # The config is the ConfigMap, mounted as a directory so edits reach the file.
        config_path = self.speedmon["command"][self.speedmon["command"].index("--config") + 1]
        [cm_mount] = [m for m in self.speedmon["volumeMounts"]
                      if "configMap" in volumes[m["name"]]]
        self.assertNotIn("subPath", cm_mount)
        self.assertEqual(config_path, os.path.join(cm_mount["mountPath"], "speedmon.toml"))
        [cm] = self.by_kind["ConfigMap"]
        self.assertEqual(volumes[cm_mount["name"]]["configMap"]["name"], cm["metadata"]["name"])
        # No secret anywhere in the ConfigMap or the pod spec's environment.
        self.assertNotRegex(self.toml_text, r"(?m)^\s*auth_token\s*=")
        for c in self.containers.values():
            for e in c.get("env", []):
                if e["name"] == "SPEEDMON_AUTH_TOKEN":
                    self.assertNotIn("value", e)  # valueFrom.secretKeyRef only

    def test_store_is_on_a_mounted_volume(self):
        store = self.config["speedrun"]["store_path"]
        mounts = [m["mountPath"] for m in self.speedmon["volumeMounts"]]
        self.assertTrue(any(store.startswith(m + "/") for m in mounts), store)
        self.assertTrue(self.speedmon["securityContext"]["readOnlyRootFilesystem"])

    def test_check_config_accepts_the_configmap(self):
        with tempfile.TemporaryDirectory() as tmp:
            # auth_token_file must name a readable file: point it at a stand-in.
            token = os.path.join(tmp, "auth-token")
            with open(token, "w") as f:
                f.write("stand-in-token\n")
            text = self.toml_text.replace(self.config["admin"]["auth_token_file"], token)
            self.assertNotEqual(text, self.toml_text)
            path = os.path.join(tmp, "speedmon.toml")
            with open(path, "w") as f:
                f.write(text)
            env = {k: v for k, v in os.environ.items() if k != "SPEEDMON_AUTH_TOKEN"}
            r = subprocess.run([speedmon_bin(), "--check-config", "--config", path],
                               capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("writes need a token", r.stdout)
            # As shipped (the Secret not mounted here), the error names the key.
            with open(path + ".x", "w") as f:
                f.write(self.toml_text)
            r = subprocess.run([speedmon_bin(), "--check-config", "--config", path + ".x"],
                               capture_output=True, text=True, timeout=60, env=env)
            self.assertEqual(r.returncode, 1, r.stdout + r.stderr)
            self.assertIn("[admin].auth_token_file: cannot read", r.stdout + r.stderr)


class ScrapeConfigTest(unittest.TestCase):
    PATH = os.path.join(K8S, "prometheus-kubernetes.yml")

    @classmethod
    def setUpClass(cls):
        with open(cls.PATH, encoding="utf-8") as f:
            cls.prom = yaml.safe_load(f)
        [cls.job] = cls.prom["scrape_configs"]
        docs = [d for ds in manifests().values() for d in ds]
        [cls.deployment] = [d for d in docs if d["kind"] == "Deployment"]
        [cm] = [d for d in docs if d["kind"] == "ConfigMap"]
        cls.admin_port = port_of(tomllib.loads(cm["data"]["speedmon.toml"])["admin"]["address"])

    def test_job(self):
        self.assertEqual(self.job["job_name"], "speedmon")  # up{job="speedmon"} in the alerts
        self.assertEqual(self.job["metrics_path"], "/metrics")
        self.assertEqual(self.job["kubernetes_sd_configs"], [{"role": "pod"}])
        self.assertEqual(self.prom["rule_files"], ["../alert_rules.yml"])
        self.assertTrue(os.path.isfile(os.path.join(K8S, "..", "alert_rules.yml")))

    def test_relabelling_keeps_only_the_admin_port(self):
        """role: pod gives one target per container port; the job keeps speedmon's admin."""
        template = self.deployment["spec"]["template"]
        base = {"__meta_kubernetes_namespace": "speedrun",
                "__meta_kubernetes_pod_name": "speedmon-emulator-abc",
                "__meta_kubernetes_pod_phase": "Running",
                "__metrics_path__": "/metrics", "job": "speedmon"}
        for k, v in template["metadata"]["annotations"].items():
            base["__meta_kubernetes_pod_annotation_" + label_name(k)] = v
        for k, v in template["metadata"]["labels"].items():
            base["__meta_kubernetes_pod_label_" + label_name(k)] = v
        kept = []
        for c in template["spec"]["containers"]:
            for p in c.get("ports", []) or [{}]:
                labels = dict(base, __address__=f"10.0.0.7:{p.get('containerPort', '')}",
                              __meta_kubernetes_pod_container_name=c["name"],
                              __meta_kubernetes_pod_container_port_name=p.get("name", ""))
                out = relabel(self.job["relabel_configs"], labels)
                if out is not None:
                    kept.append(out)
        self.assertEqual(len(kept), 1, kept)
        [t] = kept
        self.assertEqual(t["__address__"], f"10.0.0.7:{self.admin_port}")
        self.assertEqual(t["__meta_kubernetes_pod_container_name"], "speedmon")
        self.assertEqual(t["__metrics_path__"], "/metrics")
        self.assertEqual((t["namespace"], t["pod"]), ("speedrun", "speedmon-emulator-abc"))
        # An unannotated pod with an "admin" port is not scraped.
        other = dict(base, __address__="10.0.0.8:8000",
                     __meta_kubernetes_pod_container_port_name="admin")
        del other["__meta_kubernetes_pod_annotation_prometheus_io_scrape"]
        self.assertIsNone(relabel(self.job["relabel_configs"], other))
        # A pod that is not running is not scraped.
        self.assertIsNone(relabel(self.job["relabel_configs"],
                                  dict(kept[0], __meta_kubernetes_pod_phase="Pending")))

    def promtool_knows_kubernetes_sd(self, tmp):
        probe = os.path.join(tmp, "probe.yml")
        with open(probe, "w") as f:
            f.write("scrape_configs:\n  - job_name: p\n    kubernetes_sd_configs:\n"
                    "      - role: pod\n")
        r = subprocess.run([promtool(), "check", "config", probe], capture_output=True,
                           text=True, timeout=60)
        if r.returncode == 0:
            return True
        self.assertIn("field kubernetes_sd_configs not found", r.stdout + r.stderr)
        return False

    def test_promtool_check_config(self):
        with tempfile.TemporaryDirectory() as tmp:
            if self.promtool_knows_kubernetes_sd(tmp):
                path = self.PATH
            else:
                # Debian's promtool: the same file with a static target for the discovery
                # block, beside alert_rules.yml's copy so the relative rule path resolves.
                cfg = yaml.safe_load(open(self.PATH, encoding="utf-8"))
                job = cfg["scrape_configs"][0]
                del job["kubernetes_sd_configs"]
                job["static_configs"] = [{"targets": [f"10.0.0.7:{self.admin_port}"]}]
                os.mkdir(os.path.join(tmp, "kubernetes"))
                shutil.copy(os.path.join(HERE, "alert_rules.yml"), tmp)
                path = os.path.join(tmp, "kubernetes", "prometheus-kubernetes.yml")
                with open(path, "w") as f:
                    yaml.safe_dump(cfg, f)
            r = subprocess.run([promtool(), "check", "config", path], capture_output=True,
                               text=True, timeout=60)
            self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
            self.assertIn("SUCCESS", r.stdout + r.stderr)


if __name__ == "__main__":
    unittest.main()
