"""The word splitter matches spaCy's English tokenizer (what FineWeb's filters count) on cases checked against it."""
import pytest

from lmjax.data.web.text_units import normalize_for_dedup, split_into_sentences, split_into_words

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
]


@pytest.mark.parametrize("text, tokens", SPACY_CASES)
def test_split_into_words_matches_spacy(text, tokens):
  assert split_into_words(text) == tokens


def test_sentences_and_dedup_normalisation():
  assert split_into_sentences("One. Two! Three? four") == ["One.", "Two!", "Three?", "four"]
  assert normalize_for_dedup("Café, CAFÉ —   café!") == "cafe cafe cafe"
