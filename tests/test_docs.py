"""The pages agree: every command they name exists, every chapter figure matches its
master, a figure measured once is stated on one page (the others link to it), and
every link between pages lands. A drift between two pages fails here."""
import re
import subprocess

import pytest

from conftest import ROOT, chapters

PAGES = sorted([ROOT / "README.md", *(ROOT / "docs").rglob("*.md")])

# A figure that is measured lives on one page; the others link there. (name, the page
# that holds it, a pattern that states it)
HOMES = [
    ("set-up time", "docs/authoring.md",
     re.compile(r"(make setup|set-up|setup)[^\n]{0,60}?\b(\d+ ?(s|seconds?|min|minutes?)|under a minute)\b",
                re.I)),
    ("venv size", "docs/authoring.md",
     re.compile(r"(venv|make setup)[^\n]{0,40}?\b\d+(\.\d+)? ?GB", re.I)),
]


def rel(path):
    return str(path.relative_to(ROOT))


def make_targets():
    # `make -pRrq` prints the database without running anything
    out = subprocess.run(["make", "-pRrq", "-f", "Makefile"], cwd=ROOT, capture_output=True,
                         text=True).stdout
    return {line.split(":")[0] for line in out.splitlines()
            if re.match(r"^[a-zA-Z][\w.-]*:", line) and not line.startswith((".", "#"))}


def test_every_make_command_on_a_page_exists():
    targets = make_targets()
    missing = {}
    for page in PAGES:
        for name in re.findall(r"(?:`|^\s*|sudo )make ([a-z][\w-]*)",
                               page.read_text(encoding="utf-8"), re.M):
            if name not in targets:
                missing.setdefault(rel(page), set()).add(name)
    assert not missing, f"pages name make targets the Makefile lacks: {missing}"


def master_header(aid):
    text = (ROOT / "chapters" / f"{aid}.md").read_text(encoding="utf-8")
    minutes = re.search(r"\*\*Your time:\*\* about (\d+) minutes", text)
    points = re.search(r"\*\*Points:\*\* (\d+)", text)
    assert minutes and points, f"chapters/{aid}.md's header lacks its time or points"
    return int(minutes.group(1)), int(points.group(1))


@pytest.mark.parametrize("aid", chapters())
def test_chapter_tables_agree_with_the_master(aid):
    minutes, points = master_header(aid)
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    row = next((line for line in readme.splitlines() if f"course/{aid}/" in line
                and line.startswith("| [")), None)
    assert row, f"README's chapter table has no row for {aid}"
    cells = [c.strip() for c in row.strip("|").split("|")]
    assert cells[2] == f"{minutes} min", f"README says {cells[2]!r} for {aid}; its master {minutes} min"
    assert re.match(rf"{points}\b", cells[4]), f"README says {cells[4]!r} points for {aid}; master {points}"
    study = (ROOT / "docs" / "self-study.md").read_text(encoding="utf-8")
    row = next(line for line in study.splitlines() if f"course/{aid}/" in line)
    assert f"about {minutes} min" in row, f"docs/self-study.md's time for {aid} is not {minutes} min"


@pytest.mark.parametrize("name,home,pattern", HOMES, ids=[h[0] for h in HOMES])
def test_a_measured_figure_is_stated_on_one_page(name, home, pattern):
    assert pattern.search((ROOT / home).read_text(encoding="utf-8")), f"{home} should state the {name}"
    elsewhere = [f"{rel(p)}: {m.group(0)!r}" for p in PAGES if rel(p) != home
                 for m in pattern.finditer(p.read_text(encoding="utf-8"))]
    assert not elsewhere, f"the {name} is stated outside {home} (link to it instead): {elsewhere}"


def slug(heading):
    """GitHub's anchor for a heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_links_between_pages_land():
    broken = []
    for page in PAGES:
        for target in re.findall(r"\]\(([^)\s]+)\)", page.read_text(encoding="utf-8")):
            if re.match(r"[a-z]+:", target):
                continue  # a web address: not ours to check offline
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                broken.append(f"{rel(page)} -> {target}")
            elif anchor and dest.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", dest.read_text(encoding="utf-8"), re.M)
                if anchor not in {slug(h) for h in headings}:
                    broken.append(f"{rel(page)} -> {target} (no such heading)")
    assert not broken, f"links that land nowhere: {broken}"


def test_a_planted_drift_is_caught(tmp_path):
    """The checks above would see a second page that restates a measured figure."""
    name, home, pattern = HOMES[0]
    assert pattern.search("make setup  # under a minute")
    assert pattern.search("The set-up takes about 2 minutes")
    assert not pattern.search("make setup  # once; time and size: docs/authoring.md")
