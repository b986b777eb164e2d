"""The glossary and the teaching guide: complete, linked, and in step with the measured numbers."""

from __future__ import annotations

import re

import nbformat
import pytest

from labs import site
from labs.course import LESSONS
from labs.paths import NOTEBOOKS_DIR, REPO_ROOT, SOLUTIONS_DIR

DOCS = REPO_ROOT / "docs"
GLOSSARY = (DOCS / "glossary.md").read_text(encoding="utf-8")
TEACHING = (DOCS / "teaching.md").read_text(encoding="utf-8")
NUMBERS = {lesson.number for lesson in LESSONS}
HAN = re.compile(r"[\u4e00-\u9fff]")


def glossary_rows() -> list[list[str]]:
    rows = []
    for line in GLOSSARY.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if line.startswith("|") and len(cells) == 4 and cells[0] not in ("English", "---"):
            rows.append(cells)
    return rows


# ------------------------------------------------------------------ glossary


def test_glossary_has_60_to_100_terms_each_with_chinese_a_definition_and_a_lesson():
    rows = glossary_rows()
    assert 60 <= len(rows) <= 100, len(rows)
    for english, chinese, meaning, lessons in rows:
        assert english and HAN.search(chinese), f"{english!r}: no Chinese term ({chinese!r})"
        assert len(meaning.split()) >= 4 and "\n" not in meaning, f"{english!r}: {meaning!r}"
        assert re.fullmatch(r"\d\d(, \d\d)*", lessons), f"{english!r}: lesson column {lessons!r}"
    english = [r[0].lower() for r in rows]
    assert len(set(english)) == len(english), "a term is listed twice"
    assert english == sorted(english), "keep the glossary in alphabetical order"


def test_every_glossary_lesson_reference_is_a_real_lesson():
    for english, _, _, lessons in glossary_rows():
        for number in lessons.split(", "):
            assert number in NUMBERS, (
                f"{english!r} names lesson {number}, not in labs.course.LESSONS"
            )


def test_glossary_covers_every_lesson():
    cited = {n for row in glossary_rows() for n in row[3].split(", ")}
    assert cited == NUMBERS, f"lessons without a glossary term: {sorted(NUMBERS - cited)}"


@pytest.mark.parametrize(
    ("english", "chinese"),
    [
        ("attention", "注意力"),
        ("in-context learning", "情景学习"),
        ("in-context learning", "上下文学习"),
        ("chain-of-thought", "思维链"),
        ("reward model", "奖励模型"),
        ("diffusion model", "扩散模型"),
        ("latent space", "潜在空间"),
        ("perplexity", "困惑度"),
        ("tokenizer", "分词器"),
    ],
)
def test_glossary_has_the_core_terms(english, chinese):
    rows = {r[0].split(" (")[0].lower(): r for r in glossary_rows()}
    assert english in rows, f"glossary misses {english!r}"
    assert chinese in rows[english][1]


@pytest.mark.parametrize("folder", [SOLUTIONS_DIR, NOTEBOOKS_DIR])
def test_lesson_00_links_the_glossary(folder):
    path = folder / "00_welcome.ipynb"
    nb = nbformat.read(path, as_version=4)
    text = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    links = re.findall(r"\]\(([^)\s]*glossary\.md)\)", text)
    assert links, f"{path.name} should link the glossary (docs/glossary.md)"
    for link in links:
        assert (folder / link).resolve() == (DOCS / "glossary.md").resolve(), link


def test_relative_links_in_the_docs_point_at_files_that_exist():
    for doc in ("teaching.md", "glossary.md"):
        text = (DOCS / doc).read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)\s#]+)(?:#[^)]*)?\)", text):
            if re.match(r"^[a-z]+:", target):
                continue
            assert (DOCS / target).exists(), f"docs/{doc} links {target}, which does not exist"


# ------------------------------------------------------------------ teaching guide


def test_teaching_runtime_table_is_generated_from_the_measured_numbers():
    assert site.update_docs(check=True), (
        "docs/teaching.md's runtime table is out of date (README course map or a lesson's title "
        "cell changed): run `python -m labs.site --update-docs`"
    )


def test_teaching_table_rows_come_from_the_title_cells_and_mark_the_rest():
    block = TEACHING.split(site.BEGIN)[1].split(site.END)[0]
    for fact in site.lesson_facts():
        row = next(
            line for line in block.splitlines() if line.startswith(f"| {fact.lesson.number} |")
        )
        if fact.written:
            assert fact.learner_time and fact.learner_time in row, (fact.lesson.stem, row)
        else:
            assert row.count(site.TO_MEASURE) == 4, row


@pytest.mark.parametrize(
    "needle",
    [
        "### Half day",
        "### One day",
        "### Two days",
        "python -m labs.run --mode full --which solutions",
        "AIGC_LAB_CACHE",
        "data/cache/",
        "The Littlest JupyterHub",
        "Zero to JupyterHub",
        "/hub/user-redirect/git-pull?repo=",
        "pip download -r requirements.txt -d wheelhouse",
        "pip install --no-index --find-links wheelhouse -r requirements.txt",
        "download.pytorch.org/whl/cpu",
        "Kernel died",
        "NOT DONE YET",
        "widget",
        "first run",
        r".venv\Scripts\activate",
        "python -m labs.site",
    ],
)
def test_teaching_guide_covers(needle):
    assert needle in TEACHING, f"docs/teaching.md should cover {needle!r}"


def test_agenda_slots_for_unmeasured_lessons_say_so():
    facts = site.lesson_facts()
    for line in TEACHING.splitlines():
        for fact in facts:
            if site._minutes(fact.learner_time) is None and re.search(
                rf"\| \[?{fact.lesson.number} · ", line
            ):
                assert "to be measured" in line, line


def test_agendas_take_slot_lengths_from_learner_times_and_add_up():
    facts = site.lesson_facts(readme="")
    by_number = {f.lesson.number: f for f in facts}
    by_number["01"].learner_time = "about 90 minutes"
    by_number["10"].learner_time = None  # a lesson not written yet: no link, planned length
    by_number["10"].written = False
    slots = (
        site.Slot("{lesson}", "01"),
        site.Slot("break", minutes=15),
        site.Slot("{lesson} (half)", "01", share=0.5),
        site.Slot("{lesson}", "10"),
    )
    table = site.agenda_table(slots, facts, start=9 * 60).splitlines()
    assert table[2].startswith("| 9:00 | [01 · Attention](../notebooks/01_attention.ipynb) | 90 |")
    assert table[3] == "| 10:30 | break | 15 |"
    assert table[4].endswith("(half) | 45 |")
    assert table[5] == "| 11:30 | 10 · Text-to-image | *60 planned* (to be measured) |"
    assert table[-1] == (
        "Total: 3 h 30 min, breaks included; 1 slot(s) are planned lengths, to be measured."
    )


def test_every_agenda_is_in_the_teaching_guide():
    for name in site.AGENDAS:
        assert f"<!-- agenda:{name}:begin" in TEACHING, name


# ------------------------------------------------------------------ the facts behind the table


def test_readme_runtimes_parse_measured_and_missing_rows():
    readme = (
        "| # | lesson | you build | smoke | full (2-core CPU) |\n|---|---|---|---|---|\n"
        "| 00 | [welcome](notebooks/00_welcome.ipynb) | check | 10 s | 12 s |\n"
        "| 04 | in-context learning | a model | — | — |\n"
    )
    assert site._readme_runtimes(readme) == {"00": ("10 s", "12 s"), "04": (None, None)}
    wider = readme.replace("| smoke |", "| learner time | smoke |").replace(
        "| b |", "| b | 20 min |"
    )
    wider = wider.replace("| check |", "| check | 20 min |").replace(
        "| a model |", "| a model | ? |"
    )
    assert site._readme_runtimes(wider) == {"00": ("10 s", "12 s"), "04": (None, None)}
    assert site._readme_runtimes((REPO_ROOT / "README.md").read_text())["00"][0], (
        "the README course map's smoke column was not found"
    )


def test_totals_add_measured_lessons_and_count_the_rest():
    facts = site.lesson_facts(
        readme="| # | l | b | smoke | full |\n| 00 | w | b | 10 s | 12 s |\n| 03 | g | b | 19 s | 5.5 min |"
    )
    table = site.runtime_table(facts)
    total = table.splitlines()[-1]
    written = [f for f in facts if f.written]
    minutes = sum(site._minutes(f.learner_time) or 0 for f in written)
    assert f"**{minutes} min**" in total
    assert f"**{(12 + 330) / 60:.1f} min** + {len(LESSONS) - 2} lesson(s) to be measured" in total
    assert site._minutes("about 90 minutes (five exercises)") == 90
    assert site._minutes("about 1.5 hours") == 90
    assert site._minutes(None) is None
    assert site._seconds("332 s") == 332 and site._seconds("—") is None


def test_update_docs_rewrites_only_the_generated_block(tmp_path):
    doc = tmp_path / "teaching.md"
    doc.write_text(f"before\n\n{site.BEGIN}\nstale\n{site.END}\n\nafter\n", encoding="utf-8")
    assert not site.update_docs(check=True, path=doc)
    assert "stale" in doc.read_text()
    assert not site.update_docs(path=doc)
    text = doc.read_text()
    assert text.startswith("before\n\n") and text.endswith("\n\nafter\n") and "stale" not in text
    assert site.update_docs(check=True, path=doc)


# ------------------------------------------------------------------ README and CI


def test_readme_points_readers_and_instructors_at_the_docs_and_the_site():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert "(docs/teaching.md)" in readme and "(docs/glossary.md)" in readme
    assert "python -m labs.site" in readme


def test_ci_installs_the_docs_requirements_and_builds_the_site():
    ci = (REPO_ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert "pip install --quiet -r requirements-docs.txt" in ci
    assert re.search(r"^python -m labs\.site .*--out build/site", ci, re.M)
    assert "AIGC_LAB_REQUIRE_DOCS=1" in ci
    pins = (REPO_ROOT / "requirements-docs.txt").read_text().splitlines()
    pins = [p for p in pins if p.strip() and not p.startswith("#")]
    assert pins and all(re.fullmatch(r"[\w.-]+==[\w.]+", p) for p in pins), pins
