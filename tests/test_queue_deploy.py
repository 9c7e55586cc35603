"""The queue's Kubernetes file (hub/kubernetes/grading-workers.yaml) and SLURM script
(hub/slurm/grading-worker.sbatch) say what the package reads: the environment names of
nopos/grading/distributed/settings.py, the worker's module and key layout, the
sandbox's privileges as grader.yaml states them, a grace period and a visibility
timeout longer than the longest grading. They cannot run here; this keeps them
from drifting."""
import copy
import re

import pytest
import yaml

from conftest import ROOT

K8S = ROOT / "hub" / "kubernetes"
SETTINGS = ROOT / "nopos" / "grading" / "distributed" / "settings.py"
SLURM = ROOT / "hub" / "slurm" / "grading-worker.sbatch"


def env_names():
    """The environment variables the queue's settings read."""
    return set(re.findall(r'(?:_need|environ\.get)\("([A-Z_]+)"', SETTINGS.read_text())) | {"PGPASSWORD"}


@pytest.fixture(scope="module")
def docs():
    return {(d["kind"], d["metadata"]["name"]): d
            for d in yaml.safe_load_all((K8S / "grading-workers.yaml").read_text())}


def longest_grading():
    from nopos.grading.batch import _notebook_timeout

    return _notebook_timeout(ROOT / "autograder")


def problems(docs):
    from nopos.grading.distributed import settings

    out = []
    pod = docs["Deployment", "nopos-grading-worker"]["spec"]["template"]["spec"]
    worker = pod["containers"][0]
    if worker["command"][:3] != ["python", "-m", "nopos.grading.distributed.worker"]:
        out.append(f"the worker runs {worker['command'][:3]}, not nopos.grading.distributed.worker")
    env = {e["name"]: e for e in worker["env"]}
    for name in sorted(env_names() - {"NOPOS_QUEUE_VISIBILITY_S"} - set(env)):
        out.append(f"the worker's environment lacks {name}")
    for secret in ("NOPOS_BROKER_URL", "PGPASSWORD", "NOPOS_GRADEBOOK_URL"):
        if secret in env and "secretKeyRef" not in (env[secret].get("valueFrom") or {}):
            out.append(f"{secret} is written in the file, not read from a Secret")
    grader_pod = next(d for d in yaml.safe_load_all((K8S / "grader.yaml").read_text())
                      if d["kind"] == "Deployment")["spec"]["template"]["spec"]
    # the grader's pod sends the class: the same settings, from the same Secret's keys
    grader_env = {e["name"]: e for e in grader_pod["containers"][0]["env"]}
    for name in sorted(env_names() - {"NOPOS_QUEUE_VISIBILITY_S"}):
        mine, theirs = grader_env.get(name), env.get(name)
        if mine is None:
            out.append(f"the grader's pod lacks {name}: it cannot send a class")
        elif theirs is not None and ((mine.get("valueFrom") or {}).get("secretKeyRef", {}).get("key"),
                                     mine.get("value")) != (
                (theirs.get("valueFrom") or {}).get("secretKeyRef", {}).get("key"), theirs.get("value")):
            out.append(f"the grader's {name} is not the workers'")
    keys_at = (grader_env.get("NOPOS_QUEUE_KEYS") or {}).get("value")
    grader_mounts = {m["mountPath"]: m["name"] for m in grader_pod["containers"][0]["volumeMounts"]}
    grader_volumes = {v["name"]: v for v in grader_pod["volumes"]}
    items = {i["path"] for i in grader_volumes.get(grader_mounts.get(keys_at), {}).get(
        "secret", {}).get("items", [])}
    if items != {"grader.key", "grader.pem", "trusted/grader.pem"}:
        out.append(f"the grader's pod holds {sorted(items)} at NOPOS_QUEUE_KEYS, not its own key")
    keys = env.get("NOPOS_QUEUE_KEYS", {}).get("value")
    mounts = {m["mountPath"]: m["name"] for m in worker.get("volumeMounts", [])}
    if keys not in mounts:
        out.append(f"nothing is mounted at NOPOS_QUEUE_KEYS ({keys})")
    else:
        volume = {v["name"]: v for v in pod["volumes"]}[mounts[keys]]
        paths = {i["path"] for i in volume.get("secret", {}).get("items", [])}
        key = worker["command"][worker["command"].index("--key") + 1] if "--key" in worker["command"] else "worker"
        want = {f"{key}.key", f"{key}.pem", "trusted/grader.pem"}
        if paths != want:
            out.append(f"the keys volume holds {sorted(paths)}, the worker reads {sorted(want)}")
    security = worker.get("securityContext", {})
    if security.get("runAsUser") != 0 or "SYS_ADMIN" not in security.get("capabilities", {}).get("add", []):
        out.append("the worker's pod lacks root and SYS_ADMIN: the sandbox builds no namespaces")
    limit = worker["resources"]["limits"]["cpu"]
    if env.get("NOPOS_THREADS", {}).get("value") != str(limit):
        out.append(f"NOPOS_THREADS is not the CPU limit {limit} (one submission at a time)")
    if settings.LONGEST_GRADING_S != longest_grading():
        out.append(f"settings.LONGEST_GRADING_S is {settings.LONGEST_GRADING_S}, the batch's wall "
                   f"limit {longest_grading()} s")
    if pod.get("terminationGracePeriodSeconds", 30) < longest_grading():
        out.append(f"terminationGracePeriodSeconds < the longest grading ({longest_grading()} s)")
    if settings.VISIBILITY_S <= longest_grading():
        out.append(f"the broker's visibility timeout {settings.VISIBILITY_S} s does not exceed the "
                   f"longest grading ({longest_grading()} s): graded twice at once")
    grader = next(d for d in yaml.safe_load_all((K8S / "grader.yaml").read_text())
                  if d["kind"] == "Deployment")
    if worker["image"] != grader["spec"]["template"]["spec"]["containers"][0]["image"]:
        out.append("the worker's image is not the grader's: the course versions may differ")
    redis = docs["StatefulSet", "nopos-broker"]["spec"]["template"]["spec"]["containers"][0]
    command = " ".join(redis["command"])
    for flag in ("--appendonly yes", "--appendfsync always",
                 f"--proto-max-bulk-len {settings.MAX_MESSAGE_MB}mb"):
        if flag not in command:
            out.append(f"the broker runs without {flag}")
    if not re.search(r'printf "requirepass %s\\n" "\$REDIS_PASSWORD" > (\S+) .*redis-server \1', command):
        out.append("the broker's password is not in a file redis-server reads (requirepass)")
    if "--requirepass" in command:
        out.append("the broker's password is on redis-server's command line")
    policy = docs["NetworkPolicy", "nopos-broker-clients"]["spec"]
    allowed = [f["podSelector"]["matchLabels"]["app"] for rule in policy["ingress"] for f in rule["from"]]
    if sorted(allowed) != ["nopos-grader", "nopos-grading-worker"]:
        out.append(f"the broker is reachable from {allowed}, not only the workers and the grader")
    return out


def test_the_workers_file_agrees_with_the_package(docs):
    assert problems(docs) == []


def worker(d):
    return d["Deployment", "nopos-grading-worker"]["spec"]["template"]["spec"]


@pytest.mark.parametrize("change, message", [
    (lambda d: worker(d)["containers"][0]["env"].pop(1), "lacks NOPOS_BROKER_URL"),
    (lambda d: worker(d)["containers"][0]["env"][3].update(valueFrom=None, value="pw"),
     "PGPASSWORD is written in the file"),
    (lambda d: worker(d)["containers"][0]["securityContext"].update(runAsUser=1000), "lacks root"),
    (lambda d: worker(d).update(terminationGracePeriodSeconds=30), "terminationGracePeriodSeconds"),
    (lambda d: worker(d)["volumes"][0]["secret"]["items"].pop(), "the keys volume holds"),
    (lambda d: d["StatefulSet", "nopos-broker"]["spec"]["template"]["spec"]["containers"][0].update(
        command=["redis-server"]), "without --appendonly yes"),
    (lambda d: d["StatefulSet", "nopos-broker"]["spec"]["template"]["spec"]["containers"][0].update(
        command=["sh", "-c", 'exec redis-server --requirepass "$REDIS_PASSWORD" --appendonly yes']),
     "on redis-server's command line"),
    (lambda d: worker(d)["containers"][0]["resources"]["limits"].update(cpu="4"), "NOPOS_THREADS"),
], ids=["broker url", "password in file", "no root", "grace", "keys", "no aof", "password in argv", "threads"])
def test_a_drift_is_caught(docs, change, message):
    d = copy.deepcopy(docs)
    change(d)
    assert any(message in p for p in problems(d)), problems(d)


def test_the_slurm_script_starts_the_same_worker():
    text = SLURM.read_text()
    assert "-m nopos.grading.distributed.worker" in text
    for name in env_names() - {"NOPOS_QUEUE_VISIBILITY_S"}:
        assert name in text, f"{SLURM.name} never sets {name}"
    # a job's end is a warm shutdown (the worker finishes its submission), before SLURM kills it
    assert re.search(r"--signal=\S*TERM@\d+", text)
