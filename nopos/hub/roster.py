"""The class roster: one CSV file, synced into the hub and into nbgrader's gradebook.

    python -m nopos.hub.roster check roster.csv
    python -m nopos.hub.roster sync roster.csv [--dry-run] [--remove-missing]

The file has the columns `id,name,role[,email]` (role: learner or instructor).
The whole file is validated before anything changes, so a bad roster changes
nothing; every problem is reported with its line and the fix. Syncing is
idempotent: it reads what the hub and the gradebook hold, works out the
difference, prints it, and (unless --dry-run) applies it.

- The hub (REST API at JUPYTERHUB_API_URL, a token with the scopes
  admin:users and admin:groups from --token-file (env NOPOS_HUB_TOKEN_FILE),
  JUPYTERHUB_API_TOKEN, or else, as root on the hub's machine, the hub's own
  admin service's token in settings.TOKENS, which `make hub` made): every
  person becomes a hub user; learners join LEARNERS_GROUP, instructors
  INSTRUCTORS_GROUP (JupyterHubAuthPlugin reads the course from them).
- The gradebook of the course root (--course-root, by default the hub's
  course, settings.COURSE_ROOT): every learner becomes an nbgrader student
  with first and last name (and email). Instructors are not students.

With --os-users (one server, as root) it also creates the missing OS accounts,
with private homes; it never removes one. Nothing is deleted unless --remove-missing; even then a student who has
submissions keeps them (and the gradebook row): grades are never thrown away.
"""
import argparse
import csv
import json
import os
import pwd
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from nopos.grading.batch import check_student_id
from nopos.hub.settings import (ADMIN_SERVICE, COURSE_ROOT, GRADER_USER, HUB_API_URL, INSTRUCTORS_GROUP,
                                LEARNERS_GROUP, TOKENS)

COLUMNS = ("id", "name", "role")
ROLES = {"learner": LEARNERS_GROUP, "instructor": INSTRUCTORS_GROUP}
ROLE_HINTS = {"student": "learner", "teacher": "instructor", "ta": "instructor",
              "admin": "instructor", "grader": "instructor"}
# an OS user name (useradd's portable rule) that the hub keeps as it is: the hub
# lower-cases names, so an upper-case id would be a different person to nbgrader
OS_USER = re.compile(r"^[a-z][a-z0-9_-]{0,31}\Z")
EMAIL = re.compile(r"^[^@\s,]+@[^@\s,]+\.[^@\s,]+\Z")
FIRST_SYSTEM_UID, LAST_SYSTEM_UID = 0, 999


class RosterError(ValueError):
    """The roster cannot be used; `problems` lists every reason, one per line."""

    def __init__(self, path, problems):
        self.problems = problems
        super().__init__(f"{path}: {len(problems)} problem(s), nothing was changed:\n"
                         + "\n".join(f"  {p}" for p in problems))


@dataclass(frozen=True)
class Person:
    id: str
    name: str
    role: str
    email: str | None = None
    line: int = 0

    @property
    def group(self):
        return ROLES[self.role]

    @property
    def first_last(self):
        """(first, last): "Lovelace, Ada" and "Ada Lovelace" both give ("Ada", "Lovelace")."""
        if "," in self.name:
            last, first = (s.strip() for s in self.name.split(",", 1))
            return first or None, last or None
        words = self.name.split()
        return (" ".join(words[:-1]) or None, words[-1]) if len(words) > 1 else (words[0], None)


# ----------------------------------------------------------------------------- reading
def id_problem(uid):
    """None, or why `uid` cannot be both an OS user name and an nbgrader student id."""
    if not OS_USER.match(uid):
        hint = f" (perhaps {uid.lower()!r})" if OS_USER.match(uid.lower()) else ""
        return (f"id {uid!r} is not a valid user name: use lower-case letters, digits, '_' "
                f"and '-', starting with a letter, at most 32 characters{hint}")
    reason = check_student_id(uid)
    if reason:
        return reason.replace(": not graded", ": choose another id")
    if uid == GRADER_USER:
        return f"id {uid!r} is the course's grader account: choose another id"
    try:
        uid_number = pwd.getpwnam(uid).pw_uid
    except KeyError:
        return None
    if FIRST_SYSTEM_UID <= uid_number <= LAST_SYSTEM_UID:
        return f"id {uid!r} is a system account on this machine (uid {uid_number}): choose another id"
    return None


def read_roster(path):
    """The people of roster file `path`, or RosterError listing every problem."""
    path = Path(path)
    try:
        text = path.read_bytes().decode("utf-8-sig")  # a spreadsheet's BOM is harmless
    except FileNotFoundError:
        raise RosterError(path, [f"no such file: {path}"]) from None
    except UnicodeDecodeError as err:
        raise RosterError(path, [f"not UTF-8 text (byte {err.start}): save it as CSV UTF-8"]) from None
    lines = [(n, line) for n, line in enumerate(text.splitlines(), 1)
             if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise RosterError(path, ["the file is empty: its first line must be the header "
                                 "`id,name,role` (optionally `,email`), then one line per person"])
    header_line, header_text = lines[0]
    header = [h.strip().lower() for h in next(csv.reader([header_text]))]
    problems = [f"line {header_line}: the header has no column {c!r}: the header must be "
                f"`id,name,role` (optionally `,email`), found `{header_text.strip()}`"
                for c in COLUMNS if c not in header]
    doubled = sorted({h for h in header if header.count(h) > 1})
    problems += [f"line {header_line}: column {h!r} appears twice in the header: keep one"
                 for h in doubled]
    if problems:
        raise RosterError(path, problems)
    people, seen = [], {}
    for number, line in lines[1:]:
        fields = next(csv.reader([line]))
        if len(fields) != len(header):
            problems.append(f"line {number}: {len(fields)} field(s) where the header has "
                            f"{len(header)}: write `id,name,role` (quote a name holding a comma)")
            continue
        row = {h: v.strip() for h, v in zip(header, fields)}
        person, row_problems = _person(row, number, seen)
        problems += row_problems
        if person:
            people.append(person)
        if row["id"] and not id_problem(row["id"]):
            seen.setdefault(row["id"], number)
    if not problems and not people:
        problems.append(f"line {header_line}: only a header, nobody listed: add one line per person")
    if problems:
        raise RosterError(path, problems)
    return people


def _person(row, number, seen):
    problems = []
    uid, name, role, email = row["id"], row["name"], row["role"].lower(), row.get("email") or None
    if not uid:
        problems.append(f"line {number}: empty id: write the person's user name")
    else:
        reason = id_problem(uid)
        if reason:
            problems.append(f"line {number}: {reason}")
        elif uid in seen:
            problems.append(f"line {number}: duplicate id {uid!r}, already on line {seen[uid]}: "
                            f"list each person once (merge or delete one of the lines)")
    if not name:
        problems.append(f"line {number}: empty name for {uid!r}: write the person's name "
                        f"(it goes to the gradebook)")
    if role not in ROLES:
        hint = ROLE_HINTS.get(role)
        problems.append(f"line {number}: unknown role {row['role']!r}: use `learner` or "
                        f"`instructor`" + (f" (for {row['role']!r}, `{hint}`)" if hint else ""))
    if email and not EMAIL.match(email):
        problems.append(f"line {number}: email {email!r} is not an address: fix it or leave it empty")
    if problems:
        return None, problems
    return Person(uid, name, role, email, number), []


# ----------------------------------------------------------------------------- the hub
class Hub:
    """The few JupyterHub REST calls the roster needs (urllib: no extra package)."""

    def __init__(self, url, token, timeout=30):
        self.url, self.token, self.timeout = url.rstrip("/"), token, timeout

    def call(self, method, path, body=None, missing_ok=False):
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={
            "Authorization": f"token {self.token}", "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            if missing_ok and err.code == 404:
                return None
            detail = err.read().decode(errors="replace")[:300]
            hint = (" (the token needs the scopes admin:users and admin:groups)"
                    if err.code in (401, 403) else "")
            raise RuntimeError(f"hub: {method} {path} answered {err.code}{hint}: {detail}") from None
        except urllib.error.URLError as err:
            raise RuntimeError(f"hub: cannot reach {self.url} ({err.reason}): is the hub running, "
                               f"and is JUPYTERHUB_API_URL right?") from None
        return json.loads(raw) if raw else None

    def _pages(self, path):
        """Every item of a paginated list (the hub returns at most 200 per call)."""
        items, offset = [], 0
        while True:
            page = self.call("GET", f"{path}?offset={offset}&limit=200")
            page = page["items"] if isinstance(page, dict) else page
            items += page
            if not page:
                return items
            offset += len(page)

    def users(self):
        return {u["name"]: u for u in self._pages("/users")}

    def group(self, name):
        return self.call("GET", f"/groups/{urllib.parse.quote(name)}", missing_ok=True)

    def create_user(self, name):
        self.call("POST", f"/users/{urllib.parse.quote(name)}")

    def delete_user(self, name):
        self.call("DELETE", f"/users/{urllib.parse.quote(name)}")

    def create_group(self, name):
        self.call("POST", f"/groups/{urllib.parse.quote(name)}")

    def add_members(self, group, names):
        self.call("POST", f"/groups/{urllib.parse.quote(group)}/users", {"users": sorted(names)})

    def remove_members(self, group, names):
        self.call("DELETE", f"/groups/{urllib.parse.quote(group)}/users", {"users": sorted(names)})


@dataclass
class Plan:
    """What a sync would change, in words and as steps (a function and its arguments;
    with `opens`, a context manager whose value is passed to every step first)."""
    lines: list = field(default_factory=list)
    steps: list = field(default_factory=list)
    opens: object = None

    def add(self, text, step):
        self.lines.append(text)
        self.steps.append(step)

    def apply(self):
        if not self.steps:
            return
        if self.opens is None:
            for fn, *args in self.steps:
                fn(*args)
            return
        with self.opens() as handle:
            for fn, *args in self.steps:
                fn(handle, *args)


def plan_hub(people, hub, remove_missing=False):
    plan = Plan()
    users = hub.users()
    groups = {g: hub.group(g) for g in ROLES.values()}
    members = {g: set(v["users"]) if v else set() for g, v in groups.items()}
    for g, found in groups.items():
        if found is None:
            plan.add(f"hub: create group {g}", (hub.create_group, g))
    for p in people:
        if p.id not in users:
            plan.add(f"hub: add user {p.id} ({p.role})", (hub.create_user, p.id))
    for role, g in ROLES.items():
        want = {p.id for p in people if p.role == role}
        if want - members[g]:
            plan.add(f"hub: put {', '.join(sorted(want - members[g]))} in group {g}",
                     (hub.add_members, g, want - members[g]))
        stale = {u for u in members[g] - want if u in {p.id for p in people}}
        if stale:  # listed with the other role now
            plan.add(f"hub: take {', '.join(sorted(stale))} out of group {g} (role changed)",
                     (hub.remove_members, g, stale))
    if remove_missing:
        listed = {p.id for p in people} | {GRADER_USER}  # the grader is in no roster
        for g in ROLES.values():
            gone = members[g] - listed
            if gone:
                plan.add(f"hub: take {', '.join(sorted(gone))} out of group {g} (not in the roster)",
                         (hub.remove_members, g, gone))
        course_groups = set(ROLES.values())
        for name in sorted(set().union(*members.values()) - listed):
            user = users.get(name, {})
            if not user.get("admin") and set(user.get("groups", [])) <= course_groups:
                plan.add(f"hub: delete user {name} (not in the roster, in no other group)",
                         (hub.delete_user, name))
    return plan


# ----------------------------------------------------------------------------- OS accounts
def plan_accounts(people):
    """On one server (LocalProcessSpawner) every person is an OS account: create the
    missing ones, homes private (useradd's default 0755 would let learners read each
    other's notebooks). Accounts are never removed: their homes hold the work."""
    plan = Plan()
    for p in people:
        try:
            pwd.getpwnam(p.id)
        except KeyError:
            plan.add(f"os: create account {p.id} (home /home/{p.id}, mode 700)", (create_account, p))
    return plan


def create_account(person):
    import shutil

    if os.geteuid() != 0 or not shutil.which("useradd"):
        raise RuntimeError(f"cannot create the account {person.id}: run as root on the hub's "
                           f"machine (useradd), or leave out --os-users")
    comment = re.sub(r"[:\n]", " ", person.name)  # /etc/passwd's separators
    done = subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", "--comment", comment,
                           person.id], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"useradd {person.id} failed: {done.stderr.strip()}")
    os.chmod(pwd.getpwnam(person.id).pw_dir, 0o700)


# ----------------------------------------------------------------------------- the gradebook
def gradebook_url(course_root):
    return f"sqlite:///{Path(course_root).resolve() / 'gradebook.db'}"


def plan_gradebook(people, course_root, remove_missing=False):
    from nbgrader.api import Gradebook

    plan = Plan(opens=lambda: _opened(course_root))
    db = Path(course_root) / "gradebook.db"
    if not Path(course_root).is_dir():
        raise RuntimeError(f"no course root {course_root}: pass --course-root (the folder with "
                           f"nbgrader_config.py)")
    existing, submissions = {}, {}
    if db.exists():
        with Gradebook(gradebook_url(course_root)) as gb:
            for s in gb.students:
                existing[s.id] = (s.first_name, s.last_name, s.email)
                submissions[s.id] = len(s.submissions)
    learners = [p for p in people if p.role == "learner"]
    for p in learners:
        first, last = p.first_last
        want = (first, last, p.email)
        if p.id not in existing:
            plan.add(f"gradebook: add student {p.id} ({p.name})", (_upsert, p))
        elif existing[p.id] != want:
            old = " ".join(x for x in existing[p.id][:2] if x) or "no name"
            plan.add(f"gradebook: update student {p.id} ({old} -> {p.name}"
                     f"{', email ' + p.email if p.email and p.email != existing[p.id][2] else ''})",
                     (_upsert, p))
    if remove_missing:
        for sid in sorted(set(existing) - {p.id for p in learners}):
            if submissions[sid]:
                plan.lines.append(f"gradebook: keep student {sid} (not a learner in the roster, but "
                                  f"has {submissions[sid]} submission(s); to drop them and their "
                                  f"grades: nbgrader db student remove {sid} --force)")
            else:
                plan.add(f"gradebook: remove student {sid} (not a learner in the roster, "
                         f"no submissions)", (_remove, sid))
    return plan


class _opened:
    """The course's gradebook, open for the steps (created if new, owner kept)."""

    def __init__(self, course_root):
        self.root = course_root

    def __enter__(self):
        from nbgrader.api import Gradebook

        # a new gradebook asks the `alembic` command for its schema version: this
        # environment's, even when the venv is not on PATH
        here = str(Path(sys.executable).parent)
        if here not in os.environ.get("PATH", "").split(os.pathsep):
            os.environ["PATH"] = os.pathsep.join([here, os.environ.get("PATH", "")])
        self.gb = Gradebook(gradebook_url(self.root))
        return self.gb

    def __exit__(self, *exc):
        self.gb.close()
        _keep_owner(self.root)


def _upsert(gb, person):
    first, last = person.first_last
    gb.update_or_create_student(person.id, first_name=first, last_name=last, email=person.email)


def _remove(gb, student):
    gb.remove_student(student)


def _keep_owner(course_root):
    """Run as root, a new gradebook would belong to root and the grader could not write it."""
    db, root = Path(course_root) / "gradebook.db", Path(course_root)
    if os.geteuid() == 0 and db.exists():
        owner = root.stat()
        if db.stat().st_uid != owner.st_uid:
            os.chown(db, owner.st_uid, owner.st_gid)


# ----------------------------------------------------------------------------- sync
def sync(path, hub=None, course_root=None, dry_run=False, remove_missing=False, out=print,
         os_users=False):
    """Validate `path` completely, then bring the OS accounts (with `os_users`), the hub
    and/or the gradebook in line with it. Returns the plan's lines (what changed, or
    with dry_run what would)."""
    people = read_roster(path)
    plans = [plan_accounts(people)] if os_users else []
    if hub is not None:
        plans.append(plan_hub(people, hub, remove_missing))
    if course_root is not None:
        plans.append(plan_gradebook(people, course_root, remove_missing))
    lines = [line for plan in plans for line in plan.lines]
    learners = sum(p.role == "learner" for p in people)
    out(f"{path}: {learners} learner(s), {len(people) - learners} instructor(s)")
    if not lines:
        out("nothing to change: the hub and the gradebook already match the roster")
        return lines
    for line in lines:
        out(("would " if dry_run else "") + line)
    if not dry_run:
        for plan in plans:
            plan.apply()
        out(f"done: {sum(len(p.steps) for p in plans)} change(s)")
    return lines


def admin_token():
    """The hub's own admin-service token (ADMIN_SERVICE, made by `make hub`; root only), or None."""
    try:
        return json.loads(Path(TOKENS).read_text()).get(ADMIN_SERVICE)
    except (OSError, ValueError):
        return None


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m nopos.hub.roster", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("check", help="validate the roster; change nothing").add_argument("roster")
    s = sub.add_parser("sync", help="sync the roster into the hub and the gradebook")
    s.add_argument("roster")
    s.add_argument("--dry-run", action="store_true", help="print what would change; change nothing")
    s.add_argument("--remove-missing", action="store_true",
                   help="also remove people who are not in the roster (never their grades)")
    s.add_argument("--hub-url", default=os.environ.get("JUPYTERHUB_API_URL", HUB_API_URL),
                   help=f"the hub's REST API (default {HUB_API_URL}; env JUPYTERHUB_API_URL)")
    s.add_argument("--token-file", default=os.environ.get("NOPOS_HUB_TOKEN_FILE"),
                   help="a file holding an API token with the scopes admin:users and admin:groups "
                        "(env NOPOS_HUB_TOKEN_FILE; or the token itself in JUPYTERHUB_API_TOKEN; as root, "
                        "by default the hub's own admin service token from `make hub`)")
    s.add_argument("--course-root", default=COURSE_ROOT,
                   help=f"the nbgrader course root whose gradebook to sync (default {COURSE_ROOT}; "
                        f"env NOPOS_COURSE_ROOT)")
    s.add_argument("--os-users", action="store_true",
                   help="also create missing OS accounts (root; one server with LocalProcessSpawner)")
    s.add_argument("--no-hub", action="store_true", help="only the gradebook")
    s.add_argument("--no-gradebook", action="store_true", help="only the hub")
    args = parser.parse_args(argv)
    try:
        if args.command == "check":
            people = read_roster(args.roster)
            print(f"{args.roster}: OK, {len(people)} people")
            return 0
        hub = course_root = None
        if not args.no_hub:
            token = (Path(args.token_file).read_text().strip() if args.token_file
                     else os.environ.get("JUPYTERHUB_API_TOKEN") or admin_token())
            if not token:
                parser.error("the hub needs an API token with the scopes admin:users and "
                             f"admin:groups: run as root on the hub's machine (it reads {TOKENS}), "
                             "or give JUPYTERHUB_API_TOKEN or --token-file FILE "
                             "(--no-hub syncs only the gradebook)")
            hub = Hub(args.hub_url, token)
        if not args.no_gradebook:
            course_root = args.course_root
        sync(args.roster, hub, course_root, args.dry_run, args.remove_missing, os_users=args.os_users)
    except RosterError as err:
        print(err, file=sys.stderr)
        return 2
    except (RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
