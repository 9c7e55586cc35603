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



# ------------------------------------------------------------------ the two images
DOCKERFILE = K8S / "Dockerfile"


def dockerfile_stages(text):
    """{stage: [(INSTRUCTION, arguments)]}, continuation lines joined, comments left out;
    each stage also records its base under "FROM"."""
    stages, current = {}, None
    for line in re.sub(r"\\\n", " ", text).splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        word, _, rest = line.partition(" ")
        if word.upper() == "FROM":
            base, _, name = rest.partition(" AS ")
            current = stages.setdefault(name.strip(), [("FROM", base.strip())])
        else:
            current.append((word.upper(), rest.strip()))
    return stages


def built_images(text):
    """{stage: image name} from the header's `docker build --target STAGE -t NAME:TAG` lines."""
    return dict(re.findall(r"--target (\w+)\s+-t (\S+):", text))


def copied(stage):
    """[(sources, destination)] of a stage's COPY lines."""
    out = []
    for word, rest in stage:
        if word == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            out.append((parts[:-1], parts[-1]))
    return out


def image_problems(text, values, grader, workers, names):
    """What keeps answers out of learners' pods and lets the grader grade: the course
    image holds no answer and reads the published volume; the grading image holds the
    answers and the hidden tests where the grader finds them; each pod runs its image."""
    out, stages, images = [], dockerfile_stages(text), built_images(text)
    if set(stages) != {"course", "grading"} or set(images) != {"course", "grading"}:
        return [f"the Dockerfile builds {sorted(stages)} (header: {sorted(images)}), "
                f"not the stages course and grading"]
    sources = {s.split("/")[0] for srcs, _ in copied(stages["course"]) for s in srcs}
    for secret in ("nopos_reference", "autograder"):
        if secret in sources:
            out.append(f"the course image (learners' pods) copies {secret}/")
    course_runs = " ".join(rest for word, rest in stages["course"] if word == "RUN")
    if not re.search(rf"echo {re.escape(names['PUBLISHED_VOLUME'])} >[^&]*\.pth", course_runs):
        out.append(f"the course image puts no {names['PUBLISHED_VOLUME']} on sys.path (a .pth)")
    if stages["grading"][0] != ("FROM", "course"):
        out.append("the grading image is not built on the course image")
    where = {}
    for srcs, dest in copied(stages["grading"]):
        for src in srcs:
            top = src.split("/")[0]
            if top in ("nopos", "nopos_reference", "autograder"):
                where.setdefault(top, set()).add(dest[: dest.rindex(f"/{top}")] if f"/{top}" in dest else dest)
    folders = set().union(*where.values()) if where else set()
    if set(where) != {"nopos", "nopos_reference", "autograder"} or len(folders) != 1:
        out.append(f"the grading image does not put nopos, nopos_reference and autograder "
                   f"in one folder: {where}")
    else:
        grading_runs = " ".join(rest for word, rest in stages["grading"] if word == "RUN")
        if not re.search(rf"echo {re.escape(folders.pop())} >[^&]*\.pth", grading_runs):
            out.append("the grading image puts its folder on no .pth")
        if "pip uninstall --yes nopos-course" not in grading_runs:
            out.append("the grading image keeps the course image's nopos beside its own")
        if "nopos_published.pth" not in grading_runs:
            out.append("the grading image keeps the published folder's .pth (a partial "
                       "nopos_reference first on its path)")
        # the queue's packages (pyproject's test extra) at the versions the tests run
        tested = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "requirements-test.txt")
                                 .read_text(), re.M))
        installed = dict(re.findall(r"([A-Za-z0-9_.-]+)==(\S+)", grading_runs))
        for package in ("celery", "kombu", "redis", "psycopg", "psycopg-binary", "cryptography"):
            if installed.get(package) != tested.get(package):
                out.append(f"the grading image installs {package} {installed.get(package)}, the "
                           f"tests run {tested.get(package)}: a worker there cannot start")
    single = values["singleuser"]["image"]["name"]
    if single != images["course"]:
        out.append(f"learners' pods run {single}, not the course image {images['course']}")
    pods = {"grader.yaml": grader["Deployment"]["spec"]["template"]["spec"],
            "grading-workers.yaml": workers["spec"]["template"]["spec"]}
    for where_, pod in pods.items():
        image = pod["containers"][0]["image"].rsplit(":", 1)[0]
        if image != images["grading"]:
            out.append(f"{where_} runs {image}, not the grading image {images['grading']}")
    # the published volume: written by the grader only, read-only in every learner's pod
    mounts = {m["mountPath"]: m for m in values["singleuser"]["storage"]["extraVolumeMounts"]}
    mount = mounts.get(names["PUBLISHED_VOLUME"])
    if mount is None:
        out.append(f"values.yaml mounts nothing at {names['PUBLISHED_VOLUME']}")
    else:
        volume = {v["name"]: v for v in values["singleuser"]["storage"]["extraVolumes"]}[mount["name"]]
        claim_name = volume["persistentVolumeClaim"]["claimName"]
        if not (mount.get("readOnly") and volume["persistentVolumeClaim"].get("readOnly")):
            out.append("learners' pods mount the published volume writable")
        claim = grader.get(("PVC", claim_name))
        if not claim or "ReadWriteMany" not in claim["spec"]["accessModes"]:
            out.append("the published volume is not a ReadWriteMany claim of grader.yaml")
        pod = pods["grader.yaml"]
        claims = {v["name"]: v.get("persistentVolumeClaim", {}).get("claimName") for v in pod["volumes"]}
        if not any(m["mountPath"] == names["PUBLISHED_VOLUME"] and claims.get(m["name"]) == claim_name
                   and not m.get("readOnly") for m in pod["containers"][0]["volumeMounts"]):
            out.append("the grader does not mount the published volume, writable, at the same path")
    return out


@pytest.fixture(scope="module")
def workers():
    return next(d for d in yaml.safe_load_all((K8S / "grading-workers.yaml").read_text())
                if d["kind"] == "Deployment")


def test_learners_pods_run_an_image_without_answers(values, grader, workers, names):
    assert image_problems(DOCKERFILE.read_text(), values, grader, workers, names) == []


def _single(v):
    return v["singleuser"]


@pytest.mark.parametrize("change, message", [
    (lambda t, v, g, w: (t, _single(v)["image"].update(name="registry.example.org/nopos-grading")),
     "learners' pods run registry.example.org/nopos-grading"),
    (lambda t, v, g, w: (t.replace("COPY --chown=1000:100 nopos /opt/nopos-course/nopos",
                                   "COPY --chown=1000:100 nopos nopos_reference /opt/nopos-course/"),),
     "the course image (learners' pods) copies nopos_reference/"),
    (lambda t, v, g, w: (t, w["spec"]["template"]["spec"]["containers"][0].update(
        image="registry.example.org/nopos-course:0.1.0")),
     "grading-workers.yaml runs registry.example.org/nopos-course"),
    (lambda t, v, g, w: (t.replace("/opt/nopos-grading/autograder/source", "/opt/elsewhere/source"),),
     "in one folder"),
    (lambda t, v, g, w: (t, _single(v)["storage"]["extraVolumeMounts"][1].pop("readOnly")),
     "mount the published volume writable"),
    (lambda t, v, g, w: (t.replace("echo /srv/nopos/published", "echo /srv/nopos/other"),),
     "puts no /srv/nopos/published on sys.path"),
    (lambda t, v, g, w: (t.replace("celery==5.7.0 ", ""),), "installs celery None"),
], ids=["learners get the grading image", "answers in the course image", "worker image",
        "autograder elsewhere", "published writable", "no .pth", "no celery"])
def test_an_image_drift_is_caught(values, grader, workers, names, change, message):
    t, v, g, w = DOCKERFILE.read_text(), copy.deepcopy(values), copy.deepcopy(grader), copy.deepcopy(workers)
    t = change(t, v, g, w)[0]
    found = image_problems(t, v, g, w, names)
    assert any(message in p for p in found), found


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
