"""Launch buttons (Colab, Binder, JupyterHub) open the student copy of a notebook page.

sphinx-book-theme builds each launch URL from the page's source path, ``notebooks/NAME.ipynb``: the
MyST source, whose roles show as raw text and whose solutions are in plain view outside the book.
``scripts/student_notebooks.py`` writes ``student/NAME.ipynb`` for every notebook; this handler, run
after the theme's ``add_launch_buttons`` (priority 501), points the buttons there instead.
"""

from pathlib import Path

from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
SOURCE_DIR = "notebooks"
STUDENT_DIR = "student"


def _retarget(buttons, old: str, new: str) -> int:
    changed = 0
    for button in buttons:
        if button.get("type") == "group":
            changed += _retarget(button.get("buttons", []), old, new)
        elif button.get("type") == "link" and old in button.get("url", ""):
            button["url"] = button["url"].replace(old, new)
            changed += 1
    return changed


def student_launch_buttons(app, pagename, templatename, context, doctree):
    folder, _, name = pagename.rpartition("/")
    if folder != SOURCE_DIR or "header_buttons" not in context:
        return
    if not (Path(app.srcdir) / STUDENT_DIR / f"{name}.ipynb").is_file():
        LOGGER.warning(f"{STUDENT_DIR}/{name}.ipynb is missing: run python scripts/student_notebooks.py")
        return
    prefix = app.config["html_theme_options"].get("path_to_docs", "").strip("/")
    prefix = f"{prefix}/" if prefix else ""
    groups = [b for b in context["header_buttons"] if b.get("label") == "launch-buttons"]
    _retarget(groups, f"{prefix}{SOURCE_DIR}/{name}.ipynb", f"{prefix}{STUDENT_DIR}/{name}.ipynb")


def setup(app):
    # After sphinx_book_theme's add_launch_buttons (501), before the page is rendered.
    app.connect("html-page-context", student_launch_buttons, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
