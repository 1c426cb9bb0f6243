"""Names that must not go stale: every lesson notebook that the docs' navigation (`mkdocs.yml`), the README and the
lessons' own words name exists, and every lesson is in the navigation and in the README's table of notebooks."""
import json, re

from conftest import ROOT

NAME = re.compile(r"\b(\d\d_[a-z][a-z_]*)(?:\.ipynb)?\b")
LESSONS = {p.stem for p in (ROOT / "nbs").glob("[0-9][0-9]_*.ipynb")}

def markdown(nb_path) -> str:
    return "\n".join("".join(c["source"]) for c in json.loads(nb_path.read_text())["cells"] if c["cell_type"] == "markdown")

def named(text: str) -> set[str]:
    return set(NAME.findall(text))

def test_the_docs_navigation_lists_every_lesson_and_nothing_else():
    nav = (ROOT / "mkdocs.yml").read_text().split("nav:", 1)[1]
    assert named(nav) == LESSONS, f"missing: {sorted(LESSONS - named(nav))}; not lessons: {sorted(named(nav) - LESSONS)}"

def test_the_readme_names_every_lesson_and_only_lessons():
    for text, where in [((ROOT / "README.md").read_text(), "README.md"), (markdown(ROOT / "nbs" / "index.ipynb"), "index")]:
        assert named(text) <= LESSONS, f"{where} names notebooks that do not exist: {sorted(named(text) - LESSONS)}"
        assert LESSONS <= named(text), f"{where}'s table of notebooks lacks {sorted(LESSONS - named(text))}"

def test_lessons_point_at_lessons_that_exist():
    for nb in sorted((ROOT / "nbs").glob("[0-9][0-9]_*.ipynb")):
        text = markdown(nb)
        assert named(text) <= LESSONS, f"{nb.name} names notebooks that do not exist: {sorted(named(text) - LESSONS)}"
        assert not re.search(r"\blesson \d\d\b", text), f"{nb.name}: refer to a lesson by its name (`05_fusion`), not its number"
