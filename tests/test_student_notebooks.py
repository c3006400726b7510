"""The student copies (student/*.ipynb) are current, free of MyST, and hide or drop every solution."""

import importlib.util
import json
import re
import shutil
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _load(name, path):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


sn = _load("student_notebooks", ROOT / "scripts" / "student_notebooks.py")
launch = _load("student_launch", ROOT / "_ext" / "student_launch.py")

SOURCES = sorted((ROOT / "notebooks").glob("*.ipynb"))
BASE = "https://example.org/course/"
# The source's solutions, read with a pattern of its own (not the script's parser).
SOLUTION = re.compile(r"^:::\{admonition\} Solution\n:class: dropdown\n(.*?)^:::$", re.S | re.M)
CODE = re.compile(r"^```\w*\n(.*?)^```$", re.S | re.M)
RAW_MYST = [
    re.compile(r"\{(doc|eq|cite|cite:p|cite:t|numref|ref)\}`"),
    re.compile(r"^\s*:::", re.M),
    re.compile(r"^\s*```\{", re.M),
    re.compile(r"^\s*\([^()\s]+\)=\s*$", re.M),
    re.compile(r"\$\$\s*\([^()\s]+\)\s*$", re.M),
]


def markdown_cells(nb):
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def solutions(path):
    """The code of every solution dropdown of a source notebook."""
    found = []
    for text in markdown_cells(json.loads(path.read_text())):
        for block in SOLUTION.findall(text):
            found += CODE.findall(block)
    return found


@pytest.fixture(scope="module")
def book():
    return sn.load_book(ROOT)


@pytest.fixture(scope="module")
def assignment_copies():
    return {name: json.loads(text) for name, text in sn.expected(ROOT, assignment=True).items()}


def student_copies():
    return [(p.name, json.loads((ROOT / "student" / p.name).read_text())) for p in SOURCES]


# --- the committed copies -----------------------------------------------------------------------


def test_student_copies_are_up_to_date():
    problems = sn.stale(ROOT)
    assert not problems, "run `python scripts/student_notebooks.py`; stale: " + ", ".join(problems)


def test_every_source_has_a_student_copy():
    assert SOURCES
    assert sorted(p.name for p in (ROOT / "student").glob("*.ipynb")) == [p.name for p in SOURCES]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_copy_keeps_code_ids_and_metadata(source):
    src = json.loads(source.read_text())
    dst = json.loads((ROOT / "student" / source.name).read_text())
    assert dst["metadata"] == src["metadata"]
    assert dst["metadata"].get("kernelspec")
    assert [c.get("id") for c in dst["cells"]] == [c.get("id") for c in src["cells"]]
    for a, b in zip(src["cells"], dst["cells"], strict=True):
        assert a["cell_type"] == b["cell_type"] and a["metadata"] == b["metadata"]
        if a["cell_type"] == "code":
            assert a["source"] == b["source"]
            assert b["outputs"] == [] and b["execution_count"] is None


@pytest.mark.parametrize("name, nb", student_copies(), ids=lambda x: x if isinstance(x, str) else "")
def test_no_raw_myst_in_student_copy(name, nb):
    for index, text in enumerate(markdown_cells(nb)):
        for pattern in RAW_MYST:
            match = pattern.search(text)
            assert not match, f"{name}, markdown cell {index}: raw MyST {match.group(0)!r}"


@pytest.mark.parametrize("name, nb", student_copies(), ids=lambda x: x if isinstance(x, str) else "")
def test_every_solution_is_inside_details(name, nb):
    expected = solutions(ROOT / "notebooks" / name)
    text = "\n".join(markdown_cells(nb))
    # Every fenced code block of a Markdown cell lies between <details> and </details>.
    for match in CODE.finditer(text):
        before = text[: match.start()]
        assert before.count("<details>") == before.count("</details>") + 1, f"{name}: code outside <details>"
    assert text.count("<details><summary>Solution</summary>") == len(expected)
    for code in expected:
        assert code in text, f"{name}: a solution is missing from the student copy"


def test_there_are_solutions_to_hide():
    assert sum(len(solutions(p)) for p in SOURCES) >= 10


def test_assignment_copy_has_no_solution(assignment_copies):
    assert sorted(assignment_copies) == [p.name for p in SOURCES]
    for source in SOURCES:
        nb = assignment_copies[source.name]
        every_cell = "\n".join("".join(c["source"]) for c in nb["cells"])
        markdown = "\n".join(markdown_cells(nb))
        assert "<details>" not in markdown and "Solution" not in markdown
        src = json.loads(source.read_text())
        code_cells = [c["source"] for c in nb["cells"] if c["cell_type"] == "code"]
        assert code_cells == [c["source"] for c in src["cells"] if c["cell_type"] == "code"], "stubs must stay"
        for code in solutions(source):
            assert code.strip() not in every_cell
            body = [x.strip() for x in code.split("\n") if x.strip() and not x.strip().startswith(("def ", "#"))]
            for line in body:
                assert line not in markdown, f"{source.name}: solution line {line!r} left in the assignment copy"


def test_assignment_command_writes_the_copies(tmp_path):
    assert sn.main(["--assignment", str(tmp_path / "out")]) == 0
    written = sorted(p.name for p in (tmp_path / "out").glob("*.ipynb"))
    assert written == [p.name for p in SOURCES]


# --- staleness check can fail ----------------------------------------------------------------------


def test_check_reports_outdated_missing_and_orphaned_copies(tmp_path):
    for name in ("notebooks", "book"):
        shutil.copytree(ROOT / name, tmp_path / name)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    sn.write(tmp_path / "student", sn.expected(tmp_path), remove_others=True)
    assert sn.stale(tmp_path) == []
    first, second = SOURCES[0].name, SOURCES[1].name
    nb = json.loads((tmp_path / "notebooks" / first).read_text())
    cell = [c for c in nb["cells"] if c["cell_type"] == "markdown"][-1]
    cell["source"] = cell["source"] + ["\n", "One more line.\n"]
    (tmp_path / "notebooks" / first).write_text(json.dumps(nb, indent=1) + "\n")
    (tmp_path / "student" / second).unlink()
    (tmp_path / "student" / "99_gone.ipynb").write_text("{}")
    problems = sn.stale(tmp_path)
    assert f"student/{first} (outdated)" in problems
    assert f"student/{second} (missing)" in problems
    assert "student/99_gone.ipynb (no source notebook)" in problems
    assert len(problems) == 3


def test_output_is_deterministic():
    assert sn.expected(ROOT) == sn.expected(ROOT)


# --- equation numbers, titles, citations from the sources --------------------------------------------


@pytest.mark.parametrize(
    "label, number, page",
    [
        # Read off the built book by a reviewer (an independent reference).
        ("vae-loss", "3.1", "book/vae"),
        ("elbo-identity", "4.4", "book/elbo"),
        ("iwae-bound", "4.14", "book/elbo"),
        ("psnr", "9.1", "book/pixel_perceptual_metrics"),
        # Read off a complete build (Dec 2026): an indented equation in a list, a later chapter.
        ("free-bits", "6.4", "book/vae_failure_modes"),
        ("resize", "10.4", "book/fid_inception_score"),
        ("gen-mle", "2.3", "book/generative_viewpoint"),
    ],
)
def test_equation_numbers_match_the_book(book, label, number, page):
    assert book.equations[label] == (number, page)


def test_equation_numbering_rule(tmp_path):
    (tmp_path / "_config.yml").write_text("html:\n  baseurl: https://x.org/\n")
    (tmp_path / "_toc.yml").write_text(
        "root: intro\nparts:\n- caption: A\n  chapters:\n  - file: pre\n"
        "- caption: B\n  numbered: true\n  chapters:\n  - file: one\n    sections:\n    - file: nb\n"
        "- caption: C\n  numbered: true\n  chapters:\n  - file: two\n"
    )
    (tmp_path / "intro.md").write_text("# Intro\n")
    (tmp_path / "pre.md").write_text("# Pre\n$$\nx\n$$ (pre-eq)\n")
    (tmp_path / "one.md").write_text(
        "# One\n$$\na\n$$ (a)\n\n$$\nunlabelled\n$$\n\n```python\n$$ (not-an-equation)\n```\n\n"
        "```{note}\n$$ b $$ (b)\n```\n\n```{math}\n:label: c\nc\n```\n"
    )
    (tmp_path / "two.md").write_text("# Two\n  $$\n  d\n  $$ (d)\n")
    nb = {"cells": [{"cell_type": "markdown", "source": ["# NB\n", "$$\ne\n$$ (e)\n"]}]}
    (tmp_path / "nb.ipynb").write_text(json.dumps(nb))
    numbers = {label: n for label, (n, _) in sn.equation_numbers(tmp_path).items()}
    assert numbers == {"pre-eq": "1", "a": "1.1", "b": "1.2", "c": "1.3", "e": "1.4", "d": "2.1"}


def test_titles_and_citations(book):
    assert book.titles["book/vae"] == "From autoencoder to VAE"
    assert book.titles["notebooks/03_vae"].startswith("Notebook 3")
    assert book.baseurl == "https://genmodels-course.github.io/autoencoders-course/"
    assert book.citations["williams1992reinforce"] == ("Williams", "1992")
    assert book.citations["kingma2014vae"] == ("Kingma and Welling", "2014")
    assert book.citations["xiao2017fashion"] == ("Xiao et al.", "2017")
    assert book.citations["lancucki2020robust"] == ("Łańcucki et al.", "2020")
    assert book.citations["vandenoord2017vqvae"] == ("van den Oord et al.", "2017")


# --- conversion of small strings ------------------------------------------------------------------------


@pytest.fixture
def converter():
    fake = sn.Book(
        root=ROOT,
        baseurl=BASE,
        titles={"book/vae": "From autoencoder to VAE", "notebooks/01_ae": "Notebook 1: autoencoders"},
        equations={"vae-loss": ("3.1", "book/vae"), "nb-eq": ("3.2", "notebooks/01_ae")},
        citations={"kingma2014vae": ("Kingma and Welling", "2014"), "xiao2017": ("Xiao et al.", "2017")},
        targets={"sec-a": ("book/vae", "The section A")},
    )
    return sn.Converter(fake, docname="notebooks/01_ae")


REFS = f"{BASE}book/references.html"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("see {doc}`../book/vae`.", f"see [From autoencoder to VAE]({BASE}book/vae.html)."),
        ("see {doc}`that page <../book/vae>`", f"see [that page]({BASE}book/vae.html)"),
        ("see {doc}`01_ae`", f"see [Notebook 1: autoencoders]({BASE}notebooks/01_ae.html)"),
        ("see {doc}`/book/vae`", f"see [From autoencoder to VAE]({BASE}book/vae.html)"),
        ("loss {eq}`vae-loss`,", f"loss [(3.1)]({BASE}book/vae.html#equation-vae-loss),"),
        ("as {cite}`kingma2014vae` say", f"as ([Kingma and Welling, 2014]({REFS})) say"),
        ("x {cite:p}`kingma2014vae`", f"x ([Kingma and Welling, 2014]({REFS}))"),
        ("{cite:t}`kingma2014vae` say", f"[Kingma and Welling (2014)]({REFS}) say"),
        (
            "{cite}`kingma2014vae, xiao2017`",
            f"([Kingma and Welling, 2014]({REFS}); [Xiao et al., 2017]({REFS}))",
        ),
        ("{ref}`sec-a`", f"[The section A]({BASE}book/vae.html#sec-a)"),
        ("{ref}`this one <sec-a>`", f"[this one]({BASE}book/vae.html#sec-a)"),
        ("{numref}`Section {number} <sec-a>`", f"[Section]({BASE}book/vae.html#sec-a)"),
        ("(sec-a)=\n## A", "## A"),
        ("$$\nx^2\n$$ (nb-eq)", "$$\nx^2\n\\tag{3.2} $$"),
        ("```python\nx = '{eq}`vae-loss`'\n```", "```python\nx = '{eq}`vae-loss`'\n```"),
    ],
)
def test_inline_conversions(converter, source, expected):
    assert converter.convert(source) == expected


def test_dropdown_solution(converter):
    code = "```python\ndef f(x):\n    return x\n```"
    source = f"Try it.\n\n:::{{admonition}} Solution\n:class: dropdown\n{code}\n:::\n\n## Next"
    expected = f"Try it.\n\n<details><summary>Solution</summary>\n\n{code}\n\n</details>\n\n## Next"
    assert converter.convert(source) == expected
    converter.assignment = True
    assert converter.convert(source) == "Try it.\n\n## Next"


def test_admonitions_become_blockquotes(converter):
    assert converter.convert(":::{note}\nMind {eq}`vae-loss`.\n:::") == (
        f"> **Note.** Mind [(3.1)]({BASE}book/vae.html#equation-vae-loss)."
    )
    assert converter.convert(":::{admonition} Why it works\nBecause.\nReally.\n:::") == (
        "> **Why it works.** Because.\n> Really."
    )
    assert converter.convert("```{tip}\nA tip.\n```") == "> **Tip.** A tip."
    assert converter.convert(":::{admonition} Hint\n:class: dropdown\nLook at it.\n:::") == (
        "<details><summary>Hint</summary>\n\nLook at it.\n\n</details>"
    )


@pytest.mark.parametrize(
    "source, message",
    [
        ("```{figure} a.png\n```", "directive {figure}"),
        (":::{image} a.png\n:::", "directive {image}"),
        ("{term}`x`", "unknown role {term}"),
        ("{eq}`nope`", "'nope'"),
        ("{cite}`nope`", "'nope'"),
        ("{doc}`../book/nope`", "not a page"),
        ("{numref}`sec-a`", "explicit text"),
        (":::{admonition} Solution\n```python\nx\n```\n:::", "must be a dropdown"),
        (":::{note}\nopen", "unclosed"),
    ],
)
def test_unconvertible_myst_fails_loudly(converter, source, message):
    with pytest.raises(sn.ConversionError, match=re.escape(message)):
        converter.convert(source)


def test_failure_names_notebook_and_cell(tmp_path, book):
    nb = {
        "cells": [{"cell_type": "markdown", "id": "abc", "metadata": {}, "source": ["```{figure} x.png\n```\n"]}],
        "metadata": {},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    path = tmp_path / "07_new.ipynb"
    path.write_text(json.dumps(nb))
    with pytest.raises(sn.ConversionError, match=r"07_new\.ipynb, cell 0 \(id abc\)"):
        sn.student_notebook(path, book)


# --- the launch-button extension ----------------------------------------------------------------------


def _launch_context(path):
    return {
        "header_buttons": [
            {"type": "group", "label": "download-buttons", "buttons": [{"type": "link", "url": f"_sources/{path}"}]},
            {
                "type": "group",
                "label": "launch-buttons",
                "buttons": [
                    {
                        "type": "link",
                        "text": "Colab",
                        "url": f"https://colab.research.google.com/github/o/r/blob/main/{path}",
                    },
                    {
                        "type": "link",
                        "text": "Binder",
                        "url": f"https://mybinder.org/v2/gh/o/r/main?urlpath=tree/{path}",
                    },
                ],
            },
        ]
    }


def test_launch_buttons_open_the_student_copy():
    app = SimpleNamespace(srcdir=str(ROOT), config={"html_theme_options": {}})
    name = SOURCES[0].stem
    context = _launch_context(f"notebooks/{name}.ipynb")
    launch.student_launch_buttons(app, f"notebooks/{name}", "page.html", context, None)
    colab, binder = context["header_buttons"][1]["buttons"]
    assert colab["url"] == f"https://colab.research.google.com/github/o/r/blob/main/student/{name}.ipynb"
    assert binder["url"].endswith(f"urlpath=tree/student/{name}.ipynb")
    assert context["header_buttons"][0]["buttons"][0]["url"] == f"_sources/notebooks/{name}.ipynb"
    # A written page keeps its buttons.
    context = _launch_context("book/vae.md")
    launch.student_launch_buttons(app, "book/vae", "page.html", context, None)
    assert context == _launch_context("book/vae.md")
