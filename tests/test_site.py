"""The static site: built offline from executed notebooks, readable, and loading nothing external.

The build test executes lesson 00 with the runner (smoke mode), then runs
``python -m labs.site --allow-missing`` with the network disabled, as a reader or CI would.
It needs the docs requirements (``pip install -r requirements-docs.txt``); without them it
is skipped, unless ``AIGC_LAB_REQUIRE_DOCS=1`` (CI) makes that a failure.
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path

import nbformat
import pytest
from offline import offline

from labs import site
from labs.paths import REPO_ROOT, SOLUTIONS_DIR

LESSON_STEMS = sorted(p.stem for p in SOLUTIONS_DIR.glob("*.ipynb"))


def _require_sphinx() -> None:
    missing = [
        m for m in ("sphinx", "myst_nb", "sphinx_book_theme") if not importlib.util.find_spec(m)
    ]
    if missing:
        if os.environ.get("AIGC_LAB_REQUIRE_DOCS") == "1":
            pytest.fail(f"{missing} required here (AIGC_LAB_REQUIRE_DOCS=1) but not installed")
        pytest.skip(f"{missing} not installed (pip install -r requirements-docs.txt)")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    _require_sphinx()
    tmp = tmp_path_factory.mktemp("site")
    env = dict(os.environ, AIGC_LAB_CACHE=str(tmp / "cache"))
    run = subprocess.run(
        [sys.executable, "-m", "labs.run", "00", "--which", "solutions", "--out", str(tmp / "run")],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-2000:]
    command, env, how = offline(
        [
            sys.executable,
            "-m",
            "labs.site",
            "--from",
            str(tmp / "run"),
            "--out",
            str(tmp / "site"),
            "--allow-missing",
        ],
        env,
    )
    proc = subprocess.run(
        command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=600
    )
    print(f"network disabled by: {how}\n{proc.stdout}\n{proc.stderr}")
    return proc, tmp / "site"


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def _tags(page: Path) -> list[tuple[str, dict[str, str | None]]]:
    parser = _Tags()
    parser.feed(page.read_text(encoding="utf-8"))
    return parser.tags


# ------------------------------------------------------------------ the real build, offline


def test_site_builds_offline_and_reports_size(built):
    proc, out = built
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "no external scripts, styles or images" in proc.stdout
    assert (out / "index.html").exists()


def test_no_page_loads_scripts_or_styles_from_outside(built):
    """Independent of labs.site's own check: every <script src> and <link href> is local."""
    _, out = built
    # _static/ holds the theme's Jinja macro files (*.html), not pages
    pages = sorted(p for p in out.rglob("*.html") if "_static" not in p.parts)
    assert len(pages) >= len(LESSON_STEMS) + 3
    for page in pages:
        for tag, attrs in _tags(page):
            url = (
                attrs.get("src")
                if tag == "script"
                else attrs.get("href")
                if tag == "link"
                else None
            )
            if url:
                assert not re.match(r"^([a-z]+:)?//", url, re.I), f"{page.name}: <{tag}> {url}"
                local = (page.parent / url.split("?")[0].split("#")[0]).resolve()
                assert local.exists(), f"{page.name}: <{tag}> {url} is missing from the site"
    assert site.external_resources(out) == []
    assert (out / "_static" / "mathjax" / "tex-chtml.js").exists(), "MathJax is served locally"


def test_index_has_the_course_map_every_lesson_the_guide_and_the_glossary(built):
    _, out = built
    index = (out / "index.html").read_text(encoding="utf-8")
    assert "Course map" in index
    hrefs = {a.get("href") for tag, a in _tags(out / "index.html") if tag == "a"}
    for stem in LESSON_STEMS:
        assert f"lessons/{stem}.html" in hrefs, f"index does not link lesson {stem}"
        assert (out / "lessons" / f"{stem}.html").exists()
    assert {"teaching.html", "glossary.html"} <= hrefs
    assert "注意力" in (out / "glossary.html").read_text(encoding="utf-8")
    assert "nbgitpuller" in (out / "teaching.html").read_text(encoding="utf-8")


def test_executed_lesson_shows_its_figures_and_outputs(built):
    _, out = built
    page = out / "lessons" / "00_welcome.html"
    html = page.read_text(encoding="utf-8")
    images = [a["src"] for tag, a in _tags(page) if tag == "img" and a.get("src")]
    assert len(images) >= 3, "lesson 00 draws figures; the site should show them"
    assert all((page.parent / src).exists() for src in images)
    text = " ".join(re.sub(r"<[^>]+>", " ", html).split())
    assert "python -m labs.run 00 --which solutions --mode smoke" in text
    assert "PASSED" in html.upper(), "the check's output is part of the page"
    assert "widget-view+json" not in html, "widget views need a kernel: replaced by a note"
    assert "Interactive controls appear here" in html
    hrefs = {a.get("href") for tag, a in _tags(page) if tag == "a"}
    assert "../glossary.html" in hrefs, "lesson 00's glossary link works on the site"


def test_lessons_not_executed_are_marked(built):
    _, out = built
    for stem in LESSON_STEMS:
        if stem != "00_welcome":
            html = (out / "lessons" / f"{stem}.html").read_text(encoding="utf-8")
            assert "has not been executed for this site" in html, stem


# ------------------------------------------------------------------ pieces, no Sphinx needed


def test_external_resources_finds_cdn_scripts_styles_images_and_css_imports(tmp_path):
    (tmp_path / "a.html").write_text(
        '<script src="https://cdn.jsdelivr.net/npm/mathjax@3/es5/tex-chtml.js"></script>'
        '<link rel="stylesheet" href="//fonts.googleapis.com/css?family=Lato">'
        '<img src="_images/ok.png"><script src="_static/ok.js"></script>'
        '<a href="https://arxiv.org/abs/1706.03762">a link a reader may click is fine</a>'
    )
    (tmp_path / "s.css").write_text(
        "@import url('https://fonts.example.org/x.css'); .a{background:url(ok.png)}"
    )
    found = site.external_resources(tmp_path)
    assert len(found) == 3, found
    assert any("<script> https://cdn.jsdelivr.net" in f for f in found)
    assert any("<link> //fonts.googleapis.com" in f for f in found)
    assert any("css https://fonts.example.org" in f for f in found)


def test_prepare_notebook_replaces_widgets_keeps_progress_text_and_fixes_links():
    widget = "application/vnd.jupyter.widget-view+json"
    nb = nbformat.v4.new_notebook(
        metadata={"widgets": {"application/vnd.jupyter.widget-state+json": {}}},
        cells=[
            nbformat.v4.new_markdown_cell(
                "# 00 · Title\n\nSee the [glossary](../docs/glossary.md) and "
                "[lesson 01](../notebooks/01_attention.ipynb)."
            ),
            nbformat.v4.new_code_cell(
                "explore(...)",
                outputs=[
                    nbformat.v4.new_output(
                        "display_data",
                        data={widget: {"model_id": "x"}, "text/plain": "VBox(children=(...))"},
                    ),
                    nbformat.v4.new_output(
                        "display_data",
                        data={
                            widget: {"model_id": "y"},
                            "text/plain": "100%|██| 5/5 [00:01<00:00]",
                        },
                    ),
                ],
            ),
        ],
    )
    out = site.prepare_notebook(nb, "00_welcome", "python -m labs.run 00 --mode smoke")
    assert "widgets" not in out.metadata and "widgets" in nb.metadata, "a copy; input untouched"
    assert "](../glossary.md)" in out.cells[0].source
    assert "](01_attention.ipynb)" in out.cells[0].source
    assert "smoke mode" in out.cells[1].source, "a note on how the page was made, after the title"
    outputs = out.cells[2].outputs
    assert all(widget not in o.get("data", {}) for o in outputs)
    assert "Interactive controls" in outputs[0].data["text/html"]
    assert outputs[1].data == {"text/plain": "100%|██| 5/5 [00:01<00:00]"}


def test_missing_executed_notebooks_fail_with_what_to_run(tmp_path):
    with pytest.raises(
        SystemExit, match=r"python -m labs\.run --which solutions --out .*--run smoke"
    ):
        site.stage(tmp_path / "src", tmp_path / "empty")


def test_staging_reports_stale_executed_copies(tmp_path):
    executed = tmp_path / "run" / "solutions"
    executed.mkdir(parents=True)
    for source in SOLUTIONS_DIR.glob("*.ipynb"):
        nb = nbformat.read(source, as_version=4)
        if source.stem == "00_welcome":
            nb.cells[
                next(i for i, c in enumerate(nb.cells) if c.cell_type == "code")
            ].source += "\n1"
        nbformat.write(nb, executed / source.name)
    warnings = site.stage(tmp_path / "src", tmp_path / "run")
    assert (
        [w for w in warnings if "older than" in w]
        == [w for w in warnings if "00_welcome" in w]
        != []
    )
    index = (tmp_path / "src" / "index.md").read_text(encoding="utf-8")
    assert site.COURSE_MAP_MARKER not in index and "(lessons/00_welcome.ipynb)" in index


def test_build_refuses_to_wipe_a_folder_that_is_not_a_site(tmp_path):
    (tmp_path / "precious.txt").write_text("keep me")
    with pytest.raises(SystemExit, match="not a site built before"):
        site.build(tmp_path / "run", tmp_path)
    assert (tmp_path / "precious.txt").exists()


def test_run_option_executes_the_solutions_with_the_runner_first(monkeypatch, tmp_path):
    import labs.run

    calls = []
    monkeypatch.setattr(labs.run, "run", lambda patterns, **kw: calls.append((patterns, kw)) or [])
    monkeypatch.setattr(site, "build", lambda *a, **kw: calls.append(("build", a, kw)))
    out = tmp_path / "run"
    assert site.main(["--run", "smoke", "--jobs", "2", "--from", str(out)]) == 0
    assert calls[0] == ([], {"which": "solutions", "mode": "smoke", "jobs": 2, "out": out})
    assert calls[1][0] == "build" and calls[1][1][0] == out
