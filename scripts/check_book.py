"""Check a built book works offline: every page of the table of contents is there, math is served
by the book itself, no page loads a script or stylesheet from the internet, notebooks were executed.

Usage: python scripts/check_book.py _build/html
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
REMOTE = re.compile(r"<(script|link|img|iframe)\b[^>]*\b(src|href)=\"(https?:)?//[^\"]+\"", re.I)
# A link that names the page's public address (html_baseurl) loads nothing.
NOT_LOADED = re.compile(r"\brel=\"(canonical|alternate)\"", re.I)


def remote_loads(text: str) -> list[str]:
    """The tags of a page that load a script, stylesheet, image or frame from the internet."""
    return [m.group(0) for m in REMOTE.finditer(text) if not NOT_LOADED.search(m.group(0))]


def toc_files() -> list[str]:
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    found = [toc["root"]]

    def walk(node):
        if isinstance(node, dict):
            if "file" in node:
                found.append(node["file"])
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(toc.get("parts", []))
    return found


def main(html: Path) -> int:
    problems = []
    if not (html / "_static" / "mathjax" / "tex-chtml.js").is_file():
        problems.append("MathJax is not served from the build (_static/mathjax/tex-chtml.js missing)")
    for file in toc_files():
        page = html / f"{file}.html"
        if not page.is_file():
            problems.append(f"{page} missing")
            continue
        text = page.read_text(encoding="utf-8")
        for tag in remote_loads(text):
            problems.append(f"{page.relative_to(html)} loads {tag[:120]} from the internet")
        if 'class="math' in text:  # Sphinx loads MathJax only on pages with math
            if "_static/mathjax/tex-chtml.js" not in text:
                problems.append(f"{page.relative_to(html)} does not load the local MathJax")
        if file.startswith("notebooks/") and "cell_output" not in text:
            problems.append(f"{page.relative_to(html)} shows no executed output")
    for problem in problems:
        print("book check:", problem)
    print(f"book check: {len(toc_files())} pages, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1] if len(sys.argv) > 1 else "_build/html")))
