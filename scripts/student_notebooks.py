"""Student copies of the notebooks: MyST turned into Markdown that renders everywhere.

The notebooks in ``notebooks/`` are the book's source. Their Markdown uses MyST roles and directives
({doc}, {eq}, {cite}, ``:::{admonition} Solution`` dropdowns) that only the book renders; Colab,
JupyterLab, Notebook, VS Code and GitHub show them as raw text, with every solution in plain view.
This script writes ``student/NN_name.ipynb`` from every ``notebooks/NN_name.ipynb``:

- ``{doc}`` -> a link to the book page, titled with the page's first ``# `` heading;
- ``{eq}`` -> "(3.1)", the number the book shows, linked to the equation in the book;
- ``{cite}`` / ``{cite:p}`` / ``{cite:t}`` -> "(Kingma and Welling, 2014)" / "Kingma and Welling (2014)",
  linked to the book's references page (names and years from ``book/references.bib``);
- ``{ref}`` / ``{numref}`` -> links with their text; ``(label)=`` targets are dropped;
- a ``:class: dropdown`` admonition (the solutions) -> ``<details><summary>Title</summary>...</details>``,
  collapsed everywhere; any other admonition -> a blockquote "> **Note.** ...";
- a labelled display equation ``$$ ... $$ (label)`` -> ``$$ ... \\tag{3.1} $$``.

Any other directive or role makes the script fail, naming the notebook and the cell. Code cells, cell
ids and metadata are copied unchanged (outputs and execution counts are never written), and the output
is the same bytes at every run. The book's URL is read from one place, ``html: baseurl:`` in
``_config.yml``.

Usage:
    python scripts/student_notebooks.py              # regenerate student/
    python scripts/student_notebooks.py --check      # exit 1, listing them, if student/ is stale
    python scripts/student_notebooks.py --assignment DIR   # copies without any solution, for teachers
"""

from __future__ import annotations

import argparse
import json
import posixpath
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCE_DIR = "notebooks"
STUDENT_DIR = "student"

ADMONITION_TITLES = {
    "note": "Note",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "warning": "Warning",
    "caution": "Caution",
    "attention": "Attention",
    "danger": "Danger",
    "error": "Error",
    "seealso": "See also",
}

ROLE = re.compile(r"\{([A-Za-z][\w:+-]*)\}`([^`]*)`")
# A role with explicit text: "text <target>".
EXPLICIT = re.compile(r"^(.*?)\s*<([^<>]+)>$", re.S)
COLON_OPEN = re.compile(r"^(\s*)(:{3,})\{([^}\s]+)\}[ \t]*(.*)$")
BACKTICK_OPEN = re.compile(r"^(\s*)(`{3,}|~{3,})[ \t]*(.*)$")
OPTION = re.compile(r"^\s*:([\w-]+):[ \t]*(.*)$")
TARGET = re.compile(r"^\s*\(([^()\s]+)\)=\s*$")
LABELLED_MATH_END = re.compile(r"\$\$[ \t]*\(([^()\s]+)\)[ \t]*$")


SEP = None  # in a list of output lines: a blank line that sets a converted block apart


class ConversionError(ValueError):
    """MyST that this script cannot turn into plain Markdown."""


# ---------------------------------------------------------------------------------------------
# What the book knows: its URL, page titles, equation numbers, bibliography, targets.


def _read_cells_markdown(path: Path) -> list[str]:
    nb = json.loads(path.read_text(encoding="utf-8"))
    return ["".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "markdown"]


def _page_text(root: Path, docname: str) -> str:
    md, ipynb = root / f"{docname}.md", root / f"{docname}.ipynb"
    if md.is_file():
        return md.read_text(encoding="utf-8")
    if ipynb.is_file():
        return "\n\n".join(_read_cells_markdown(ipynb))
    raise ConversionError(f"no page {docname}.md or {docname}.ipynb")


def _outside_code_fences(text: str) -> list[str]:
    """The page's lines, with the lines of plain (non-directive) fenced code blocks blanked."""
    out: list[str] = []
    directives: list[str] = []  # open ```{directive} fences, whose bodies are page text
    fence = None  # the open plain code fence
    for line in text.split("\n"):
        s = line.strip()
        if fence is not None:
            if s and set(s) == {fence[0]} and len(s) >= len(fence):
                fence = None
            out.append("")
            continue
        if directives and s and set(s) == {directives[-1][0]} and len(s) >= len(directives[-1]):
            directives.pop()
            out.append(line)
            continue
        m = BACKTICK_OPEN.match(line)
        if m and m.group(3).startswith("{"):
            directives.append(m.group(2))
            out.append(line)
        elif m:
            fence = m.group(2)
            out.append("")
        else:
            out.append(line)
    return out


def _labelled_equations(text: str) -> list[str]:
    """Labels of the page's numbered display equations, in order of appearance.

    Numbered: ``$$ ... $$ (label)`` (MyST dollarmath) and a ``{math}`` directive with ``:label:``.
    An unlabelled ``$$ ... $$`` gets no number in Sphinx.
    """
    labels, lines = [], _outside_code_fences(text)
    for i, line in enumerate(lines):
        m = LABELLED_MATH_END.search(line)
        if m:
            labels.append(m.group(1))
            continue
        if re.match(r"^\s*(`{3,}|:{3,})\{math\}", line):
            for opt in lines[i + 1 :]:
                o = OPTION.match(opt)
                if not o:
                    break
                if o.group(1) == "label":
                    labels.append(o.group(2).strip())
    return labels


@dataclass
class Book:
    """The facts about the built book that the conversion needs, all read from the sources."""

    root: Path
    baseurl: str
    titles: dict[str, str] = field(default_factory=dict)  # docname -> title
    equations: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (number, docname)
    citations: dict[str, tuple[str, str]] = field(default_factory=dict)  # key -> (authors, year)
    targets: dict[str, tuple[str, str]] = field(default_factory=dict)  # label -> (docname, title)

    def url(self, docname: str, anchor: str = "") -> str:
        return f"{self.baseurl}{docname}.html" + (f"#{anchor}" if anchor else "")


def read_baseurl(root: Path) -> str:
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    base = ((config.get("html") or {}).get("baseurl") or "").strip()
    if not base.startswith(("https://", "http://")):
        raise ConversionError("_config.yml needs `html: baseurl:`, the built book's URL (https://...)")
    return base.rstrip("/") + "/"


def toc_chapters(root: Path) -> list[tuple[int | None, list[str]]]:
    """Each chapter of _toc.yml as (its number or None, [its docname, then its sections' docnames]).

    Chapters of ``numbered: true`` parts are numbered 1, 2, ... in toc order, continuously across parts
    when ``html: use_multitoc_numbering`` is true (Jupyter Book's default), else from 1 in each part.
    """
    toc = yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    continuous = (config.get("html") or {}).get("use_multitoc_numbering", True)

    def flatten(entry):
        names = [entry["file"]] if "file" in entry else []
        for section in entry.get("sections", []):
            names += flatten(section)
        return names

    chapters, number = [(None, [toc["root"]])], 0
    for part in toc.get("parts", []):
        if not continuous:
            number = 0
        for chapter in part.get("chapters", []):
            if part.get("numbered"):
                number += 1
                chapters.append((number, flatten(chapter)))
            else:
                chapters.append((None, flatten(chapter)))
    return chapters


def equation_numbers(root: Path) -> dict[str, tuple[str, str]]:
    """label -> (number as the book shows it, docname of the page that defines it).

    Sphinx (numfig, math_numfig, numfig_secnum_depth 1) numbers a labelled display equation
    "chapter.k": k counts the labelled equations of the chapter, first on the chapter's page, then on
    its section pages in toc order. Checked against a complete build: every one of the 60 numbers.
    """
    numbers: dict[str, tuple[str, str]] = {}
    for chapter, docnames in toc_chapters(root):
        k = 0
        for docname in docnames:
            for label in _labelled_equations(_page_text(root, docname)):
                if label in numbers:
                    raise ConversionError(f"equation label {label!r} is defined twice")
                k += 1
                numbers[label] = (f"{chapter}.{k}" if chapter is not None else str(k), docname)
    return numbers


def page_title(text: str) -> str:
    for line in text.split("\n"):
        if line.startswith("# "):
            return line[2:].strip()
    raise ConversionError("the page has no `# ` title")


def _latex_to_text(latex: str) -> str:
    """LaTeX to text: ``{\\L}a{\\'n}cucki`` -> Łańcucki. pybtex's reader is slow, so plain names skip it."""
    if not any(c in latex for c in "{}\\~$"):
        return latex
    from pybtex.richtext import Text

    return Text.from_latex(latex).render_as("text")


def read_bibliography(root: Path) -> dict[str, tuple[str, str]]:
    """key -> (authors as the book labels them: "Williams", "Kingma and Welling", "Xiao et al.", year)."""
    from pybtex.database import parse_file

    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    out = {}
    for bibfile in config.get("bibtex_bibfiles", []):
        data = parse_file(str(root / bibfile), bib_format="bibtex")
        for key, entry in data.entries.items():
            persons = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [_latex_to_text(" ".join(p.prelast_names + p.last_names)) for p in persons[:3]]
            if len(names) > 2:
                who = f"{names[0]} et al."
            else:
                who = " and ".join(names) or _latex_to_text(entry.fields.get("title", "Anonymous"))
            out[key] = (who, entry.fields.get("year", "n.d."))
    return out


def read_targets(root: Path, docnames: list[str]) -> dict[str, tuple[str, str]]:
    """MyST targets ``(label)=``: label -> (docname, the heading that follows, or the page title)."""
    out = {}
    for docname in docnames:
        lines = _page_text(root, docname).split("\n")
        for i, line in enumerate(lines):
            m = TARGET.match(line)
            if m:
                heading = next((x.lstrip("#").strip() for x in lines[i + 1 :] if x.strip()), "")
                out[m.group(1)] = (docname, heading if heading else m.group(1))
    return out


def load_book(root: Path = ROOT) -> Book:
    docnames = [d for _, names in toc_chapters(root) for d in names]
    return Book(
        root=root,
        baseurl=read_baseurl(root),
        titles={d: page_title(_page_text(root, d)) for d in docnames},
        equations=equation_numbers(root),
        citations=read_bibliography(root),
        targets=read_targets(root, docnames),
    )


# ---------------------------------------------------------------------------------------------
# Markdown conversion.


def _escape_link_text(text: str) -> str:
    return text.replace("[", r"\[").replace("]", r"\]")


def _anchor(label: str) -> str:
    from docutils.nodes import make_id

    return make_id(label)


@dataclass
class Converter:
    book: Book
    docname: str = "notebooks/index"  # the page being converted: {doc} targets are relative to it
    assignment: bool = False  # drop solutions entirely

    # -- roles --------------------------------------------------------------------------------

    def _resolve_doc(self, target: str) -> str:
        target = target.strip()
        if target.startswith("/"):
            name = target.lstrip("/")
        else:
            name = posixpath.normpath(posixpath.join(posixpath.dirname(self.docname), target))
        name = re.sub(r"\.(md|ipynb)$", "", name)
        if name not in self.book.titles:
            raise ConversionError(f"{{doc}} target {target!r} is not a page of the book")
        return name

    def role(self, name: str, content: str) -> str:
        m = EXPLICIT.match(content)
        text, target = (m.group(1), m.group(2)) if m else (None, content)
        if name == "doc":
            doc = self._resolve_doc(target)
            return f"[{_escape_link_text(text or self.book.titles[doc])}]({self.book.url(doc)})"
        if name == "eq":
            if target not in self.book.equations:
                raise ConversionError(f"{{eq}} label {target!r} is not a labelled equation of the book")
            number, doc = self.book.equations[target]
            return f"[({number})]({self.book.url(doc, 'equation-' + target)})"
        if name in ("cite", "cite:p", "cite:ps", "cite:t", "cite:ts"):
            return self._cite(name, target)
        if name in ("ref", "numref"):
            label = target.strip()
            if label not in self.book.targets:
                raise ConversionError(f"{{{name}}} target {label!r} is not a `(label)=` target of the book")
            doc, heading = self.book.targets[label]
            if text is None and name == "numref":
                raise ConversionError(f"give {{numref}}`{label}` explicit text: `text <{label}>`")
            text = (text or heading).replace("{number}", "").replace("%s", "").strip()
            return f"[{_escape_link_text(text)}]({self.book.url(doc, _anchor(label))})"
        if name == "math":
            return f"${content}$"
        raise ConversionError(f"unknown role {{{name}}}")

    def _cite(self, name: str, keys: str) -> str:
        url = self.book.url("book/references")
        parts = []
        for key in (k.strip() for k in keys.split(",")):
            if key not in self.book.citations:
                raise ConversionError(f"citation key {key!r} is not in the bibliography")
            who, year = self.book.citations[key]
            if name.startswith("cite:t"):
                parts.append(f"[{_escape_link_text(who)} ({year})]({url})")
            else:
                parts.append(f"[{_escape_link_text(who)}, {year}]({url})")
        if name.startswith("cite:t"):
            return ", ".join(parts)
        return "(" + "; ".join(parts) + ")"

    def inline(self, line: str) -> str:
        line = ROLE.sub(lambda m: self.role(m.group(1), m.group(2)), line)
        m = LABELLED_MATH_END.search(line)
        if m:
            label = m.group(1)
            if label not in self.book.equations:
                raise ConversionError(f"equation label {label!r} is not numbered")
            line = line[: m.start()] + f"\\tag{{{self.book.equations[label][0]}}} $$"
        return line

    # -- blocks -------------------------------------------------------------------------------

    def convert(self, text: str) -> str:
        lines = self._blocks(text.split("\n"))
        # A converted block is set apart by one blank line (SEP); the source's own blank lines, in
        # code above all, are kept as they are.
        result: list[str] = []
        blanks, separated = 0, False
        for line in lines:
            if line is SEP:
                separated = True
            elif line == "":
                blanks += 1
            else:
                if result:
                    result += [""] * (1 if separated else blanks)
                elif not separated:
                    result += [""] * blanks
                result.append(line)
                blanks, separated = 0, False
        if not separated:
            result += [""] * blanks
        return "\n".join(result)

    def _blocks(self, lines: list[str]) -> list[str | None]:
        out: list[str | None] = []
        i = 0
        while i < len(lines):
            line = lines[i]
            colon = COLON_OPEN.match(line)
            tick = BACKTICK_OPEN.match(line)
            if TARGET.match(line):
                i += 1
                continue
            if colon:
                indent, fence, name, argument = colon.groups()
                end = self._find_close(lines, i + 1, fence, colon=True)
                out += self._directive(indent, name, argument.strip(), lines[i + 1 : end])
                i = end + 1
                continue
            if tick:
                indent, fence, info = tick.groups()
                end = self._find_close(lines, i + 1, fence, colon=False)
                if info.startswith("{"):
                    name = info[1 : info.index("}")] if "}" in info else info
                    out += self._directive(indent, name, info[info.index("}") + 1 :].strip(), lines[i + 1 : end])
                else:
                    out += lines[i : end + 1]  # plain code: copied as is
                i = end + 1
                continue
            if re.match(r"^\s*:::", line):
                raise ConversionError(f"stray directive fence: {line.strip()!r}")
            out.append(self.inline(line))
            i += 1
        return out

    @staticmethod
    def _find_close(lines: list[str], start: int, fence: str, colon: bool) -> int:
        char = fence[0]
        for j in range(start, len(lines)):
            s = lines[j].strip()
            if colon and s == fence:
                return j
            if not colon and s and set(s) == {char} and len(s) >= len(fence):
                return j
        raise ConversionError(f"unclosed fence {fence!r}")

    def _directive(self, indent: str, name: str, argument: str, body: list[str]) -> list[str]:
        options = {}
        while body and OPTION.match(body[0]):
            o = OPTION.match(body[0])
            options[o.group(1)] = o.group(2).strip()
            body = body[1:]
        classes = options.get("class", "").split()
        if name == "admonition":
            if not argument:
                raise ConversionError("an {admonition} needs a title")
            title = argument
        elif name in ADMONITION_TITLES:
            title = argument or ADMONITION_TITLES[name]
        elif name == "dropdown":
            title, classes = argument or "Details", classes + ["dropdown"]
        else:
            raise ConversionError(f"directive {{{name}}} has no plain-Markdown form: convert it in this script")
        body = [x[len(indent) :] if x.startswith(indent) else x.lstrip() for x in body]
        inner = ["" if x is SEP else x for x in self._blocks(body)]
        is_solution = title.lower().startswith("solution")
        if is_solution and "dropdown" not in classes:
            raise ConversionError(f"the admonition {title!r} must be a dropdown (`:class: dropdown`)")
        if "dropdown" in classes:
            if is_solution and self.assignment:
                return [SEP]
            block = [f"<details><summary>{self.inline(title)}</summary>", ""] + inner + ["", "</details>"]
        else:
            head = f"> **{self.inline(title).rstrip('.')}.**"
            while inner and not inner[0].strip():
                inner = inner[1:]
            block = [head] if not inner else []
            for k, x in enumerate(inner):
                if k == 0 and x.strip() and not re.match(r"^\s*(`{3,}|~{3,}|[-*+] |\d+\. |#)", x):
                    block.append(f"{head} {x}")
                else:
                    if k == 0:
                        block += [head, ">"]
                    block.append(f"> {x}" if x.strip() else ">")
        return [SEP] + [indent + x if x else "" for x in block] + [SEP]


# ---------------------------------------------------------------------------------------------
# Notebooks.


def student_notebook(source: Path, book: Book, assignment: bool = False) -> str:
    """The student (or assignment) copy of one source notebook, as the text of an .ipynb file."""
    nb = json.loads(source.read_text(encoding="utf-8"))
    docname = f"{SOURCE_DIR}/{source.stem}"
    converter = Converter(book, docname=docname, assignment=assignment)
    for index, cell in enumerate(nb["cells"]):
        if cell["cell_type"] == "code":
            cell["outputs"] = []
            cell["execution_count"] = None
        if cell["cell_type"] != "markdown":
            continue
        try:
            text = converter.convert("".join(cell["source"]))
        except ConversionError as error:
            raise ConversionError(f"{source.name}, cell {index} (id {cell.get('id')}): {error}") from None
        cell["source"] = text.splitlines(keepends=True)
    if assignment:  # a cell that held only a solution goes
        nb["cells"] = [c for c in nb["cells"] if c["cell_type"] != "markdown" or "".join(c["source"]).strip()]
    return json.dumps(nb, indent=1, ensure_ascii=False) + "\n"


def expected(root: Path = ROOT, assignment: bool = False) -> dict[str, str]:
    """file name -> the text each copy should have."""
    book = load_book(root)
    return {p.name: student_notebook(p, book, assignment) for p in sorted((root / SOURCE_DIR).glob("*.ipynb"))}


def stale(root: Path = ROOT) -> list[str]:
    """The student copies that differ from what this script writes (missing, outdated or orphaned)."""
    want = expected(root)
    folder = root / STUDENT_DIR
    have = {p.name for p in folder.glob("*.ipynb")} if folder.is_dir() else set()
    problems = []
    for name, text in want.items():
        path = folder / name
        if not path.is_file():
            problems.append(f"{STUDENT_DIR}/{name} (missing)")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{STUDENT_DIR}/{name} (outdated)")
    problems += [f"{STUDENT_DIR}/{name} (no source notebook)" for name in sorted(have - set(want))]
    return problems


def write(folder: Path, copies: dict[str, str], remove_others: bool) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if remove_others:
        for path in folder.glob("*.ipynb"):
            if path.name not in copies:
                path.unlink()
    for name, text in copies.items():
        path = folder / name
        if not path.is_file() or path.read_text(encoding="utf-8") != text:
            path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--check", action="store_true", help="exit 1 if student/ differs from what would be written")
    group.add_argument("--assignment", metavar="DIR", help="write copies without any solution into DIR")
    args = parser.parse_args(argv)
    try:
        if args.check:
            problems = stale(ROOT)
            if problems:
                print("Stale student notebooks; run `python scripts/student_notebooks.py`:", file=sys.stderr)
                print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
                return 1
            print(f"{STUDENT_DIR}/ is up to date.")
            return 0
        if args.assignment:
            folder = Path(args.assignment)
            write(folder, expected(ROOT, assignment=True), remove_others=False)
            print(f"Wrote assignment copies (no solutions) to {folder}/")
            return 0
        write(ROOT / STUDENT_DIR, expected(ROOT), remove_others=True)
        print(f"Wrote {STUDENT_DIR}/ from {SOURCE_DIR}/")
        return 0
    except ConversionError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
