"""The word splitter gives spaCy's English tokens (what FineWeb's filters count), checked with spaCy 3.8."""
import pytest

from lmjax.data.web.words import english_rules, split_into_words

# (text, spaCy blank("en") tokens), as printed by datatrove.utils.text.split_into_words
SPACY_CASES = [
    ("__main__", ["_", "_", "main", "_", "_"]),
    ("Py_Initialize()", ["Py_Initialize", "(", ")"]),
    ("foo():", ["foo", "(", "):"]),
    ("%(message)s", ["%", "(", "message)s"]),
    ("etc.", ["etc", "."]),
    ("cannot", ["can", "not"]),
    ("a=b", ["a", "=", "b"]),
    ("--help", ["--help"]),
    ("x--y", ["x", "--", "y"]),
    ("o.", ["o."]),
    ("it—is", ["it", "—", "is"]),
    ("http://a.b/c", ["http://a.b", "/", "c"]),
    ("3.11", ["3.11"]),
    ("end.", ["end", "."]),
    ("'quoted'", ["'", "quoted", "'"]),
    ("[1,2]", ["[", "1,2", "]"]),
    ("f(x)", ["f(x", ")"]),
    ("#include", ["#", "include"]),
    ("Don't stop, it's built-in!", ["Do", "n't", "stop", ",", "it", "'s", "built", "-", "in", "!"]),
    # cases the earlier regex imitation got wrong (they moved Gopher decisions on code-heavy pages)
    ("x == y", ["x", "=", "=", "y"]),  # '=' is a prefix
    ("a==b", ["a==b"]),
    ("base-10 rel_tol=1e-09", ["base-10", "rel_tol=1e-09"]),  # a hyphen splits only before a letter
    ("pp165–211", ["pp165–211"]),
    ("cmath.log(x[,", ["cmath.log(x", "[", ","]),
    ("flag[,", ["flag", "[", ","]),
    ("x[0]", ["x[0", "]"]),
    ("NaN.", ["NaN."]),  # '.' splits after a lower-case letter, a digit or two capitals only
    ("See https://mail.python.org/pipermail/.", ["See", "https://mail.python.org/pipermail/."]),  # URLs whole
    ("python-list@python.org", ["python-list@python.org"]),
    ("''", ["''"]),
    ("[:]", ["[", ":]"]),  # ':]' is an emoticon
    ("id dont 10km $5 ©2024", ["i", "d", "do", "nt", "10", "km", "$", "5", "©", "2024"]),
    ("wait..... U.S. (e.g. x.Y", ["wait", ".....", "U.S.", "(", "e.g.", "x.", "Y"]),
]


@pytest.mark.parametrize("text, tokens", SPACY_CASES)
def test_split_into_words_matches_spacy(text, tokens):
  assert split_into_words(text) == tokens


def test_special_cases_are_spacys_table():
  """Spot checks of the generated exceptions (the whole table was compared with spaCy's 1,343: equal)."""
  special = english_rules().special
  assert len(special) == 1343
  assert special["Couldn’t’ve"] == ("Could", "n’t", "’ve") and special["dont"] == ("do", "nt")
  assert special["ima"] == ("i", "m", "a") and special["12p.m."] == ("12", "p.m.")
  assert special["C++"] == ("C++",) and special[":-)"] == (":-)",)
  assert "lets" not in special and "its" not in special and "Ill" not in special
