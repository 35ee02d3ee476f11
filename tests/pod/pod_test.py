#!/usr/bin/python3
"""The worker pod the chart renders, run for real as OCI containers with runc, the way a kubelet
would: one network namespace for the pod, a host directory per volume, the init container first,
then the app containers with exactly the command and args the chart rendered, under the rendered
securityContext. A three-step pipeline then runs across the three containers, once straight from
pmctl (direct mode) and once through the scheduler pod the chart renders (its image, its workers
ConfigMap, its Secrets), passing files through /mnt/pipe; each step prints /marker, a file only its
own container's root filesystem holds. Last the pod is stopped with SIGTERM to every container:
each executor (PID 1) forwards it to its app, lets a running step finish, and exits with the app's
status within the grace period.

Needs root, runc, ip (iproute2), umoci, skopeo and busybox-static; without them it fails, it does
not skip. Run by hand: tests/pod/pod_test.py --bin-dir "$(bazel info -c opt bazel-bin)" (binaries
from there, scripts and chart from the source tree); PM_POD_KEEP=1 keeps the temporary directory.
"""

import base64
import gzip
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import yaml

GRACE_LIMIT_S = 10.0  # every container must be gone this soon after SIGTERM
# What each app command exits with after SIGTERM (values.yaml): sleep dies of the signal
# (128+15), the transform container's shell traps it and exits 0. The executor passes it on.
EXPECTED_EXIT = {"fetch": 143, "transform": 0, "upload": 143}
# Programs linked to busybox in every app container's root filesystem.
BUSYBOX_APPLETS = ["sh", "cat", "ls", "sleep", "tr", "sort", "gzip", "wget", "printf", "echo",
                   "rm", "mkdir", "id", "env", "true", "false", "test", "[", "head", "tail", "wc",
                   "grep", "touch"]
# containerd's default capability set, before the securityContext drops or adds.
DEFAULT_CAPS = ["CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
                "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
                "CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE"]
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
IMAGE_TAG = "pod-test"


class TestFailure(Exception):
    pass


def fail(msg):
    raise TestFailure(msg)


def log(msg):
    print(f"[{time.monotonic() - T0:6.2f}s] {msg}", flush=True)


def run(argv, timeout=60, check=True, **kw):
    """Runs argv, returns the CompletedProcess; a nonzero exit fails the test naming the command."""
    try:
        p = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=timeout,
                           **kw)
    except subprocess.TimeoutExpired:
        fail(f"{' '.join(argv)}: no answer within {timeout} s")
    if check and p.returncode != 0:
        fail(f"{' '.join(argv)} exited {p.returncode}:\n{p.stdout.decode(errors='replace')}"
             f"{p.stderr.decode(errors='replace')}")
    return p


# ---- where things are ----

def locate(args):
    """Paths of the binaries, scripts, chart and test files: the Bazel runfiles tree, or with
    --bin-dir the source tree plus binaries from a bazel-bin directory."""
    here = os.path.dirname(os.path.abspath(__file__))
    if os.environ.get("TEST_SRCDIR"):
        root = os.path.join(os.environ["TEST_SRCDIR"], os.environ.get("TEST_WORKSPACE", "pm"))
        bins = root
    else:
        root = os.path.dirname(os.path.dirname(here))
        if not args.bin_dir:
            fail("outside bazel test, give --bin-dir (e.g. $(bazel info -c opt bazel-bin))")
        bins = args.bin_dir
    p = {
        "root": root,
        "bins": bins,
        "executor": os.path.join(bins, "executor/pm-executor-static"),
        "scheduler": os.path.join(bins, "scheduler/pm-scheduler-static"),
        "pmctl": os.path.join(bins, "cli/pmctl"),
        "build_images": os.path.join(root, "scripts/build-images.sh"),
        "render": os.path.join(root, "tests/helm/render.sh"),
        "chart": os.path.join(root, "charts/executor-sidecar"),
        "values": os.path.join(root, "tests/pod/values.yaml"),
        "pipeline": os.path.join(root, "tests/pod/pipeline.json"),
        "seccomp": os.path.join(root, "sandbox/oci/testdata/docker-default.json"),
    }
    if args.render:
        p["render"] = os.path.abspath(args.render)
    for k, v in p.items():
        if not os.path.exists(v):
            fail(f"missing {k}: {v}")
    return p


def preflight():
    if os.geteuid() != 0:
        fail("the pod test needs root (runc, ip netns, bind mounts); run bazel test as root")
    for tool in ["runc", "ip", "umoci", "skopeo"]:
        if not shutil.which(tool):
            fail(f"{tool} not found (Debian packages runc, iproute2, umoci, skopeo: scripts/setup.sh)")
    if not os.path.exists("/bin/busybox"):
        fail("/bin/busybox not found (Debian package busybox-static)")
    out = run(["file", "-L", "/bin/busybox"], check=False).stdout.decode() if shutil.which(
        "file") else "statically linked"
    if "statically linked" not in out and "static-pie" not in out:
        fail(f"/bin/busybox is not static ({out.strip()}); install busybox-static")


# ---- the rendered manifests ----

def render(paths, outdir):
    env = dict(os.environ)
    env.setdefault("HOME", outdir)
    p = run([paths["render"], paths["chart"], "-f", paths["values"]], timeout=180, env=env)
    text = p.stdout.decode()
    with open(os.path.join(outdir, "rendered.yaml"), "w") as f:
        f.write(text)
    docs = [d for d in yaml.safe_load_all(text) if d]
    if not docs:
        fail("render.sh printed no manifests")
    return docs


def find_deployment(docs, component):
    found = [d for d in docs if d.get("kind") == "Deployment" and
             d["metadata"].get("labels", {}).get("app.kubernetes.io/component") == component]
    if len(found) != 1:
        names = [(d.get("kind"), d.get("metadata", {}).get("name")) for d in docs]
        fail(f"expected one Deployment with app.kubernetes.io/component={component}, found "
             f"{len(found)} among {names}")
    return found[0]


def objects_by_kind(docs, kind):
    return {d["metadata"]["name"]: d for d in docs if d.get("kind") == kind}


# ---- root filesystems ----

def app_rootfs(path, name):
    """A tiny image for one app container: busybox-static, its applets, and /marker."""
    for d in ["bin", "etc", "tmp", "mnt/pipe", "pm"]:
        os.makedirs(os.path.join(path, d), exist_ok=True)
    shutil.copy2("/bin/busybox", os.path.join(path, "bin/busybox"))
    for a in BUSYBOX_APPLETS:
        os.symlink("busybox", os.path.join(path, "bin", a))
    os.makedirs(os.path.join(path, "usr"), exist_ok=True)
    os.symlink("../bin", os.path.join(path, "usr/bin"))
    with open(os.path.join(path, "etc/passwd"), "w") as f:
        f.write("root:x:0:0:root:/:/bin/sh\nnonroot:x:65532:65532:nonroot:/:/bin/sh\n")
    with open(os.path.join(path, "etc/group"), "w") as f:
        f.write("root:x:0:\nnonroot:x:65532:\n")
    with open(os.path.join(path, "marker"), "w") as f:
        f.write(name + "\n")
    os.chmod(os.path.join(path, "tmp"), 0o1777)
    return {"config": {"Env": [f"PATH={DEFAULT_PATH}"]}}


def unpack_image(layout, dest):
    """The image's root filesystem (umoci unpack) and its config (skopeo inspect --config)."""
    run(["umoci", "unpack", "--image", f"{layout}:{IMAGE_TAG}", dest])
    cfg = json.loads(run(["skopeo", "inspect", "--config", f"oci:{layout}:{IMAGE_TAG}"]).stdout)
    return os.path.join(dest, "rootfs"), cfg


# ---- volumes, as a kubelet makes them ----

def write_files(dirpath, files, mode, fs_group):
    os.makedirs(dirpath, exist_ok=True)
    os.chmod(dirpath, 0o755)
    for rel, data in files.items():
        full = os.path.join(dirpath, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "wb") as f:
            f.write(data)
        os.chmod(full, mode)
        if fs_group is not None:
            os.chown(full, 0, fs_group)


def source_files(kind, ref, objects, pod_name):
    """The files a secret/configMap volume source (or projected source) yields."""
    name = ref.get("secretName") if kind == "secret" and "secretName" in ref else ref.get("name")
    objs = objects["Secret" if kind == "secret" else "ConfigMap"]
    if name not in objs:
        if ref.get("optional"):
            return {}
        fail(f"pod {pod_name}: volume needs {kind} {name!r}, which the chart did not render "
             f"(rendered: {sorted(objs)})")
    obj = objs[name]
    data = {}
    for k, v in (obj.get("data") or {}).items():
        data[k] = base64.b64decode(v) if kind == "secret" else v.encode()
    for k, v in (obj.get("stringData") or {}).items():
        data[k] = v.encode()
    if kind == "configMap":
        for k, v in (obj.get("binaryData") or {}).items():
            data[k] = base64.b64decode(v)
    items = ref.get("items")
    if not items:
        return {k: (v, None) for k, v in data.items()}
    out = {}
    for it in items:
        if it["key"] not in data:
            fail(f"pod {pod_name}: {kind} {name!r} has no key {it['key']!r}")
        out[it["path"]] = (data[it["key"]], it.get("mode"))
    return out


def make_volumes(pod_name, spec, objects, base):
    fs_group = (spec.get("securityContext") or {}).get("fsGroup")
    vols = {}
    for v in spec.get("volumes") or []:
        path = os.path.join(base, "volumes", pod_name, v["name"])
        if "emptyDir" in v:
            os.makedirs(path)
            os.chmod(path, 0o777)  # what the kubelet gives an emptyDir
        elif "persistentVolumeClaim" in v:
            os.makedirs(path)
            if fs_group is not None:  # the kubelet's fsGroup ownership change
                os.chown(path, 0, fs_group)
                os.chmod(path, 0o2775)
        elif "secret" in v or "configMap" in v:
            kind = "secret" if "secret" in v else "configMap"
            ref = v[kind]
            mode = ref.get("defaultMode", 0o644)
            files = source_files(kind, ref, objects, pod_name)
            write_files(path, {k: d for k, (d, _) in files.items()}, mode, fs_group)
            for k, (_, m) in files.items():
                if m is not None:
                    os.chmod(os.path.join(path, k), m)
        elif "projected" in v:
            mode = v["projected"].get("defaultMode", 0o644)
            files = {}
            for src in v["projected"].get("sources") or []:
                for kind in ("secret", "configMap"):
                    if kind in src:
                        files.update(source_files(kind, src[kind], objects, pod_name))
                if not any(k in src for k in ("secret", "configMap")):
                    fail(f"pod {pod_name}: projected source {list(src)} not supported by this test")
            write_files(path, {k: d for k, (d, _) in files.items()}, mode, fs_group)
            for k, (_, m) in files.items():
                if m is not None:
                    os.chmod(os.path.join(path, k), m)
        else:
            fail(f"pod {pod_name}: volume {v['name']!r} of type {sorted(set(v) - {'name'})} "
                 "is not supported by this test")
        vols[v["name"]] = path
    return vols


# ---- one container's OCI runtime config ----

def quantity_bytes(q):
    q = str(q)
    units = {"Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40,
             "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    for u, m in units.items():
        if q.endswith(u):
            return int(float(q[:-len(u)]) * m)
    return int(q)


def seccomp_runtime_default(path, caps):
    """The project's Docker-format default profile as an OCI linux.seccomp for amd64, filtered by
    the container's capabilities the way Docker and containerd do for RuntimeDefault."""
    prof = json.load(open(path))
    arches = []
    for a in prof.get("archMap", []):
        if a["architecture"] == "SCMP_ARCH_X86_64":
            arches = [a["architecture"]] + a.get("subArchitectures", [])
    out = {"defaultAction": prof["defaultAction"], "architectures": arches, "syscalls": []}
    if "defaultErrnoRet" in prof:
        out["defaultErrnoRet"] = prof["defaultErrnoRet"]
    for s in prof["syscalls"]:
        inc, exc = s.get("includes") or {}, s.get("excludes") or {}
        if inc.get("arches") and "amd64" not in inc["arches"]:
            continue
        if inc.get("caps") and not set(inc["caps"]) <= set(caps):
            continue
        if "amd64" in (exc.get("arches") or []) or set(exc.get("caps") or []) & set(caps):
            continue
        e = {"names": s["names"], "action": s["action"]}
        for k in ("args", "errnoRet"):
            if k in s:
                e[k] = s[k]
        out["syscalls"].append(e)
    return out


def container_config(ctx, pod, c, rootfs, image_cfg, bundle):
    """Writes bundle/config.json for container c of the pod: runc spec, then the pod spec."""
    os.makedirs(bundle)
    run(["runc", "spec", "--bundle", bundle])
    cfgpath = os.path.join(bundle, "config.json")
    cfg = json.load(open(cfgpath))
    spec = pod["spec"]
    icfg = image_cfg.get("config") or {}
    psc = spec.get("securityContext") or {}
    csc = c.get("securityContext") or {}

    # Kubernetes' rules: command replaces the image's entrypoint, args its cmd.
    if c.get("command"):
        args = list(c["command"]) + list(c.get("args") or [])
    else:
        args = list(icfg.get("Entrypoint") or []) + list(
            c.get("args") if c.get("args") is not None else (icfg.get("Cmd") or []))
    if not args:
        fail(f"container {c['name']}: neither the pod nor the image gives a command")
    env = {}
    for e in icfg.get("Env") or []:
        k, _, v = e.partition("=")
        env[k] = v
    env["HOSTNAME"] = pod["name"]
    for e in c.get("env") or []:
        if "value" in e or not e.get("valueFrom"):
            env[e["name"]] = str(e.get("value", ""))
        elif "fieldRef" in e["valueFrom"]:
            field = e["valueFrom"]["fieldRef"]["fieldPath"]
            known = {"metadata.name": pod["name"], "metadata.namespace": "default",
                     "status.podIP": "127.0.0.1", "spec.nodeName": "pod-test-node"}
            if field not in known:
                fail(f"container {c['name']}: env {e['name']} from fieldRef {field} not supported")
            env[e["name"]] = known[field]
        else:
            fail(f"container {c['name']}: env {e['name']} valueFrom {list(e['valueFrom'])} "
                 "not supported by this test")
    env.setdefault("PATH", DEFAULT_PATH)

    def pick(key, default=None):
        return csc.get(key, psc.get(key, default))

    image_user = (icfg.get("User") or "0").split(":")
    uid = pick("runAsUser", int(image_user[0]) if image_user[0].isdigit() else None)
    gid = pick("runAsGroup", int(image_user[1]) if len(image_user) > 1 else None)
    if uid is None:
        fail(f"container {c['name']}: image user {icfg.get('User')!r} is not numeric")
    if gid is None:
        gid = 0
    if pick("runAsNonRoot") and uid == 0:
        fail(f"container {c['name']}: runAsNonRoot but it would run as uid 0 (the kubelet refuses)")
    groups = list(psc.get("supplementalGroups") or [])
    if psc.get("fsGroup") is not None:
        groups.append(psc["fsGroup"])

    caps_sc = csc.get("capabilities") or {}
    drop = set("CAP_" + x.upper() if not x.upper().startswith("CAP_") else x.upper()
               for x in caps_sc.get("drop") or [])
    add = ["CAP_" + x.upper() if not x.upper().startswith("CAP_") else x.upper()
           for x in caps_sc.get("add") or []]
    caps = [] if "CAP_ALL" in drop else [x for x in DEFAULT_CAPS if x not in drop]
    caps += [x for x in add if x not in caps]
    if csc.get("privileged"):
        fail(f"container {c['name']}: privileged containers are not expected from this chart")

    proc = cfg["process"]
    proc["terminal"] = False
    proc["args"] = args
    proc["env"] = [f"{k}={v}" for k, v in env.items()]
    proc["cwd"] = c.get("workingDir") or icfg.get("WorkingDir") or "/"
    proc["user"] = {"uid": uid, "gid": gid}
    if groups:
        proc["user"]["additionalGids"] = groups
    proc["capabilities"] = {"bounding": caps, "effective": caps, "permitted": caps,
                            "inheritable": [], "ambient": []}
    # Kubernetes' default for allowPrivilegeEscalation is true (no no_new_privs).
    proc["noNewPrivileges"] = csc.get("allowPrivilegeEscalation", True) is False
    # No rlimits of our own: the container inherits runc's (as under containerd's CRI).
    proc.pop("rlimits", None)

    cfg["root"] = {"path": os.path.abspath(rootfs), "readonly": bool(csc.get("readOnlyRootFilesystem"))}
    cfg["hostname"] = pod["name"]

    mounts = cfg["mounts"]
    mounts.append({"destination": "/etc/hosts", "type": "bind", "source": pod["hosts"],
                   "options": ["rbind", "rprivate", "ro"]})
    for m in c.get("volumeMounts") or []:
        if m["name"] not in pod["volumes"]:
            fail(f"container {c['name']}: volumeMount {m['name']!r} names no volume of the pod")
        src = pod["volumes"][m["name"]]
        if m.get("subPath"):
            src = os.path.join(src, m["subPath"])
        opts = ["rbind", "rprivate"] + (["ro"] if m.get("readOnly") else [])
        mounts.append({"destination": m["mountPath"], "type": "bind", "source": src,
                       "options": opts})

    lin = cfg["linux"]
    lin["namespaces"] = [{"type": "network", "path": ctx["netns_path"]},
                         {"type": "pid"}, {"type": "ipc"}, {"type": "uts"}, {"type": "mount"}]
    # Flat, so runc delete removes the whole path again.
    lin["cgroupsPath"] = f"/{ctx['netns']}-{pod['name']}-{c['name']}"
    limits = (c.get("resources") or {}).get("limits") or {}
    res = lin.setdefault("resources", {})
    if "memory" in limits:
        res["memory"] = {"limit": quantity_bytes(limits["memory"])}
    sp = csc.get("seccompProfile") or psc.get("seccompProfile") or {}
    if sp.get("type") == "RuntimeDefault":
        lin["seccomp"] = seccomp_runtime_default(ctx["paths"]["seccomp"], caps)
    elif sp.get("type") not in (None, "Unconfined"):
        fail(f"container {c['name']}: seccompProfile {sp} not supported by this test")

    with open(cfgpath, "w") as f:
        json.dump(cfg, f, indent=1)
    return {"name": c["name"], "bundle": bundle, "args": args, "uid": uid}


# ---- the pod ----

class Runner:
    """Every runc container and helper process the test starts, so cleanup can find them."""

    def __init__(self, base):
        self.state = os.path.join(base, "runc")
        os.makedirs(self.state)
        self.ids = []
        self.procs = {}
        self.logs = {}

    def runc(self, *args, timeout=30, check=True):
        return run(["runc", "--root", self.state] + list(args), timeout=timeout, check=check)

    def start(self, cid, bundle, logpath):
        """runc run in the foreground of a child process: its exit status is the container's."""
        self.ids.append(cid)
        self.logs[cid] = logpath
        logf = open(logpath, "wb")
        self.procs[cid] = subprocess.Popen(
            ["runc", "--root", self.state, "run", "--bundle", bundle, cid],
            stdin=subprocess.DEVNULL, stdout=logf, stderr=subprocess.STDOUT)
        logf.close()
        return self.procs[cid]

    def log_tail(self, cid, n=40):
        try:
            with open(self.logs[cid], "rb") as f:
                lines = f.read().decode(errors="replace").splitlines()
            return "\n".join(lines[-n:])
        except OSError as e:
            return f"(no log: {e})"

    def cleanup(self):
        for cid in self.ids:
            run(["runc", "--root", self.state, "delete", "--force", cid], check=False, timeout=20)
        for p in self.procs.values():
            if p.poll() is None:
                p.kill()
                try:
                    p.wait(5)
                except subprocess.TimeoutExpired:
                    pass


def prepare_pod(ctx, name, deployment, objects, images, extra_hosts=()):
    """Volumes, /etc/hosts and one bundle per container (init containers first)."""
    base = ctx["base"]
    spec = deployment["spec"]["template"]["spec"]
    pod = {"name": name, "spec": spec}
    pod["volumes"] = make_volumes(name, spec, objects, base)
    pod["hosts"] = os.path.join(base, f"{name}.hosts")
    with open(pod["hosts"], "w") as f:
        f.write(f"127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost\n127.0.0.1\t{name}\n")
        for h in extra_hosts:
            f.write(f"127.0.0.1\t{h}\n")
    os.chmod(pod["hosts"], 0o644)
    pod["init"], pod["containers"] = [], []
    for key, dest in (("initContainers", pod["init"]), ("containers", pod["containers"])):
        for c in spec.get(key) or []:
            image = c.get("image", "")
            if image not in images:
                fail(f"pod {name}: container {c['name']} wants image {image!r}; this test has "
                     f"{sorted(images)}")
            rootfs, icfg = images[image](c["name"])
            bundle = os.path.join(base, "bundles", f"{name}-{c['name']}")
            dest.append(container_config(ctx, pod, c, rootfs, icfg, bundle))
    return pod


def listen_port(cont):
    args = cont["args"]
    for i, a in enumerate(args):
        if a == "--":
            break
        if a == "--listen" and i + 1 < len(args):
            return int(args[i + 1].rsplit(":", 1)[1])
        if a.startswith("--listen="):
            return int(a.rsplit(":", 1)[1])
    fail(f"container {cont['name']}: no --listen in its rendered command {args}")


def netns_cmd(ctx, argv):
    return ["ip", "netns", "exec", ctx["netns"]] + argv


def wait_serving(ctx, runner, cid, port, timeout=20.0):
    deadline = time.monotonic() + timeout
    while True:
        p = runner.procs[cid]
        if p.poll() is not None:
            fail(f"container {cid} exited ({p.returncode}) before serving:\n{runner.log_tail(cid)}")
        r = run(netns_cmd(ctx, [ctx["paths"]["pmctl"], "health", "--target",
                                f"127.0.0.1:{port}", "--deadline-ms", "1000"]),
                check=False, timeout=10)
        if r.returncode == 0 and b"SERVING" in r.stdout:
            return
        if time.monotonic() > deadline:
            fail(f"container {cid}: 127.0.0.1:{port} not SERVING after {timeout:.0f} s "
                 f"({r.stdout.decode().strip()} {r.stderr.decode().strip()}):\n"
                 f"{runner.log_tail(cid)}")
        time.sleep(0.1)


def step_outputs(json_lines):
    """stdout of each step, from pmctl run --output json."""
    out = {}
    for line in json_lines.splitlines():
        if not line.strip():
            continue
        ev = json.loads(line)
        if ev.get("event") == "stdout":
            out.setdefault(ev["step"], b"")
            out[ev["step"]] += base64.b64decode(ev.get("data_base64", ""))
    return out


def check_pipeline_output(mode, steps, pipe_dir, run_id):
    """Each step's stdout begins with its own container's marker; the last one is the result."""
    want = "APPLE\nFIG\nKIWI\nPEAR\n"
    names = ["fetch", "transform", "upload"]
    if len(steps) != 3:
        fail(f"{mode}: stdout came from steps {sorted(steps)}, want three steps")
    ordered = [steps[k] for k in sorted(steps)]
    for i, name in enumerate(names):
        got = ordered[i].decode(errors="replace")
        first = got.split("\n", 1)[0]
        if first != name:
            fail(f"{mode}: step {i + 1} should have run in container {name!r} (its /marker), "
                 f"but printed {first!r}; whole output {got!r}")
        if i == 2 and got.split("\n", 1)[1] != want:
            fail(f"{mode}: the pipeline's result is {got.split(chr(10), 1)[1]!r}, want {want!r}")
    gz = os.path.join(pipe_dir, f"{run_id}.gz")
    try:
        data = gzip.open(gz).read().decode()
    except OSError as e:
        fail(f"{mode}: {gz} (the shared /mnt/pipe seen from the host): {e}")
    if data != want:
        fail(f"{mode}: {gz} holds {data!r}, want {want!r}")
    st = os.stat(gz)
    if st.st_uid != 65532:
        fail(f"{mode}: {gz} is owned by uid {st.st_uid}; the steps should run as 65532")


def main():
    import argparse
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin-dir", help="bazel-bin directory (outside bazel test)")
    ap.add_argument("--render", help="the chart renderer (default tests/helm/render.sh)")
    args = ap.parse_args()

    preflight()
    paths = locate(args)
    parent = os.environ.get("TEST_TMPDIR") or tempfile.gettempdir()
    base = tempfile.mkdtemp(prefix="pm-pod-", dir=parent)
    outputs = os.environ.get("TEST_UNDECLARED_OUTPUTS_DIR") or base
    ctx = {"paths": paths, "base": base, "id": secrets.token_hex(4)}
    ctx["netns"] = "pm-pod-" + ctx["id"]
    ctx["netns_path"] = f"/var/run/netns/{ctx['netns']}"
    runner = Runner(base)
    netns_made = False
    helpers = []

    def on_term(signum, frame):
        raise TestFailure(f"killed by signal {signum} (bazel's timeout?)")
    signal.signal(signal.SIGTERM, on_term)

    try:
        log(f"working in {base}, network namespace {ctx['netns']}")
        docs = render(paths, base)
        worker = find_deployment(docs, "worker")
        sched = find_deployment(docs, "scheduler")
        objects = {"Secret": objects_by_kind(docs, "Secret"),
                   "ConfigMap": objects_by_kind(docs, "ConfigMap")}
        log(f"rendered {len(docs)} manifests: worker {worker['metadata']['name']}, "
            f"scheduler {sched['metadata']['name']}")

        # Images: the real executor and scheduler images, built as OCI layouts by the script.
        imgdir = os.path.join(base, "images")
        run([paths["build_images"], "--bin-dir", paths["bins"], "--tag", IMAGE_TAG, imgdir],
            timeout=120)
        unpacked = {}

        def from_layout(name):
            def get(_cname):
                if name not in unpacked:
                    unpacked[name] = unpack_image(os.path.join(imgdir, name),
                                                  os.path.join(base, "unpacked", name))
                return unpacked[name]
            return get

        def app_image(cname):
            path = os.path.join(base, "rootfs", cname)
            return path, app_rootfs(path, cname)

        images = {f"localhost/pm-executor:{IMAGE_TAG}": from_layout("pm-executor"),
                  f"localhost/pm-scheduler:{IMAGE_TAG}": from_layout("pm-scheduler")}
        for c in worker["spec"]["template"]["spec"]["containers"]:
            images[c["image"]] = app_image if c["image"].startswith("localhost/pod-test/") else None
        images = {k: v for k, v in images.items() if v}

        # The pod's network namespace: loopback only, shared by every container.
        run(["ip", "netns", "add", ctx["netns"]])
        netns_made = True
        run(["ip", "netns", "exec", ctx["netns"], "ip", "link", "set", "lo", "up"])

        t = time.monotonic()
        wpod = prepare_pod(ctx, "worker-0", worker, objects, images)
        names = [c["name"] for c in wpod["containers"]]
        if names != ["fetch", "transform", "upload"]:
            fail(f"worker pod containers are {names}, want fetch, transform, upload (values.yaml)")
        if not wpod["init"]:
            fail("the worker pod has no init container (install-executor)")

        # Init containers, in order, each to completion.
        for c in wpod["init"]:
            cid = f"{ctx['netns']}-init-{c['name']}"
            p = runner.start(cid, c["bundle"], os.path.join(outputs, f"{c['name']}.log"))
            try:
                rc = p.wait(30)
            except subprocess.TimeoutExpired:
                fail(f"init container {c['name']} did not finish in 30 s:\n{runner.log_tail(cid)}")
            if rc != 0:
                fail(f"init container {c['name']} ({' '.join(c['args'])}) exited {rc}:\n"
                     f"{runner.log_tail(cid)}")
            runner.runc("delete", "--force", cid, check=False)  # runc run already did
        installed = [os.path.join(v, "pm-executor") for v in wpod["volumes"].values()
                     if os.path.exists(os.path.join(v, "pm-executor"))]
        if len(installed) != 1:
            fail(f"after the init container, expected pm-executor in one emptyDir, found {installed}")
        with open(installed[0], "rb") as a, open(paths["executor"], "rb") as b:
            if a.read() != b.read():
                fail(f"{installed[0]} differs from the static pm-executor")
        if not os.stat(installed[0]).st_mode & stat.S_IXOTH:
            fail(f"{installed[0]} is not executable by others (mode "
                 f"{oct(os.stat(installed[0]).st_mode)})")
        log(f"init container done: {installed[0]}")

        # App containers, detached from us only in that runc runs them in the foreground of a
        # child process, whose exit status is the container's.
        ports = {}
        for c in wpod["containers"]:
            if c["args"][0] != "/pm/pm-executor" or "--" not in c["args"]:
                fail(f"container {c['name']}: the chart should wrap its command as "
                     f"/pm/pm-executor ... -- CMD, got {c['args']}")
            if c["uid"] != 65532:
                fail(f"container {c['name']} would run as uid {c['uid']}, want 65532")
            ports[c["name"]] = listen_port(c)
            runner.start(f"{ctx['netns']}-{c['name']}", c["bundle"],
                         os.path.join(outputs, f"{c['name']}.log"))
        for c in wpod["containers"]:
            wait_serving(ctx, runner, f"{ctx['netns']}-{c['name']}", ports[c["name"]])
        log(f"worker pod serving in {time.monotonic() - t:.2f} s: {ports}")

        # The executor token, as the Secret volume gave it to the containers.
        token_file = None
        for c in wpod["containers"]:
            a = c["args"]
            if "--token-file" in a[:a.index("--")]:
                rel = a[a.index("--token-file") + 1]
                for m in next(x for x in wpod["spec"]["containers"] if x["name"] == c["name"])[
                        "volumeMounts"]:
                    if rel.startswith(m["mountPath"].rstrip("/") + "/"):
                        token_file = os.path.join(wpod["volumes"][m["name"]],
                                                  rel[len(m["mountPath"].rstrip("/")) + 1:])
        if not token_file or not os.path.exists(token_file):
            fail(f"no executor token file found from the rendered --token-file ({token_file})")
        pipe_dir = None
        for m in wpod["spec"]["containers"][0]["volumeMounts"]:
            if m["mountPath"] == "/mnt/pipe":
                pipe_dir = wpod["volumes"][m["name"]]
        if not pipe_dir:
            fail("the fetch container has no /mnt/pipe mount")
        pmctl = paths["pmctl"]

        # The token is required: a call without it is refused.
        r = run(netns_cmd(ctx, [pmctl, "step", "--target", f"127.0.0.1:{ports['fetch']}",
                                "-c", "true"]), check=False)
        if r.returncode == 0 or b"UNAUTHENTICATED" not in r.stderr:
            fail(f"a step without the token should be UNAUTHENTICATED, got exit {r.returncode}: "
                 f"{r.stderr.decode(errors='replace')}")

        # What a step sees inside its container: the rendered securityContext, applied by the
        # runtime (user, no capabilities, no_new_privs, seccomp, read-only root) and kept by the
        # executor's own sandbox.
        r = run(netns_cmd(ctx, [pmctl, "step", "--target", f"127.0.0.1:{ports['fetch']}",
                                "--token-file", token_file, "-c", "id -u; id -g",
                                "-c", "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
                                "-c", "touch /written 2>/dev/null && echo writable || echo read-only",
                                "-c", "touch /mnt/pipe/w && echo pipe-writable"]), check=False)
        got = r.stdout.decode().split()
        want = ["65532", "65532", "CapEff:", "0000000000000000", "CapBnd:", "0000000000000000",
                "NoNewPrivs:", "1", "Seccomp:", "2", "read-only", "pipe-writable"]
        if r.returncode != 0 or got != want:
            fail(f"inside the fetch container a step sees {got} (exit {r.returncode}, "
                 f"{r.stderr.decode(errors='replace')!r}), want {want}")

        # Direct mode: pmctl runs the three steps itself.
        t = time.monotonic()
        execs = []
        for n, p in ports.items():
            execs += ["--executor", f"{n}=127.0.0.1:{p}"]
        r = run(netns_cmd(ctx, [pmctl, "run", paths["pipeline"], "--token-file", token_file,
                                "--id", "direct-1", "--output", "json"] + execs), check=False)
        if r.returncode != 0:
            fail(f"pmctl run exited {r.returncode}:\n{r.stdout.decode()}{r.stderr.decode()}")
        check_pipeline_output("pmctl run", step_outputs(r.stdout.decode()), pipe_dir, "direct-1")
        log(f"direct mode: three steps in three containers in {time.monotonic() - t:.2f} s")

        # The scheduler pod, as rendered, in the same network namespace; the workers' headless
        # Service name resolves to 127.0.0.1 through its /etc/hosts (the kubelet's file).
        t = time.monotonic()
        wcfg = None
        for cm in objects["ConfigMap"].values():
            if "workers.json" in (cm.get("data") or {}):
                wcfg = json.loads(cm["data"]["workers.json"])
        if not wcfg:
            fail("no ConfigMap with workers.json rendered for the scheduler")
        pools = wcfg.get("pools") or []
        want_execs = {n: p for n, p in ports.items()}
        if len(pools) != 1 or pools[0].get("executors") != want_execs:
            fail(f"the scheduler's workers config {wcfg} should map {want_execs}")
        dns = [p["dns"] for p in pools if p.get("dns")]
        spod = prepare_pod(ctx, "scheduler-0", sched, objects, images, extra_hosts=dns)
        if len(spod["containers"]) != 1:
            fail(f"scheduler pod has {len(spod['containers'])} containers, want 1")
        sc = spod["containers"][0]
        sport = listen_port(sc)
        scid = f"{ctx['netns']}-scheduler"
        runner.start(scid, sc["bundle"], os.path.join(outputs, "scheduler.log"))
        wait_serving(ctx, runner, scid, sport)
        api_token = None
        a = sc["args"]
        if "--token-file" in a:
            rel = a[a.index("--token-file") + 1]
            for m in sched["spec"]["template"]["spec"]["containers"][0]["volumeMounts"]:
                if rel.startswith(m["mountPath"].rstrip("/") + "/"):
                    api_token = os.path.join(spod["volumes"][m["name"]],
                                             rel[len(m["mountPath"].rstrip("/")) + 1:])
        auth = ["--token-file", api_token] if api_token else []
        log(f"scheduler pod serving on {sport} in {time.monotonic() - t:.2f} s")
        t = time.monotonic()
        r = run(netns_cmd(ctx, [pmctl, "submit", paths["pipeline"], "--watch", "--scheduler",
                                f"127.0.0.1:{sport}", "--deadline-ms", "60000",
                                "--output", "json"] + auth), check=False, timeout=90)
        if r.returncode != 0:
            fail(f"pmctl submit --watch exited {r.returncode}:\n{r.stdout.decode()}"
                 f"{r.stderr.decode()}\nscheduler log:\n{runner.log_tail(scid)}")
        with open(os.path.join(outputs, "scheduler-watch.jsonl"), "wb") as f:
            f.write(r.stdout)
        sched_steps, task_id = parse_watch(r.stdout.decode(), r.stderr.decode())
        check_pipeline_output("scheduler", sched_steps, pipe_dir, task_id)
        log(f"scheduler mode: task {task_id} done in {time.monotonic() - t:.2f} s")

        # A step still running when SIGTERM comes must be let finish (drain).
        drain = subprocess.Popen(
            netns_cmd(ctx, [pmctl, "step", "--target", f"127.0.0.1:{ports['upload']}",
                            "--token-file", token_file, "-c", "echo started; sleep 2; echo drained"]),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        helpers.append(drain)
        import select
        if not select.select([drain.stdout], [], [], 20)[0]:
            fail("the drain step printed nothing within 20 s")
        first = drain.stdout.readline()
        if first != b"started\n":
            fail(f"the drain step printed {first!r} first")

        # Stop the pods: SIGTERM to every container at once, as the kubelet does.
        t = time.monotonic()
        stop = [f"{ctx['netns']}-{c['name']}" for c in wpod["containers"]] + [scid]
        for cid in stop:
            runner.runc("kill", cid, "TERM")
        exits = {}
        for cid in stop:
            left = GRACE_LIMIT_S - (time.monotonic() - t)
            try:
                exits[cid] = (runner.procs[cid].wait(max(left, 0.01)), time.monotonic() - t)
            except subprocess.TimeoutExpired:
                fail(f"container {cid} still runs {GRACE_LIMIT_S:.0f} s after SIGTERM:\n"
                     f"{runner.log_tail(cid)}")
        out, err = drain.communicate(timeout=10)
        if drain.returncode != 0 or b"drained" not in out:
            fail(f"the step running at SIGTERM should finish (drain): exit {drain.returncode}, "
                 f"stdout {(first + out)!r}, stderr {err!r}")
        for c in wpod["containers"]:
            cid = f"{ctx['netns']}-{c['name']}"
            rc, when = exits[cid]
            if rc != EXPECTED_EXIT[c["name"]]:
                fail(f"container {c['name']} exited {rc} after SIGTERM, want "
                     f"{EXPECTED_EXIT[c['name']]} (the app's own status):\n{runner.log_tail(cid)}")
        if exits[scid][0] != 0:
            fail(f"the scheduler exited {exits[scid][0]} after SIGTERM:\n{runner.log_tail(scid)}")
        for cid in stop:
            st = runner.runc("state", cid, check=False)
            if st.returncode == 0 and json.loads(st.stdout).get("status") != "stopped":
                fail(f"runc state of {cid}: {st.stdout.decode()}")
        log("stopped: " + ", ".join(f"{cid.rsplit('-', 1)[1]} exit {rc} in {w:.2f} s"
                                    for cid, (rc, w) in exits.items()))
        if b"TERM received" not in open(runner.logs[f"{ctx['netns']}-transform"], "rb").read():
            fail("the transform app never saw SIGTERM (its trap prints 'TERM received')")
        print("PASS")
        return 0
    except TestFailure as e:
        print(f"FAIL: {e}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        for h in helpers:
            if h.poll() is None:
                h.kill()
                h.wait()
        runner.cleanup()
        if netns_made:
            run(["ip", "netns", "del", ctx["netns"]], check=False)
        if os.environ.get("PM_POD_KEEP"):
            print(f"kept {base}")
        else:
            shutil.rmtree(base, ignore_errors=True)


def parse_watch(stdout, stderr):
    """Task id and each step's stdout from pmctl submit --watch --output json: the Task first,
    then one line per event (output bytes base64 in output.data), then the end line."""
    lines = [json.loads(x) for x in stdout.splitlines() if x.strip()]
    if not lines or "id" not in lines[0]:
        fail(f"no task in pmctl submit --watch output:\n{stdout}\n{stderr}")
    task = lines[0]["id"]
    steps = {}
    workers = set()
    for ev in lines[1:]:
        if ev.get("event") == "stdout":
            o = ev["output"]
            steps.setdefault(o["step"], b"")
            steps[o["step"]] += base64.b64decode(o.get("data", ""))
        elif ev.get("event") == "step_started":
            workers.add(ev["step_started"]["worker"])
    end = lines[-1]
    if end.get("event") != "end" or end.get("state") != "SUCCEEDED":
        fail(f"task {task} did not end SUCCEEDED: {end}")
    if workers != {"127.0.0.1"}:
        fail(f"task {task} ran on workers {sorted(workers)}; the headless Service name should "
             "resolve to the pod (127.0.0.1)")
    return steps, str(task)


T0 = time.monotonic()

if __name__ == "__main__":
    try:
        sys.exit(main())
    except TestFailure as e:  # before the pod exists: missing root, tools or files
        print(f"FAIL: {e}", file=sys.stderr)
        sys.exit(1)
