"""labs.display: one way to tell a notebook from plain Python, and to show a result."""

from labs.display import in_notebook, show


class _Report:
    def text(self) -> str:
        return "report text"


def test_plain_python_is_not_a_notebook():
    assert in_notebook() is False


def test_show_prints_text_outside_a_notebook(capsys):
    show(_Report())
    show(42)
    assert capsys.readouterr().out == "report text\n42\n"
