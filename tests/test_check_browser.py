"""scripts/check_browser.py: a tiny site, one page per rule broken, checked in one headless Chromium
session, plus the rules' text logic without a browser. Chromium and chromedriver are installed by
scripts/setup.sh: these tests never skip."""

from __future__ import annotations

import json
import struct
import sys
import zlib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "scripts"))

import check_browser  # noqa: E402

LABELS = ["vae-loss", "score-function", "free-bits"]
WORD_LABELS = ["score-function"]
PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{name}</title></head>
<body><main><article class="bd-article" style="width:700px">{body}</article></main></body></html>"""


def png(width: int, height: int) -> bytes:
    """A grey PNG, written by hand (an independent reference for the screenshots' header)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    raw = b"".join(b"\x00" + b"\x80" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


def png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", f"{path} is not a PNG"
    return struct.unpack(">II", data[16:24])


def notebook(*sources: str) -> str:
    cells = [
        {"cell_type": "code", "metadata": {}, "source": s, "outputs": [], "execution_count": None} for s in sources
    ]
    cells.insert(0, {"cell_type": "markdown", "metadata": {}, "source": "# A notebook\nplt.show( in prose"})
    return json.dumps({"cells": cells, "metadata": {}, "nbformat": 4, "nbformat_minor": 5})


OUTPUT_IMG = '<div class="cell_output"><img alt="figure" src="../fig.png" width="64"></div>'
BARS = "".join(f"epoch {i}: {i * 20}%|##   | {i}/5 [00:0{i}<00:01, 3.1it/s]\n" for i in range(1, 7))
EQUATION = '<div class="math" id="equation-{id}"><span class="eqno">({n})</span><mjx-container display="true" ' \
    'class="MathJax"><mjx-math style="display:inline-block;width:{w}px">x</mjx-math></mjx-container></div>'

PAGES = {
    # every rule almost broken: the page must pass
    "notebooks/clean": (
        "<h1>A clean notebook page</h1>"
        "<p>The score-function estimator; pytorch-fid, torch-fidelity and clean-fid; run "
        "<code>source .venv/bin/activate</code>; a ratio 3:2 and time 12:30:15.</p>"
        + EQUATION.format(id="narrow", n="1.1", w=600)
        + '<div class="cell_input"><pre># a role in code is not MyST: {eq}`x`, :::</pre></div>'
        + OUTPUT_IMG + OUTPUT_IMG
        + "<pre>" + "".join(BARS.splitlines(keepends=True)[:5]) + "</pre>"
        + '<img alt="inline" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAAAAAA6fptVAAAACklEQVR4'
        'nGNgAAAAAgABSK+kcQAAAABJRU5ErkJggg==">'
        + '<div style="height:2400px">tall</div>'
    ),
    "console_error": "<p>Text</p><script>console.error('boom from the page')</script>",
    "script_error": "<p>Text</p><script>thisFunctionDoesNotExist()</script>",
    "remote": '<p>Text</p><img alt="remote" src="http://example.invalid/x.png">',
    "notebooks/missing": "<h1>Figures</h1>" + OUTPUT_IMG,
    "progress": "<pre>" + BARS + "</pre>",
    "wide": EQUATION.format(id="narrow", n="2.1", w=600) + EQUATION.format(id="vae-elbo", n="2.2", w=2000),
    "raw_role": "<p>As in {eq}`vae-loss`, the loss is small.</p>",
    "raw_table": "<p>| model | loss | | :– | –: | | a | 1.0 |</p>",
    "raw_label": "<p>The loss vae-loss is small.</p>",
    "raw_word_label": "<p>The estimator (score-function) is unbiased.</p>",
    "code_label": '<div class="cell_input"><pre># YOUR CODE HERE: equation (vae-loss)</pre></div>',
    "machine_path": "<p>Downloaded to /root/.cache/torch/hub.</p>",
}
RULE = {  # the rule each page breaks (None: the clean page)
    "notebooks/clean": None,
    "console_error": "console-error",
    "script_error": "console-error",
    "remote": "remote-request",
    "notebooks/missing": "missing-figures",
    "progress": "progress-bars",
    "wide": "wide-equation",
    "raw_role": "raw-markup",
    "raw_table": "raw-markup",
    "raw_label": "raw-label",
    "raw_word_label": "raw-label",
    "code_label": "raw-label",
    "machine_path": "machine-path",
}


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    base = tmp_path_factory.mktemp("site")
    html, notebooks = base / "html", base / "notebooks"
    (html / "notebooks").mkdir(parents=True)
    notebooks.mkdir()
    (html / "fig.png").write_bytes(png(8, 8))
    for name, body in PAGES.items():
        (html / f"{name}.html").write_text(PAGE.format(name=name, body=body), encoding="utf-8")
    # clean: 2 figures drawn (the commented-out call does not count), 2 shown
    (notebooks / "clean.ipynb").write_text(notebook("plt.plot([1])\nplt.show()", "# plt.show()\nplt.show()  # one"))
    # missing: 3 figures drawn, 1 shown
    (notebooks / "missing.ipynb").write_text(notebook("for _ in range(1):\n    plt.show()", "plt.show()\nplt.show()"))
    shots = base / "shots"
    try:
        browser = check_browser.browser()
        driver = browser.__enter__()
    except SystemExit as error:  # not a skip: CI installs Chromium (scripts/setup.sh)
        pytest.fail(str(error))
    try:
        pages = list(PAGES) + ["not_built"]
        reports = check_browser.check_site(
            html, pages, notebooks, LABELS, WORD_LABELS, screenshots=shots, driver=driver
        )
    finally:
        browser.__exit__(None, None, None)
    return {r.page.removesuffix(".html"): r for r in reports}, shots


def rules(report) -> set[str]:
    return {p.split("]")[0].lstrip("[") for p in report.problems}


def test_clean_page_passes(site):
    reports, _ = site
    clean = reports["notebooks/clean"]
    assert clean.problems == []
    assert (clean.images, clean.figures) == (2, 2)


@pytest.mark.parametrize("name", [n for n, rule in RULE.items() if rule])
def test_each_broken_rule_is_reported(site, name):
    reports, _ = site
    report = reports[name]
    assert RULE[name] in rules(report), report.problems
    also = {"remote": "console-error", "raw_role": "raw-label"}  # the failed load is logged; the role's target
    allowed = {RULE[name], also.get(name)}
    assert rules(report) <= allowed, report.problems
    assert all(p.startswith("[") for p in report.problems)


def test_problem_details(site):
    reports, _ = site
    text = {name: "\n".join(r.problems) for name, r in reports.items()}
    assert "boom from the page" in text["console_error"]
    assert "thisFunctionDoesNotExist" in text["script_error"]
    assert "http://example.invalid/x.png" in text["remote"]
    assert "1 images in cell outputs, the notebook draws 3 figures" in text["notebooks/missing"]
    assert (reports["notebooks/missing"].images, reports["notebooks/missing"].figures) == (1, 3)
    assert "6 progress-bar lines" in text["progress"]
    assert "(2.2)" in text["wide"] and "2000 px" in text["wide"] and "700 px" in text["wide"]
    assert "(2.1)" not in text["wide"]  # the narrow one fits
    assert "'{eq}'" in text["raw_role"]
    assert "'vae-loss'" in text["raw_label"] and "'score-function'" in text["raw_word_label"]
    assert "/root/" in text["machine_path"]
    assert reports["not_built"].problems == ["[missing-page] not_built.html is not in the build"]


def test_screenshots_are_full_pages(site):
    reports, shots = site
    for name, report in reports.items():
        if name == "not_built":
            assert not (shots / "not_built.png").exists()
            continue
        width, height = png_size(shots / f"{name.replace('/', '__')}.png")
        assert width == check_browser.WIDTH
        assert height == max(check_browser.HEIGHT, report.height), name
    assert reports["notebooks/clean"].height > 2400  # the tall page got a tall screenshot


# ----------------------------------------------------------------------------- without a browser


def test_figures_drawn(tmp_path):
    nb = tmp_path / "n.ipynb"
    nb.write_text(notebook("plt.show()\nx = 1  # plt.show()", "# plt.show()", "fig.show()\nplt.show(block=False)"))
    assert check_browser.figures_drawn(nb) == 2


def test_book_labels(tmp_path):
    book, notebooks = tmp_path / "book", tmp_path / "notebooks"
    book.mkdir()
    notebooks.mkdir()
    (book / "a.md").write_text(
        "$$ x $$ (fid)\n\n$$ y $$ (vae-loss)\n\nSee {eq}`vae-loss` and (free-bits)=\n\n"
        "## The score-function estimator\n\n$$\nz\n$$ (score-function)\n"
    )
    (notebooks / "n.ipynb").write_text(
        json.dumps({"cells": [
            {"cell_type": "markdown", "source": ["Free-bits keep units alive.\n", "$$ w $$ (free-bits)"]},
            {"cell_type": "code", "source": "# equation (vae-loss)", "outputs": []},
        ]})
    )
    labels, words = check_browser.book_labels(book, notebooks)
    assert labels == ["score-function", "vae-loss"]  # fid has no hyphen; free-bits is defined in a notebook
    assert words == ["score-function"]  # vae-loss appears only as a definition, a role target, in code


@pytest.mark.parametrize(
    ("prose", "found"),
    [
        ("pytorch-fid and torch-fidelity and clean-fid", set()),
        ("the vae-loss-like term, xvae-loss, vae-loss2", set()),
        ("Vae-loss in a heading", set()),
        ("(vae-loss)", {"vae-loss"}),
        ("vae-loss.", {"vae-loss"}),
        ("The score-function estimator", set()),
        ("as in (score-function)", {"score-function"}),
    ],
)
def test_label_rule(prose, found):
    problems = check_browser.text_problems(prose, prose, ["vae-loss", "score-function"], ["score-function"], ())
    assert {p.split("'")[1] for p in problems} == found, problems


def test_text_rules_look_at_text_or_prose():
    bars = "\n".join(f"{i}/9 [00:0{i}<00:05]" for i in range(6))
    assert check_browser.text_problems(bars, "", [], [], ()) != []
    assert check_browser.text_problems(bars.rsplit("\n", 1)[0], "", [], [], ()) == []  # 5 lines are fine
    assert check_browser.text_problems("x {eq}`a` ::: ```{note}", "", [], [], ()) == []  # code: not prose
    assert check_browser.text_problems("# see (vae-loss)", "", ["vae-loss"], [], ()) != []  # labels: anywhere
    assert len(check_browser.text_problems("", "{cite:p}`x` ::: ```{note}", [], [], ())) == 3
    paths = ("/work/main", "/tmp/", "/.venv")
    assert check_browser.text_problems("see .venv/bin/activate", "", [], [], paths) == []
    assert len(check_browser.text_problems("/work/main/.venv/lib and /tmp/x", "", [], [], paths)) == 3


def test_remote_urls():
    def entry(method, **params):
        return {"message": json.dumps({"message": {"method": method, "params": params}})}

    log = [
        entry("Network.requestWillBeSent", request={"url": "http://127.0.0.1:8000/a.html"}),
        entry("Network.requestWillBeSent", request={"url": "http://localhost:8000/b.js"}),
        entry("Network.requestWillBeSent", request={"url": "data:image/png;base64,AAAA"}),
        entry("Network.requestWillBeSent", request={"url": "blob:http://127.0.0.1:8000/x"}),
        entry("Network.requestWillBeSent", request={"url": "https://unpkg.com/thebe.js"}),
        entry("Network.requestWillBeSent", request={"url": "https://unpkg.com/thebe.js"}),
        entry("Network.responseReceived", response={"url": "https://cdn.example/late.js"}),
        entry("Network.webSocketCreated", url="wss://kernel.example/ws"),
        entry("Network.requestWillBeSent", request={"url": "http://127.0.0.2/"}),  # loopback too
        entry("Network.requestWillBeSent", request={"url": "http://[::1]:8000/c.css"}),
        entry("Network.requestWillBeSent", request={"url": "http://10.0.0.1/x"}),
    ]
    assert check_browser.remote_urls(log) == [
        "https://unpkg.com/thebe.js", "wss://kernel.example/ws", "http://10.0.0.1/x"
    ]


def test_check_book_flags_remote_loads_but_not_the_canonical_address():
    import check_book

    page = ('<link rel="canonical" href="https://example.org/book/a.html">'
            '<script src="https://cdn.example.org/x.js"></script><link rel="stylesheet" href="//cdn.example.org/y.css">'
            '<img src="_images/z.png">')
    assert check_book.remote_loads(page) == ['<script src="https://cdn.example.org/x.js"',
                                             '<link rel="stylesheet" href="//cdn.example.org/y.css"']
