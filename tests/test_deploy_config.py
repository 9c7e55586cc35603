"""The Kubernetes deployment (hub/kubernetes/) and the one-server hub say the same thing:
course id, hub groups, grader service, exchange path and `path_includes_course`,
thread settings matching the CPU limit. The names are those of nopos/hub/settings.py;
the Kubernetes files cannot run here, so this is what keeps them from drifting."""
import ast
import copy
import re
import runpy
from urllib.parse import urlsplit

import pytest
import yaml

from conftest import ROOT

K8S = ROOT / "hub" / "kubernetes"
HUB_CONFIG = ROOT / "hub" / "jupyterhub_config.py"


@pytest.fixture(scope="module")
def names(tmp_path_factory):
    """settings.py's values as shipped (its NOPOS_* environment overrides left out)."""
    mp = pytest.MonkeyPatch()
    try:
        for key in ("NOPOS_HUB_PREFIX", "NOPOS_EXCHANGE", "NOPOS_ROOMS", "NOPOS_COURSE_ROOT",
                    "JUPYTERHUB_API_URL"):
            mp.delenv(key, raising=False)
        return runpy.run_path(str(ROOT / "nopos" / "hub" / "settings.py"))
    finally:
        mp.undo()


@pytest.fixture(scope="module")
def values():
    return yaml.safe_load((K8S / "values.yaml").read_text())


@pytest.fixture(scope="module")
def grader():
    return {d["kind"]: d for d in yaml.safe_load_all((K8S / "grader.yaml").read_text())
            if d["kind"] != "PersistentVolumeClaim"} | {
        ("PVC", d["metadata"]["name"]): d for d in yaml.safe_load_all((K8S / "grader.yaml").read_text())
        if d["kind"] == "PersistentVolumeClaim"}


def config_assignments(source):
    """{'Exchange.root': value, ...} of the `c.X.Y = value` lines of a Jupyter config
    (a name such as JupyterHubAuthPlugin is kept as its name)."""
    found = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Attribute):
                key = f"{target.value.attr}.{target.attr}"
                value = node.value
                found[key] = value.id if isinstance(value, ast.Name) else (
                    ast.literal_eval(value) if isinstance(value, ast.Constant) else ast.dump(value))
    return found


def nbgrader_problems(source, names, where):
    conf = config_assignments(source)
    want = {"CourseDirectory.course_id": names["COURSE"], "Exchange.root": names["EXCHANGE"],
            "Exchange.path_includes_course": True,
            "Authenticator.plugin_class": "JupyterHubAuthPlugin"}
    return [f"{where}: {key} is {conf.get(key)!r}, settings say {value!r}"
            for key, value in want.items() if conf.get(key) != value]


def problems(values, grader, names):
    """Every way the Kubernetes files disagree with settings.py, in words."""
    out = []
    single, hub = values["singleuser"], values["hub"]
    out += nbgrader_problems(single["extraFiles"]["nbgrader-config"]["stringData"], names,
                             "values.yaml singleuser nbgrader config")
    out += nbgrader_problems(grader["ConfigMap"]["data"]["nbgrader_config.py"], names,
                             "grader.yaml nbgrader config")
    # the exchange: the same path in every learner pod and in the grader, on an RWX volume
    mounts = {m["mountPath"]: m["name"] for m in single["storage"]["extraVolumeMounts"]}
    if names["EXCHANGE"] not in mounts:
        out.append(f"values.yaml mounts no volume at the exchange {names['EXCHANGE']}")
    else:
        volume = {v["name"]: v for v in single["storage"]["extraVolumes"]}[mounts[names["EXCHANGE"]]]
        claim = grader.get(("PVC", volume["persistentVolumeClaim"]["claimName"]))
        if not claim or "ReadWriteMany" not in claim["spec"]["accessModes"]:
            out.append("the exchange's volume claim is not a ReadWriteMany claim of grader.yaml")
    pod = grader["Deployment"]["spec"]["template"]["spec"]
    container = pod["containers"][0]
    grader_mounts = {m["mountPath"] for m in container["volumeMounts"]}
    if names["EXCHANGE"] not in grader_mounts:
        out.append(f"grader.yaml mounts no volume at the exchange {names['EXCHANGE']}")
    # the groups, and the grader's user in the instructors' group
    groups = hub["config"]["JupyterHub"]["load_groups"]
    if set(groups) != {names["LEARNERS_GROUP"], names["INSTRUCTORS_GROUP"]}:
        out.append(f"values.yaml load_groups {sorted(groups)} are not the course's groups")
    elif names["GRADER_USER"] not in groups[names["INSTRUCTORS_GROUP"]]["users"]:
        out.append(f"{names['GRADER_USER']} is not in {names['INSTRUCTORS_GROUP']}")
    # the grader service: registered, reachable by the instructors' group only, wired to its pod
    service = hub["services"].get(names["SERVICE"])
    if service is None:
        out.append(f"values.yaml has no hub service {names['SERVICE']!r}")
    else:
        host = urlsplit(service["url"]).hostname
        if host != grader["Service"]["metadata"]["name"]:
            out.append(f"hub service url host {host!r} is not grader.yaml's Service")
    access = f"access:services!service={names['SERVICE']}"
    roles = hub["loadRoles"].values()
    if not any(access in r.get("scopes", []) and r.get("groups") == [names["INSTRUCTORS_GROUP"]]
               for r in roles):
        out.append(f"no role gives {names['INSTRUCTORS_GROUP']} (and only it) {access}")
    if not any(r.get("services") == [names["SERVICE"]] for r in roles):
        out.append(f"no role gives the service {names['SERVICE']} its API scopes")
    env = {e["name"]: e.get("value") or e.get("valueFrom") for e in container["env"]}
    if env.get("JUPYTERHUB_SERVICE_NAME") != names["SERVICE"] \
            or env.get("JUPYTERHUB_USER") != names["GRADER_USER"]:
        out.append("grader.yaml's pod is not the service/user of settings.py")
    if env.get("JUPYTERHUB_API_TOKEN", {}).get("secretKeyRef", {}).get("key") \
            != f"hub.services.{names['SERVICE']}.apiToken":
        out.append("grader.yaml does not read the service's token from the chart's secret")
    if "frame-ancestors 'self'" not in grader["ConfigMap"]["data"]["jupyter_server_config.py"]:
        out.append("the grader sets no CSP frame-ancestors: formgrader is blank in hub >= 4.1")
    # threads: as many as the CPU limit allows, idle OpenMP threads asleep
    limit = single["cpu"]["limit"]
    extra = single["extraEnv"]
    if str(extra.get("NOPOS_THREADS")) != str(int(limit)) or int(limit) != limit:
        out.append(f"singleuser NOPOS_THREADS={extra.get('NOPOS_THREADS')} but cpu.limit={limit}")
    if extra.get("OMP_WAIT_POLICY") != "PASSIVE":
        out.append("singleuser OMP_WAIT_POLICY is not PASSIVE")
    if extra.get("NOPOS_EXCHANGE") != names["EXCHANGE"]:
        out.append("singleuser NOPOS_EXCHANGE is not settings.EXCHANGE")
    return out


def test_kubernetes_files_agree_with_settings(values, grader, names):
    assert problems(values, grader, names) == []


@pytest.mark.parametrize("change, message", [
    (lambda v, g: v["singleuser"]["extraFiles"]["nbgrader-config"].update(
        stringData='c.CourseDirectory.course_id = "other"\n'), "course_id is 'other'"),
    (lambda v, g: v["singleuser"]["storage"]["extraVolumeMounts"][0].update(mountPath="/x"),
     "mounts no volume at the exchange"),
    (lambda v, g: v["hub"]["config"]["JupyterHub"]["load_groups"].pop("nbgrader-nopos"),
     "are not the course's groups"),
    (lambda v, g: v["singleuser"]["cpu"].update(limit=4), "NOPOS_THREADS=2 but cpu.limit=4"),
    (lambda v, g: g["ConfigMap"]["data"].update(
        {"nbgrader_config.py": g["ConfigMap"]["data"]["nbgrader_config.py"].replace(
            "path_includes_course = True", "path_includes_course = False")}),
     "grader.yaml nbgrader config: Exchange.path_includes_course is False"),
    (lambda v, g: v["hub"]["loadRoles"]["formgrade-nopos"].update(groups=["nbgrader-nopos"]),
     "no role gives formgrade-nopos"),
], ids=["course id", "exchange path", "groups", "threads", "path_includes_course", "formgrader access"])
def test_a_drift_is_caught(values, grader, names, change, message):
    v, g = copy.deepcopy(values), copy.deepcopy(grader)
    change(v, g)
    assert any(message in p for p in problems(v, g, names)), problems(v, g, names)


def test_the_hub_config_agrees_with_settings(names):
    """hub/jupyterhub_config.py (and what it reads from hub/) against settings.py, as
    text: importing it would need JupyterHub."""
    if not HUB_CONFIG.exists():
        pytest.skip("hub/jupyterhub_config.py is not there yet (built on another branch)")
    texts = {p.name: p.read_text() for p in (ROOT / "hub").glob("*.py")}
    text = "\n".join(texts.values())
    tree = ast.parse(texts["jupyterhub_config.py"])
    imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
                and n.module == "nopos.hub.settings" for a in n.names}
    strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    wrong = []
    for key in ("LEARNERS_GROUP", "INSTRUCTORS_GROUP", "EXCHANGE", "SERVICE"):
        if key not in imported and names[key] not in strings and "*" not in imported:
            wrong.append(f"it neither imports {key} from nopos.hub.settings nor says {names[key]!r}")
    stray = sorted(s for s in strings if re.fullmatch(r"(nbgrader|formgrade)-[\w.-]+", s)
                   and s not in (names["LEARNERS_GROUP"], names["INSTRUCTORS_GROUP"]))
    if stray:
        wrong.append(f"it names other groups: {stray}")
    if not re.search(r"path_includes_course\s*=\s*True", text):
        wrong.append("no `Exchange.path_includes_course = True`")
    for needed in ("JupyterHubAuthPlugin", "NOPOS_THREADS", "OMP_WAIT_POLICY"):
        if needed not in text:
            wrong.append(f"it never mentions {needed}")
    assert wrong == [], "hub/jupyterhub_config.py and settings.py disagree:\n" + "\n".join(wrong)
