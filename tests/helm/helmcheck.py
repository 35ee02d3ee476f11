#!/usr/bin/python3
"""Checks for the executor-sidecar chart, beside the Go renderer (tests/helm/render).

  helmcheck.py values DUMP.json
      Validates the values that `helmrender --dump-values` printed against each chart's
      values.schema.json, as Helm does before rendering; prints every violation with the path of
      the value ("containers[0].executor.port: 70000 is greater than the maximum of 65535").

  helmcheck.py manifests [--namespace NS] [--require-secrets] [FILE]
      Reads a `helm template` stream (FILE or stdin) and checks every object against the
      Kubernetes schemas of k8s_schemas.py, then the chart's own rules: selectors match pod
      labels, probe ports are container ports, mounts name volumes, the injection is complete
      (init container, wrapped commands, shared volumes), and the scheduler's workers config
      agrees with the worker pods. Prints one line per problem; exit 1 if any.
"""

import argparse
import json
import sys

import jsonschema
import yaml

sys.path.insert(0, __import__("os").path.dirname(__file__))
from k8s_schemas import SCHEMAS  # noqa: E402


def json_path(path):
    """containers, 0, executor -> containers[0].executor"""
    out = ""
    for p in path:
        out += "[%d]" % p if isinstance(p, int) else ("." if out else "") + str(p)
    return out or "(root)"


def schema_errors(schema, doc):
    v = jsonschema.Draft7Validator(schema)
    for e in sorted(v.iter_errors(doc), key=lambda e: (list(map(str, e.absolute_path)), e.message)):
        # A oneOf/anyOf failure says little; its closest sub-error says what is wrong.
        best = e
        if e.context:
            best = jsonschema.exceptions.best_match(e.context)
        msg = best.message
        desc = best.schema.get("description") if isinstance(best.schema, dict) else None
        # The description of a leaf value says what it is; an object's would only repeat itself.
        if desc and best.validator not in ("additionalProperties", "required"):
            msg += " (%s)" % desc
        yield json_path(best.absolute_path), msg


def check_values(dump_file):
    with open(dump_file) as f:
        charts = json.load(f)
    bad = []
    for c in charts:
        with open(c["schema"]) as f:
            schema = json.load(f)
        errs = list(schema_errors(schema, c["values"]))
        if errs:
            bad.append("%s:" % c["chart"])
            bad += ["- %s: %s" % e for e in errs]
    if bad:
        print("Error: values don't meet the specifications of the schema(s) in the following chart(s):")
        print("\n".join(bad))
        return 1
    return 0


# ---- manifests -------------------------------------------------------------------------------

EXECUTOR = "/pm/pm-executor"


class Checker:
    def __init__(self, docs, namespace, require_secrets=False):
        self.docs = docs
        self.ns = namespace
        self.require_secrets = require_secrets
        self.problems = []

    def bad(self, obj, msg):
        name = "%s/%s" % (obj.get("kind"), (obj.get("metadata") or {}).get("name"))
        self.problems.append("%s: %s" % (name, msg))

    def of_kind(self, kind):
        return [d for d in self.docs if d.get("kind") == kind]

    def run(self):
        for d in self.docs:
            key = (d.get("apiVersion"), d.get("kind"))
            if key not in SCHEMAS:
                self.bad(d, "no schema for apiVersion %s kind %s" % key)
                continue
            for path, msg in schema_errors(SCHEMAS[key], d):
                self.bad(d, "%s: %s" % (path, msg))
        if self.problems:
            return  # the rules below assume well-formed objects
        names = {}
        for d in self.docs:
            k = (d["kind"], d["metadata"]["name"])
            if k in names:
                self.bad(d, "rendered twice")
            names[k] = d
        for dep in self.of_kind("Deployment"):
            self.check_pod(dep)
        self.check_secret_refs()
        self.check_services()
        self.check_network_policies()
        self.check_workers_config()
        self.check_hpa()
        self.check_ingress()

    # -- pods

    def check_pod(self, dep):
        spec = dep["spec"]
        tmpl = spec["template"]
        labels = (tmpl.get("metadata") or {}).get("labels") or {}
        sel = spec["selector"].get("matchLabels") or {}
        if not sel:
            self.bad(dep, "selector has no matchLabels")
        for k, v in sel.items():
            if labels.get(k) != v:
                self.bad(dep, "selector %s=%s does not match the pod label %r" % (k, v, labels.get(k)))
        pod = tmpl["spec"]
        vols = [v["name"] for v in pod.get("volumes", [])]
        if len(set(vols)) != len(vols):
            self.bad(dep, "volume names repeat: %s" % vols)
        containers = pod.get("initContainers", []) + pod["containers"]
        cnames = [c["name"] for c in containers]
        if len(set(cnames)) != len(cnames):
            self.bad(dep, "container names repeat: %s" % cnames)
        psc = pod.get("securityContext", {})
        for c in containers:
            where = "container %s" % c["name"]
            ports = c.get("ports", [])
            numbers = {p["containerPort"] for p in ports}
            pnames = {p.get("name") for p in ports}
            for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
                p = c.get(probe)
                if not p:
                    continue
                handler = p.get("grpc") or p.get("tcpSocket") or p.get("httpGet")
                if handler and handler["port"] not in numbers and handler["port"] not in pnames:
                    self.bad(dep, "%s: %s port %s is not one of its ports %s" % (where, probe, handler["port"], sorted(numbers)))
            for m in c.get("volumeMounts", []):
                if m["name"] not in vols:
                    self.bad(dep, "%s: volumeMount %s names no volume of the pod" % (where, m["name"]))
            sc = c.get("securityContext", {})
            if sc.get("allowPrivilegeEscalation") is not False:
                self.bad(dep, "%s: allowPrivilegeEscalation is not false" % where)
            if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                self.bad(dep, "%s: capabilities do not drop ALL" % where)
            if not (sc.get("runAsNonRoot") or psc.get("runAsNonRoot")):
                self.bad(dep, "%s: runAsNonRoot is not set" % where)
            seccomp = sc.get("seccompProfile") or psc.get("seccompProfile") or {}
            if seccomp.get("type") != "RuntimeDefault":
                self.bad(dep, "%s: seccompProfile is not RuntimeDefault" % where)
        if any((c.get("command") or [""])[0] == EXECUTOR for c in pod["containers"]):
            self.check_injection(dep, pod)

    def check_injection(self, dep, pod):
        vols = {v["name"]: v for v in pod.get("volumes", [])}
        inits = [c for c in pod.get("initContainers", []) if c["name"] == "install-executor"]
        if not inits:
            self.bad(dep, "no install-executor init container")
            return
        init = inits[0]
        if init.get("command", [])[-2:] != ["--install", EXECUTOR]:
            self.bad(dep, "install-executor does not run --install %s: %s" % (EXECUTOR, init.get("command")))
        bin_vol = next((m["name"] for m in init.get("volumeMounts", []) if m["mountPath"] == "/pm"), None)
        if bin_vol is None or "emptyDir" not in vols.get(bin_vol, {}):
            self.bad(dep, "install-executor does not write into an emptyDir at /pm")
        pipe_vols = set()
        for c in pod["containers"]:
            where = "container %s" % c["name"]
            cmd = c.get("command") or []
            if not cmd or cmd[0] != EXECUTOR:
                self.bad(dep, "%s: command does not start with %s" % (where, EXECUTOR))
                continue
            if "--" not in cmd or cmd.index("--") == len(cmd) - 1:
                self.bad(dep, "%s: command has no '--' followed by the original command: %s" % (where, cmd))
            flags = cmd[1:cmd.index("--")] if "--" in cmd else cmd[1:]

            def flag(name):
                return flags[flags.index(name) + 1] if name in flags and flags.index(name) + 1 < len(flags) else None
            if flag("--name") != c["name"]:
                self.bad(dep, "%s: --name is %r, not the container name" % (where, flag("--name")))
            listen = flag("--listen") or ""
            port = int(listen.rsplit(":", 1)[1]) if listen.rsplit(":", 1)[-1].isdigit() else None
            ports = [p["containerPort"] for p in c.get("ports", [])]
            if port is None or port not in ports:
                self.bad(dep, "%s: --listen %r is not on one of its ports %s" % (where, listen, ports))
            rp = c.get("readinessProbe", {})
            probe_port = (rp.get("grpc") or rp.get("tcpSocket") or {}).get("port")
            if probe_port != port:
                self.bad(dep, "%s: readiness probe port %s is not the executor port %s" % (where, probe_port, port))
            if not ({"--token-file", "--tls-cert", "--insecure"} & set(flags)):
                self.bad(dep, "%s: listens off loopback without --token-file, --tls-cert or --insecure" % where)
            for f in ("--token-file", "--tls-cert", "--tls-key"):
                path = flag(f)
                if f in flags and not any(path and path.startswith(m["mountPath"].rstrip("/") + "/")
                                          for m in c.get("volumeMounts", [])):
                    self.bad(dep, "%s: %s %s is on no mounted volume" % (where, f, path))
            mounts = {m["mountPath"]: m["name"] for m in c.get("volumeMounts", [])}
            if mounts.get("/pm") != bin_vol:
                self.bad(dep, "%s: does not mount the executor volume at /pm" % where)
            if "/mnt/pipe" not in mounts:
                self.bad(dep, "%s: does not mount /mnt/pipe" % where)
            else:
                pipe_vols.add(mounts["/mnt/pipe"])
        if len(pipe_vols) > 1:
            self.bad(dep, "containers mount different volumes at /mnt/pipe: %s" % sorted(pipe_vols))
        for v in pipe_vols:
            if "emptyDir" not in vols.get(v, {}):
                self.bad(dep, "/mnt/pipe volume %s is not an emptyDir" % v)

    def check_secret_refs(self):
        """Keys taken from a rendered Secret exist in it; with --require-secrets (no
        existingSecret in the values) every referenced Secret must be rendered."""
        secrets = {s["metadata"]["name"]: s for s in self.of_kind("Secret")}
        for dep in self.of_kind("Deployment"):
            refs = []
            for v in dep["spec"]["template"]["spec"].get("volumes", []):
                if "secret" in v:
                    refs.append((v["secret"]["secretName"], v["secret"].get("items", [])))
                for src in v.get("projected", {}).get("sources", []):
                    if "secret" in src:
                        refs.append((src["secret"]["name"], src["secret"].get("items", [])))
            for name, items in refs:
                s = secrets.get(name)
                if s is None:
                    if self.require_secrets:
                        self.bad(dep, "uses Secret %s, which is not rendered" % name)
                    continue
                keys = set(s.get("data", {})) | set(s.get("stringData", {}))
                for it in items:
                    if it["key"] not in keys:
                        self.bad(dep, "uses key %s of Secret %s, which has only %s" % (it["key"], name, sorted(keys)))

    # -- services, policies, autoscaling, ingress

    def pods_matching(self, selector):
        return [d for d in self.of_kind("Deployment")
                if selector and all(d["spec"]["template"]["metadata"].get("labels", {}).get(k) == v
                                    for k, v in selector.items())]

    def container_ports(self, dep):
        return {p["containerPort"]: p.get("name") for c in dep["spec"]["template"]["spec"]["containers"]
                for p in c.get("ports", [])}

    def check_services(self):
        for svc in self.of_kind("Service"):
            deps = self.pods_matching(svc["spec"].get("selector"))
            if not deps:
                self.bad(svc, "selector matches no rendered pod template")
                continue
            ports = {}
            for d in deps:
                ports.update(self.container_ports(d))
            for p in svc["spec"].get("ports", []):
                t = p.get("targetPort", p["port"])
                if t not in ports and t not in ports.values():
                    self.bad(svc, "targetPort %s is not a port of the pods" % t)

    def check_network_policies(self):
        for np in self.of_kind("NetworkPolicy"):
            deps = self.pods_matching(np["spec"]["podSelector"].get("matchLabels"))
            if not deps:
                self.bad(np, "podSelector matches no rendered pod template")
                continue
            allowed = {p["port"] for r in np["spec"].get("ingress", []) for p in r.get("ports", [])}
            executor_ports = {p for d in deps for p in self.container_ports(d)}
            if allowed != executor_ports:
                self.bad(np, "ingress ports %s are not the executor ports %s" % (sorted(allowed), sorted(executor_ports)))
            schedulers = [d for d in self.of_kind("Deployment")
                          if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "scheduler"]
            peers = [p.get("podSelector", {}).get("matchLabels") for r in np["spec"].get("ingress", [])
                     for p in r.get("from", [])]
            for s in schedulers:
                if not any(sel and self.pods_matching(sel) and s in self.pods_matching(sel) for sel in peers):
                    self.bad(np, "the scheduler's pods are not allowed in")

    def check_workers_config(self):
        for cm in self.of_kind("ConfigMap"):
            if "workers.json" not in cm.get("data", {}):
                continue
            try:
                cfg = json.loads(cm["data"]["workers.json"])
            except ValueError as e:
                self.bad(cm, "workers.json is not JSON: %s" % e)
                continue
            workers = [d for d in self.of_kind("Deployment")
                       if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component") == "worker"]
            for pool in cfg.get("pools", []):
                dns = pool.get("dns", "")
                svcs = [s for s in self.of_kind("Service")
                        if dns == "%s.%s.svc.cluster.local" % (s["metadata"]["name"], self.ns)]
                if not svcs:
                    self.bad(cm, "pool %s: dns %r is no rendered Service's name in namespace %s" % (pool.get("name"), dns, self.ns))
                elif svcs[0]["spec"].get("clusterIP") != "None":
                    self.bad(cm, "pool %s: Service %s is not headless" % (pool.get("name"), svcs[0]["metadata"]["name"]))
                if not isinstance(pool.get("slots", 1), int) or pool.get("slots", 1) < 1:
                    self.bad(cm, "pool %s: slots %r" % (pool.get("name"), pool.get("slots")))
                want = {}
                for d in workers:
                    for c in d["spec"]["template"]["spec"]["containers"]:
                        for p in c.get("ports", []):
                            want[c["name"]] = p["containerPort"]
                if pool.get("executors") != want:
                    self.bad(cm, "pool %s: executors %s are not the worker containers' ports %s"
                             % (pool.get("name"), pool.get("executors"), want))

    def check_hpa(self):
        for hpa in self.of_kind("HorizontalPodAutoscaler"):
            ref = hpa["spec"]["scaleTargetRef"]
            deps = [d for d in self.of_kind("Deployment") if d["metadata"]["name"] == ref["name"]]
            if ref["kind"] != "Deployment" or not deps:
                self.bad(hpa, "scaleTargetRef %s/%s is not a rendered Deployment" % (ref["kind"], ref["name"]))
            elif "replicas" in deps[0]["spec"]:
                self.bad(hpa, "the Deployment it scales also sets replicas (they would fight)")
            if hpa["spec"].get("minReplicas", 1) > hpa["spec"]["maxReplicas"]:
                self.bad(hpa, "minReplicas is above maxReplicas")
            if not hpa["spec"].get("metrics"):
                self.bad(hpa, "no metrics")

    def check_ingress(self):
        svcs = {s["metadata"]["name"]: s for s in self.of_kind("Service")}
        for ing in self.of_kind("Ingress"):
            for rule in ing["spec"].get("rules", []):
                for p in rule["http"]["paths"]:
                    b = p["backend"]["service"]
                    s = svcs.get(b["name"])
                    if s is None:
                        self.bad(ing, "backend Service %s is not rendered" % b["name"])
                    elif b["port"].get("number") not in [sp["port"] for sp in s["spec"]["ports"]]:
                        self.bad(ing, "backend port %s is not a port of Service %s" % (b["port"], b["name"]))


def check_manifests(path, namespace, require_secrets):
    text = sys.stdin.read() if path in (None, "-") else open(path).read()
    try:
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as e:
        print("manifests are not YAML: %s" % e)
        return 1
    if not docs:
        print("no manifests")
        return 1
    c = Checker(docs, namespace, require_secrets)
    c.run()
    for p in c.problems:
        print(p)
    if c.problems:
        return 1
    kinds = {}
    for d in docs:
        kinds[d["kind"]] = kinds.get(d["kind"], 0) + 1
    print("ok: %d objects (%s)" % (len(docs), ", ".join("%s %d" % kv for kv in sorted(kinds.items()))))
    return 0


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    v = sub.add_parser("values")
    v.add_argument("dump")
    m = sub.add_parser("manifests")
    m.add_argument("file", nargs="?")
    m.add_argument("--namespace", default="default")
    m.add_argument("--require-secrets", action="store_true",
                   help="every Secret a pod uses must be rendered (no existingSecret)")
    a = ap.parse_args()
    if a.cmd == "values":
        return check_values(a.dump)
    return check_manifests(a.file, a.namespace, a.require_secrets)


if __name__ == "__main__":
    sys.exit(main())
