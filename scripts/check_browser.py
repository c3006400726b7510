"""Check the built book in a real browser: every page of the table of contents is loaded by headless
Chromium (Debian's, driven by Selenium through Debian's chromedriver) from a loopback HTTP server this
script starts, at a 1280x900 window, and fails (exit 1, one line per problem naming the page and the
rule) when a page

- console-error:   logs a console error (browser log level SEVERE: `console.error`, an uncaught script
                   error, a resource that failed to load);
- remote-request:  makes a request that leaves the loopback address (every `Network.requestWillBeSent`
                   and `Network.webSocketCreated` URL of the performance log; `data:`, `blob:` and
                   `about:` URLs are fine). Chromium resolves no host name but the loopback ones
                   (--host-resolver-rules), so such a request is reported and never reaches the network;
- missing-figures: is a notebook page (`notebooks/NAME.html`) with fewer `img` elements inside cell
                   outputs (`.cell_output img`) than the figures its notebook draws: the number of
                   `plt.show(` calls in the code cells of `notebooks/NAME.ipynb` (commented-out lines
                   excluded; the notebooks are written so that each call shows one figure);
- progress-bars:   shows more than 5 progress-bar lines (lines of the visible text that match
                   `\\d+%\\|`, `\\d+/\\d+ \\[\\d+:\\d+<`, `it/s\\]` or `s/it\\]`);
- wide-equation:   has a display equation (MathJax 3 CHTML `mjx-container[display="true"]`, measured after
                   `MathJax.startup.promise` has resolved) wider than the text column: the width of its
                   `mjx-math` child (or the container's scrollWidth, whichever is larger) exceeds the
                   clientWidth of `article.bd-article` (else `main`) by more than 1 px. The problem names
                   the equation's number and the first characters of its TeX;
- raw-markup:      shows MyST markup that was not rendered, in its prose: `{eq}`, `{doc}`, `{cite}` (and
                   `{cite:p}` ...), `{numref}`, `{ref}`, `{math}`, `:::` or "```{", or the delimiter row of a
                   Markdown table that was not rendered (`| :-- | --: |`). The prose is the visible
                   text (document.body.innerText) less code blocks (`pre`, `div.highlight`) and notebook
                   code cells (`.cell_input`): code is never parsed as MyST. Markdown a cell displays (e.g.
                   `show_table`) is prose;
- raw-label:       shows anywhere in its visible text, code cells and their outputs included (readers meet
                   equation numbers, never label names: not in checker messages or code comments either),
                   an equation label of the book (the names in `$$ ... $$ (label)` in book/*.md).
                   The rule for labels: only labels containing a hyphen are looked for (`fid`, `psnr`,
                   `ssim`, `lpips`, `resize` are ordinary words and library names); a label matches as a
                   whole token, case-sensitively, not preceded or followed by `[A-Za-z0-9-]` (so
                   "pytorch-fid" or "torch-fidelity" never match); and a label that the course's own
                   prose uses as a word (it occurs, outside `$$ (label)` definitions and role targets, in
                   book/*.md or in a notebook's Markdown cell, e.g. "score-function" in "The score-function
                   estimator") is reported only in the form a leaked definition takes, "(label)";
- machine-path:    shows a path of the build machine in its visible text: the repository's absolute
                   path, `/root/`, `/home/`, `/tmp/`, `/.venv` (a path into the environment; the words
                   ".venv/bin/activate" of the instructions are fine), `site-packages`, `dist-packages`.

A page missing from the build is a problem too (missing-page), and so is a page that fails to load
(load). The window is sized so that the viewport is 1280x900 px; the server answers Chromium's own
/favicon.ico request with 204 No Content when the build has none (that request is the browser's, not
the page's).

It also saves a full-page screenshot of every page (the viewport made as tall as the page, at most
16000 px, taller pages in tiles NAME-2.png, ...) into --screenshots DIR, prints a table (page,
images, figures drawn, page height, problems)
and, with --json FILE, writes those numbers per page (and the seconds each page took).

Usage: python scripts/check_browser.py _build/html [--screenshots DIR] [--json FILE]
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import functools
import http.server
import ipaddress
import json
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from check_book import ROOT, toc_files  # noqa: E402

WIDTH, HEIGHT, MAX_SHOT_HEIGHT = 1280, 900, 16000
MAX_PROGRESS_LINES = 5
LOCAL_SCHEMES = {"data", "blob", "about"}
PROGRESS = re.compile(r"\d+%\||\d+/\d+ \[\d+:\d+<|it/s\]|s/it\]")
# MyST roles and directives, and a Markdown table's delimiter row (a table an output cell printed as a
# paragraph because it was not rendered as Markdown; smart quotes may have made its -- a dash)
RAW_MARKUP = re.compile(r"\{(?:eq|doc|cite(?::[a-z]+)?|numref|ref|math)\}|:::|```\{|\| ?:?(?:-{2,}|[–—]+):? ?\|")
MACHINE_PATHS = ("/root/", "/home/", "/tmp/", "/.venv", "site-packages", "dist-packages")
LABEL_DEF = re.compile(r"\$\$ *\(([A-Za-z0-9_-]+)\)")
ROLE_TARGET = re.compile(r"\{[a-z:]+\}`[^`]*`|^\([A-Za-z0-9_-]+\)=", re.M)

# Waits until MathJax (when the page loads it) has typeset the page and the fonts are ready.
WAIT_JS = """
const done = arguments[arguments.length - 1];
const hasMathJax = !!document.querySelector('script[src*="mathjax" i]');
const start = Date.now();
(function poll() {
  if (window.MathJax && MathJax.startup && MathJax.startup.promise) {
    Promise.all([MathJax.startup.promise, document.fonts.ready])
      .then(() => done('typeset'), (e) => done('error: ' + e));
  } else if (!hasMathJax) {
    document.fonts.ready.then(() => done('none'));
  } else if (Date.now() - start > 20000) {
    done('timeout');
  } else {
    setTimeout(poll, 25);
  }
})();
"""

# Everything measured on a page, in one round trip.
MEASURE_JS = """
const column = document.querySelector('article.bd-article') || document.querySelector('main');
const columnWidth = column ? column.clientWidth : document.documentElement.clientWidth;
const items = [];
try { for (const item of MathJax.startup.document.math) items.push(item); } catch (e) {}
const equations = [];
document.querySelectorAll('mjx-container[display="true"]').forEach((el, i) => {
  const math = el.querySelector(':scope > mjx-math');
  const width = Math.max(math ? math.getBoundingClientRect().width : 0, el.scrollWidth);
  const item = items.find((it) => it.typesetRoot === el);
  const block = el.closest('div.math');
  const eqno = block ? block.querySelector('.eqno') : null;
  equations.push({
    index: i + 1,
    width: width,
    number: eqno ? eqno.textContent.replace(/[^0-9.()]/g, '') : '',
    id: block && block.id ? block.id : '',
    tex: (item && item.math ? item.math : el.textContent).replace(/\\s+/g, ' ').trim().slice(0, 50),
  });
});
// the prose: the visible text without code blocks, notebook code cells and their text outputs
const hide = document.createElement('style');
hide.textContent = 'pre, .cell_input, div.highlight { display: none !important; }';
document.head.appendChild(hide);
const prose = document.body ? document.body.innerText : '';
hide.remove();
return {
  columnWidth: columnWidth,
  equations: equations,
  images: document.querySelectorAll('.cell_output img').length,
  height: Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0),
  text: document.body ? document.body.innerText : '',
  prose: prose,
};
"""


@dataclass
class PageReport:
    page: str
    images: int | None = None
    figures: int | None = None
    height: int | None = None
    problems: list[str] = field(default_factory=list)
    seconds: float | None = None


# ----------------------------------------------------------------------------- what to look for


def figures_drawn(notebook: Path) -> int:
    """Number of `plt.show(` calls in the code cells of a notebook (commented-out lines excluded)."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    count = 0
    for cell in cells:
        if cell.get("cell_type") != "code":
            continue
        source = cell["source"] if isinstance(cell["source"], str) else "".join(cell["source"])
        for line in source.splitlines():
            count += line.split("#", 1)[0].count("plt.show(")
    return count


def book_labels(book_dir: Path, notebooks_dir: Path | None = None) -> tuple[list[str], list[str]]:
    """(labels, word_labels): the hyphenated equation labels of book/*.md, and those of them that the
    course's prose (book/*.md, the notebooks' Markdown cells) also uses as words, outside definitions and
    role targets."""
    texts = [p.read_text(encoding="utf-8") for p in sorted(book_dir.glob("*.md"))]
    labels = sorted({m for text in texts for m in LABEL_DEF.findall(text) if "-" in m})
    if notebooks_dir is not None:
        for nb in sorted(notebooks_dir.glob("*.ipynb")):
            for cell in json.loads(nb.read_text(encoding="utf-8"))["cells"]:
                if cell.get("cell_type") == "markdown":
                    src = cell["source"]
                    texts.append(src if isinstance(src, str) else "".join(src))
    prose = "\n".join(ROLE_TARGET.sub(" ", LABEL_DEF.sub(" ", text)) for text in texts)
    words = [label for label in labels if _token(label, re.I).search(prose)]
    return labels, words


def _token(word: str, flags: int = 0) -> re.Pattern:
    return re.compile(rf"(?<![A-Za-z0-9-]){re.escape(word)}(?![A-Za-z0-9-])", flags)


def text_problems(
    text: str, prose: str, labels: list[str], word_labels: list[str], machine_paths: tuple[str, ...]
) -> list[str]:
    """The problems of a page's visible text (rules progress-bars, raw-label, machine-path) and of its prose,
    the visible text less code blocks and notebook code cells and text outputs (rule raw-markup)."""
    problems = []
    bars = [line for line in text.splitlines() if PROGRESS.search(line)]
    if len(bars) > MAX_PROGRESS_LINES:
        problems.append(
            f"[progress-bars] {len(bars)} progress-bar lines (at most {MAX_PROGRESS_LINES}), "
            f"first: {bars[0].strip()[:80]!r}"
        )
    for found in sorted({m.group(0) for m in RAW_MARKUP.finditer(prose)}):
        problems.append(f"[raw-markup] raw MyST markup {found!r} in {_context(prose, found)!r}")
    for label in labels:
        pattern = re.compile(re.escape(f"({label})")) if label in word_labels else _token(label)
        match = pattern.search(text)
        if match:
            problems.append(f"[raw-label] equation label {label!r} in {_context(text, match.group(0))!r}")
    for path in machine_paths:
        if path and path in text:
            problems.append(f"[machine-path] {path!r} in {_context(text, path)!r}")
    return problems


def _context(text: str, found: str, width: int = 30) -> str:
    at = text.find(found)
    return " ".join(text[max(0, at - width) : at + len(found) + width].split())


def remote_urls(performance_log: list[dict]) -> list[str]:
    """URLs of the performance log's requests that leave the loopback address."""
    urls = []
    for entry in performance_log:
        message = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
        elif message.get("method") == "Network.webSocketCreated":
            url = message["params"]["url"]
        else:
            continue
        if urlsplit(url).scheme in LOCAL_SCHEMES or is_loopback(url):
            continue
        if url not in urls:
            urls.append(url)
    return urls


def is_loopback(url: str) -> bool:
    host = (urlsplit(url).hostname or "").lower()
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# ----------------------------------------------------------------------------- the browser


@contextlib.contextmanager
def serve(directory: Path):
    """A loopback HTTP server for `directory` on a free port, in a thread; yields its base URL."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            # Chromium asks every server for /favicon.ico on its own; a book without one is no error
            if self.path == "/favicon.ico" and not (directory / "favicon.ico").is_file():
                self.send_response(204)
                self.end_headers()
                return
            super().do_GET()

    handler = functools.partial(Quiet, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def chromium_binary() -> str:
    # Debian's /usr/bin/chromium is a shell wrapper that adds flags of its own (extensions, GPU
    # rasterization); the browser it starts is /usr/lib/chromium/chromium.
    for candidate in (os.environ.get("CHROMIUM"), "/usr/lib/chromium/chromium", "/usr/bin/chromium"):
        if candidate and Path(candidate).is_file():
            return candidate
    raise SystemExit("check_browser: Chromium not found: run scripts/setup.sh (apt-get install chromium)")


@contextlib.contextmanager
def browser():
    """Headless Chromium through Debian's chromedriver, with a fresh profile that phones nowhere."""
    os.environ["SE_OFFLINE"] = "true"  # Selenium Manager never downloads a driver or a browser
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    driver_path = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
    if not Path(driver_path).is_file():
        raise SystemExit("check_browser: chromedriver not found: run scripts/setup.sh (chromium-driver)")
    profile = tempfile.mkdtemp(prefix="check-browser-")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium_binary()
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--disable-default-apps", "--disable-extensions", "--disable-dev-shm-usage",
        "--no-default-browser-check", "--disable-breakpad", "--disable-domain-reliability",
        "--hide-scrollbars", "--force-device-scale-factor=1",
        f"--window-size={WIDTH},{HEIGHT}", f"--user-data-dir={profile}",
        # no host name but the loopback ones resolves: a remote request fails at once, offline
        "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE localhost, EXCLUDE 127.0.0.1",
    ):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.set_page_load_timeout(60)
        driver.set_script_timeout(30)
        driver.get("about:blank")
        set_viewport(driver, WIDTH, HEIGHT)
        yield driver
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)


def set_viewport(driver, width: int, height: int) -> None:
    """Size the window so that the page's viewport (what a screenshot shows) is width x height: the
    window of headless Chromium is larger than its viewport by a margin that this measures."""
    margin = getattr(driver, "_viewport_margin", (0, 0))
    driver.set_window_size(width + margin[0], height + margin[1])
    inner = driver.execute_script("return [window.innerWidth, window.innerHeight]")
    if tuple(inner) != (width, height):
        margin = (margin[0] + width - inner[0], margin[1] + height - inner[1])
        driver._viewport_margin = margin
        driver.set_window_size(width + margin[0], height + margin[1])


def check_page(
    driver, base_url: str, page: str, *, figures: int | None, labels: list[str],
    word_labels: list[str], machine_paths: tuple[str, ...], screenshot: Path | None,
) -> PageReport:
    """Load one page (its path relative to the served folder) and check it against every rule."""
    report = PageReport(page=page, figures=figures)
    start = time.monotonic()
    set_viewport(driver, WIDTH, HEIGHT)
    driver.get(base_url + page)
    state = driver.execute_async_script(WAIT_JS)
    if state not in ("typeset", "none"):
        report.problems.append(f"[wide-equation] MathJax did not finish typesetting: {state}")
    data = driver.execute_script(MEASURE_JS)
    report.images, report.height = data["images"], int(data["height"])

    if figures is not None and report.images < figures:
        report.problems.append(
            f"[missing-figures] {report.images} images in cell outputs, the notebook draws {figures} figures"
        )
    column = data["columnWidth"]
    for eq in data["equations"]:
        if eq["width"] > column + 1:
            name = eq["number"] or eq["id"] or f"display equation #{eq['index']}"
            report.problems.append(
                f"[wide-equation] equation {name} is {eq['width']:.0f} px wide, the column {column} px: "
                f"{eq['tex']!r}"
            )
    report.problems += text_problems(data["text"], data["prose"], labels, word_labels, machine_paths)

    if screenshot is not None:
        screenshot.parent.mkdir(parents=True, exist_ok=True)
        # A page taller than one shot is saved in tiles, NAME.png, NAME-2.png, ...: the viewport is made as
        # tall as the tile and the page scrolled to it (captureBeyondViewport would upset the window's size).
        for i, top in enumerate(range(0, max(report.height, 1), MAX_SHOT_HEIGHT)):
            set_viewport(driver, WIDTH, max(HEIGHT, min(MAX_SHOT_HEIGHT, report.height - top)))
            driver.execute_script("window.scrollTo(0, arguments[0])", top)
            shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png", "optimizeForSpeed": True})
            path = screenshot if i == 0 else screenshot.with_name(f"{screenshot.stem}-{i + 1}{screenshot.suffix}")
            path.write_bytes(base64.b64decode(shot["data"]))
        driver.execute_script("window.scrollTo(0, 0)")

    # Read the logs last, so that requests and errors that come after the load event are counted.
    for entry in driver.get_log("browser"):
        if entry.get("level") == "SEVERE":
            message = entry["message"].replace(base_url, "/")
            report.problems.append(f"[console-error] {message[:300]}")
    for url in remote_urls(driver.get_log("performance")):
        report.problems.append(f"[remote-request] request to {url[:200]}")
    report.seconds = round(time.monotonic() - start, 2)
    return report


def check_site(
    html_dir: Path,
    pages: list[str],
    notebooks_dir: Path | None = None,
    labels: list[str] = (),
    word_labels: list[str] = (),
    machine_paths: tuple[str, ...] = (str(ROOT),) + MACHINE_PATHS,
    screenshots: Path | None = None,
    driver=None,
) -> list[PageReport]:
    """Check the pages (`name` for `html_dir/name.html`, as in _toc.yml) of a built site.

    A notebook page `notebooks/NAME` is compared with `notebooks_dir/NAME.ipynb`. `driver`: a browser
    from `browser()` to reuse; else one is started for this call."""
    html_dir = Path(html_dir)
    reports = []
    with contextlib.ExitStack() as stack:
        if driver is None:
            driver = stack.enter_context(browser())
        base_url = stack.enter_context(serve(html_dir))
        driver.get("about:blank")
        driver.get_log("browser"), driver.get_log("performance")  # start with empty logs
        for name in pages:
            page = f"{name}.html"
            if not (html_dir / page).is_file():
                reports.append(PageReport(page=page, problems=[f"[missing-page] {page} is not in the build"]))
                continue
            figures = None
            if name.startswith("notebooks/") and notebooks_dir is not None:
                notebook = Path(notebooks_dir) / f"{Path(name).name}.ipynb"
                figures = figures_drawn(notebook) if notebook.is_file() else None
            shot = Path(screenshots) / f"{name.replace('/', '__')}.png" if screenshots else None
            try:
                report = check_page(
                    driver, base_url, page, figures=figures, labels=list(labels),
                    word_labels=list(word_labels), machine_paths=tuple(machine_paths), screenshot=shot,
                )
            except Exception as error:  # a page that hangs or crashes the tab is a problem, not a crash
                report = PageReport(page=page, figures=figures)
                report.problems.append(f"[load] {type(error).__name__}: {str(error).splitlines()[0][:200]}")
            reports.append(report)
    return reports


def print_summary(reports: list[PageReport]) -> None:
    rows = [("page", "images", "figures drawn", "height (px)", "problems")]
    for r in reports:
        rows.append(
            (r.page, _cell(r.images), _cell(r.figures), _cell(r.height), str(len(r.problems)))
        )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for k, row in enumerate(rows):
        print("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True))))
        if k == 0:
            print("  ".join("-" * w for w in widths))


def _cell(value) -> str:
    return "-" if value is None else str(value)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("html", nargs="?", default="_build/html", type=Path, help="the built book")
    parser.add_argument("--screenshots", type=Path, default=Path("_build/screenshots"), help="PNG folder")
    parser.add_argument("--json", type=Path, help="write the per-page numbers to this file")
    args = parser.parse_args(argv)

    start = time.monotonic()
    labels, word_labels = book_labels(ROOT / "book", ROOT / "notebooks")
    reports = check_site(
        args.html, toc_files(), ROOT / "notebooks", labels, word_labels, screenshots=args.screenshots
    )
    problems = [f"{r.page}: {p}" for r in reports for p in r.problems]
    for problem in problems:
        print("browser check:", problem)
    print_summary(reports)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([asdict(r) for r in reports], indent=1) + "\n")
    print(
        f"browser check: {len(reports)} pages in {time.monotonic() - start:.0f} s, {len(problems)} problems,"
        f" screenshots in {args.screenshots}"
    )
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
