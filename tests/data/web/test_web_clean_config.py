"""configs/clean.py: every step has a config section with a switch, every field is commented, FineWeb's defaults."""
import ast
import inspect

import pytest

import configs.clean
from lmjax.config import ConfigError
from lmjax.data.web.steps import FILTER_STEPS, FINAL_STEPS, build_steps


def test_every_step_has_a_config_section_with_a_switch(clean_config):
  for step in FILTER_STEPS + FINAL_STEPS:
    assert clean_config[step.name].enabled is True
  assert clean_config.minhash.enabled is True


def test_every_step_builds_from_the_default_config(clean_config):
  names = [name for name, _ in build_steps(FILTER_STEPS + FINAL_STEPS, clean_config)]
  assert names == [step.name for step in FILTER_STEPS + FINAL_STEPS]


def test_every_config_field_has_a_comment():
  source = inspect.getsource(configs.clean)
  lines = source.splitlines()
  for node in ast.walk(ast.parse(source)):
    if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Attribute):
      first, last = lines[node.lineno - 1], lines[node.end_lineno - 1]
      is_section = isinstance(node.value, ast.Call)
      assert is_section or "#" in first or "#" in last, f"configs/clean.py line {node.lineno} has no comment: {first}"


def test_fineweb_defaults():
  config = configs.clean.get_config()
  assert (config.language.languages, config.language.min_score) == (("en",), 0.65)
  assert (config.minhash.n_grams, config.minhash.num_buckets, config.minhash.hashes_per_bucket) == (5, 14, 8)
  assert config.c4.filter_no_terminal_punct is False and config.c4.min_num_sentences == 5
  fineweb = config.fineweb_quality
  assert (fineweb.line_punct_thr, fineweb.short_line_thr, fineweb.char_duplicates_ratio,
          fineweb.new_line_ratio) == (0.12, 0.67, 0.01, 0.3)
  assert config.gopher_quality.min_doc_words == 50 and config.gopher_repetition.dup_line_frac == 0.3


def test_missing_section_is_a_clear_error(clean_config):
  del clean_config["c4"]
  with pytest.raises(ConfigError, match="no section 'c4'"):
    build_steps(FILTER_STEPS, clean_config)
