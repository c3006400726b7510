"""Author-year labels for the references page, to match the chapters' author-year citations.

The chapters cite with sphinxcontrib-bibtex's ``author_year`` reference style, "(Kingma and Welling,
2014)"; its bibliography styles label entries [1]..[n]. This style labels each entry as it is cited:
"[Kingma and Welling, 2014]", "[Higgins et al., 2017]", and sorts by first author, then year.
"""

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.plain import Style as PlainStyle
from pybtex.style.labels import BaseLabelStyle


def _surname(person) -> str:
    # "{van den Oord}" or "van den Oord, Aaron": the von part belongs to the surname.
    latex = " ".join(person.prelast_names + person.last_names)
    return Text.from_latex(latex).render_as("text")


class AuthorYearLabelStyle(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        for entry in sorted_entries:
            persons = entry.persons.get("author") or entry.persons.get("editor") or []
            names = [_surname(p) for p in persons]
            if len(names) > 2:
                who = f"{names[0]} et al."
            else:
                who = " and ".join(names) or entry.fields.get("title", "Anonymous")
            yield f"{who}, {entry.fields.get('year', 'n.d.')}"


class AuthorYearStyle(PlainStyle):
    default_label_style = "author_year"


def setup(app):
    register_plugin("pybtex.style.labels", "author_year", AuthorYearLabelStyle)
    register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
