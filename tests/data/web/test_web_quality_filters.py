"""Gopher quality, Gopher repetition, C4 and FineWeb filters: documents just inside and just outside each threshold."""
import pytest
from web_test_data import make_doc

from lmjax.data.web.c4 import c4_filter
from lmjax.data.web.document import Drop
from lmjax.data.web.fineweb_quality import fineweb_quality
from lmjax.data.web.gopher_quality import gopher_quality
from lmjax.data.web.gopher_repetition import duplicate_n_gram_chars, gopher_repetition, top_n_gram_chars


def gopher_quality_settings(config):
  return {key: value for key, value in config.gopher_quality.items() if key != "enabled"}


def verdict(result):
  return result.reason if isinstance(result, Drop) else "keep"


def prose(num_words: int) -> str:
  """num_words distinct 5-letter words with two distinct stop words in every 10 words."""
  words = []
  for i in range(num_words):
    words.append({0: "the", 5: "and"}.get(i % 10, f"w{i:04d}"[:5]))
  return " ".join(words)


@pytest.mark.parametrize("num_words, expected", [(49, "gopher_short_doc"), (50, "keep")])
def test_gopher_quality_min_words_threshold(clean_config, num_words, expected):
  assert verdict(gopher_quality(make_doc(prose(num_words)), **gopher_quality_settings(clean_config))) == expected


def test_gopher_quality_max_words_threshold(clean_config):
  settings = gopher_quality_settings(clean_config) | {"max_doc_words": 60}
  assert verdict(gopher_quality(make_doc(prose(60)), **settings)) == "keep"
  assert verdict(gopher_quality(make_doc(prose(61)), **settings)) == "gopher_long_doc"


def test_gopher_quality_mean_word_length(clean_config):
  settings = gopher_quality_settings(clean_config)
  # 60 words of mean length exactly 3 (kept) vs just under 3 (dropped)
  words_at_3 = ["the", "and", "cat"] * 20
  assert verdict(gopher_quality(make_doc(" ".join(words_at_3)), **settings)) == "keep"
  words_below = words_at_3[:-1] + ["at"]
  assert verdict(gopher_quality(make_doc(" ".join(words_below)), **settings)) == "gopher_below_avg_word_length"
  long_words = ["the", "and"] + ["abcdefghijk"] * 58
  assert verdict(gopher_quality(make_doc(" ".join(long_words)), **settings)) == "gopher_above_avg_word_length"


def test_gopher_quality_hash_ratio(clean_config):
  settings = gopher_quality_settings(clean_config)
  base = prose(90)
  # 90 words + 10 '#' tokens: 10 hashes / 100 tokens = 0.1 (kept); '##' tokens double the hashes
  assert verdict(gopher_quality(make_doc(base + " #" * 10), **settings)) == "keep"
  assert verdict(gopher_quality(make_doc(base + " ##" * 10), **settings)) == "gopher_too_many_hashes"


def test_gopher_quality_bullet_and_ellipsis_lines(clean_config):
  settings = gopher_quality_settings(clean_config)
  lines = [f"- {prose(10)}" for _ in range(9)] + [prose(10)]  # 9 of 10 bullet lines = 0.9, kept
  assert verdict(gopher_quality(make_doc("\n".join(lines)), **settings)) == "keep"
  lines = [f"- {prose(10)}" for _ in range(10)]
  assert verdict(gopher_quality(make_doc("\n".join(lines)), **settings)) == "gopher_too_many_bullets"
  lines = [prose(10) + "…" for _ in range(3)] + [prose(10) for _ in range(7)]  # 0.3 kept
  assert verdict(gopher_quality(make_doc("\n".join(lines)), **settings)) == "keep"
  lines = [prose(10) + "…" for _ in range(4)] + [prose(10) for _ in range(6)]
  assert verdict(gopher_quality(make_doc("\n".join(lines)), **settings)) == "gopher_too_many_end_ellipsis"


def test_gopher_quality_alpha_and_stop_words(clean_config):
  settings = gopher_quality_settings(clean_config)
  text = prose(80) + " " + " ".join(["1234"] * 20)  # 80 of 100 words alphabetic = 0.8, kept
  assert verdict(gopher_quality(make_doc(text), **settings)) == "keep"
  text = prose(79) + " " + " ".join(["1234"] * 21)
  assert verdict(gopher_quality(make_doc(text), **settings)) == "gopher_below_alpha_threshold"
  no_stop = " ".join(f"w{i:04d}" for i in range(60))
  assert verdict(gopher_quality(make_doc(no_stop + " the"), **settings)) == "gopher_enough_stop_words"
  assert verdict(gopher_quality(make_doc(no_stop + " the and"), **settings)) == "keep"


def test_gopher_quality_counts_distinct_stop_words_as_written(clean_config):
  """Gopher's rule is "at least two of the following words"; datatrove (FineWeb) matches them case-sensitively."""
  settings = gopher_quality_settings(clean_config)
  no_stop = " ".join(f"w{i:04d}" for i in range(60))
  assert verdict(gopher_quality(make_doc(no_stop + " the the the"), **settings)) == "gopher_enough_stop_words"
  assert verdict(gopher_quality(make_doc(no_stop + " The And"), **settings)) == "gopher_enough_stop_words"
  assert verdict(gopher_quality(make_doc(no_stop + " The and of"), **settings)) == "keep"


def repetition_settings(config):
  settings = {key: value for key, value in config.gopher_repetition.items() if key != "enabled"}
  settings["top_n_grams"] = tuple(tuple(pair) for pair in settings["top_n_grams"])
  settings["dup_n_grams"] = tuple(tuple(pair) for pair in settings["dup_n_grams"])
  return settings


def distinct_line(i: int) -> str:
  return f"line {i} " + " ".join(f"x{i}y{j}" for j in range(6))


def test_gopher_repetition_duplicate_lines(clean_config):
  settings = repetition_settings(clean_config) | {"dup_line_char_frac": 1.0, "dup_para_frac": 1.0,
                                                  "dup_para_char_frac": 1.0, "dup_n_grams": (), "top_n_grams": ()}
  lines = [distinct_line(i) for i in range(7)] + [distinct_line(0)] * 3  # 3 of 10 duplicated = 0.3, kept
  assert verdict(gopher_repetition(make_doc("\n".join(lines)), **settings)) == "keep"
  lines = [distinct_line(i) for i in range(6)] + [distinct_line(0)] * 4
  assert verdict(gopher_repetition(make_doc("\n".join(lines)), **settings)) == "dup_line_frac"


def test_gopher_repetition_duplicate_paragraph_chars(clean_config):
  settings = repetition_settings(clean_config) | {"dup_line_frac": 1.0, "dup_line_char_frac": 1.0, "dup_para_frac": 1.0,
                                                  "dup_n_grams": (), "top_n_grams": ()}
  repeated = "b" * 20
  text = "\n\n".join(["a" * 56, repeated, repeated])  # 20 duplicated chars of 100 = 0.2, kept
  assert len(text) == 100
  assert verdict(gopher_repetition(make_doc(text), **settings)) == "keep"
  text = "\n\n".join(["a" * 55, repeated, repeated])  # 20 of 99 = 0.202
  assert verdict(gopher_repetition(make_doc(text), **settings)) == "dup_para_char_frac"


def test_gopher_repetition_n_gram_counts():
  words = "a b a b a b c".split()
  assert top_n_gram_chars(words, 2) == len("a b") * 3
  assert duplicate_n_gram_chars("x y z x y z".split(), 3) == len("xyz")


def test_gopher_repetition_keeps_real_prose_and_drops_spam(clean_config):
  settings = repetition_settings(clean_config)
  prose_text = ("The cat sat on the mat while the dog slept by the fire. Later that evening the family gathered "
                "to eat soup and bread, talking about the harvest and the weather of the coming week.")
  assert verdict(gopher_repetition(make_doc(prose_text), **settings)) == "keep"
  spam = "buy cheap pills now " * 30
  assert verdict(gopher_repetition(make_doc(spam), **settings)).startswith(("top_", "duplicated_"))


def c4_settings(config):
  return {key: value for key, value in config.c4.items() if key != "enabled"}


SENTENCE_LINE = "This line has one sentence in it."


def test_c4_min_sentences_threshold(clean_config):
  settings = c4_settings(clean_config)
  assert verdict(c4_filter(make_doc("\n".join([SENTENCE_LINE] * 5)), **settings)) == "keep"
  assert verdict(c4_filter(make_doc("\n".join([SENTENCE_LINE] * 4)), **settings)) == "too_few_sentences"


def test_c4_drops_short_javascript_and_policy_lines(clean_config):
  settings = c4_settings(clean_config)
  boilerplate = ["two words", "Please enable JavaScript to continue.", "This site uses cookies to work."]
  lines = [SENTENCE_LINE] * 5 + boilerplate
  result = c4_filter(make_doc("\n".join(lines)), **settings)
  assert result.text == "\n".join([SENTENCE_LINE] * 5)


def test_c4_document_level_drops(clean_config):
  settings = c4_settings(clean_config)
  base = [SENTENCE_LINE] * 5
  assert verdict(c4_filter(make_doc("\n".join(base + ["Lorem ipsum dolor sit amet."])), **settings)) == "lorem_ipsum"
  assert verdict(c4_filter(make_doc("\n".join(base + ["if (x) { return y; }"])), **settings)) == "curly_bracket"


def test_c4_terminal_punctuation_is_off_in_fineweb_but_works(clean_config):
  settings = c4_settings(clean_config)
  lines = [SENTENCE_LINE] * 5 + ["a line with no final punctuation"]
  assert c4_filter(make_doc("\n".join(lines)), **settings).text.endswith("punctuation")
  settings["filter_no_terminal_punct"] = True
  assert c4_filter(make_doc("\n".join(lines)), **settings).text.endswith("it.")


def test_c4_removes_citations(clean_config):
  settings = c4_settings(clean_config)
  result = c4_filter(make_doc("\n".join(["A cited fact is here.[12]"] * 5)), **settings)
  assert "[12]" not in result.text


def fineweb_settings(config):
  return {key: value for key, value in config.fineweb_quality.items() if key != "enabled"}


LONG_LINE = "this is a fairly long line of text that has more than thirty characters"


def test_fineweb_line_punctuation_ratio(clean_config):
  settings = fineweb_settings(clean_config)
  punctuated = [f"{LONG_LINE} number {i}." for i in range(12)]
  bare = [f"{LONG_LINE} number {i}" for i in range(100)]
  assert verdict(fineweb_quality(make_doc("\n".join(punctuated[:12] + bare[:88])), **settings)) == "keep"  # 0.12
  assert verdict(fineweb_quality(make_doc("\n".join(punctuated[:11] + bare[:89])), **settings)) == "line_punct_ratio"


def test_fineweb_short_line_ratio(clean_config):
  settings = fineweb_settings(clean_config)
  long_lines = [f"{LONG_LINE} number {i}." for i in range(34)]
  short_lines = [f"short {i}." for i in range(66)]  # 66 of 100 short = 0.66, kept
  assert verdict(fineweb_quality(make_doc("\n".join(long_lines + short_lines)), **settings)) == "keep"
  short_lines = [f"short {i}." for i in range(70)]  # 70 of 104 = 0.673
  assert verdict(fineweb_quality(make_doc("\n".join(long_lines + short_lines)), **settings)) == "short_line_ratio"


def test_fineweb_duplicate_line_chars(clean_config):
  settings = fineweb_settings(clean_config)
  lines = [f"{LONG_LINE} number {i:04d}." for i in range(120)]
  total = len("".join(lines))
  duplicate = lines[0]
  # one duplicated line adds len(duplicate) chars; the ratio is duplicate / (total + duplicate)
  assert len(duplicate) / (total + len(duplicate)) < 0.01
  assert verdict(fineweb_quality(make_doc("\n".join(lines + [duplicate])), **settings)) == "keep"
  few_lines = lines[:60]
  few_total = len("".join(few_lines))
  assert len(duplicate) / (few_total + len(duplicate)) > 0.01
  assert verdict(fineweb_quality(make_doc("\n".join(few_lines + [duplicate])), **settings)) == "char_dup_ratio"


def test_fineweb_newline_ratio(clean_config):
  settings = fineweb_settings(clean_config) | {"short_line_thr": 1.0}
  # each line "ab0 cd0." is 3 tokens: n lines give (n - 1) newlines / 3n words
  lines = [f"ab{i} cd{i}." for i in range(11)]
  assert verdict(fineweb_quality(make_doc("\n".join(lines[:10])), **settings)) == "keep"  # 9 / 30 = 0.3
  assert verdict(fineweb_quality(make_doc("\n".join(lines)), **settings)) == "list_ratio"  # 10 / 33
