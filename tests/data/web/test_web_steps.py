"""The steps table: a custom filter is one function + one table entry + one config section; errors are counted."""
import functools

import ml_collections

from lmjax.data.web import stage
from lmjax.data.web.document import Document, Drop
from lmjax.data.web.stats import StepStats
from lmjax.data.web.steps import FILTER_STEPS, Step, apply_steps


def drop_shouting(doc, *, max_upper_ratio):
  letters = [char for char in doc.text if char.isalpha()]
  upper = sum(char.isupper() for char in letters) / max(1, len(letters))
  return Drop("too_much_upper_case") if upper > max_upper_ratio else doc


def explode_on_bang(doc):
  if "!" in doc.text:
    raise ValueError("cannot handle '!'")
  return doc.with_text(doc.text.lower())


def test_apply_steps_counts_keeps_drops_rewrites_and_errors():
  stats: dict[str, StepStats] = {}
  steps = [("shout", functools.partial(drop_shouting, max_upper_ratio=0.5)), ("explode", explode_on_bang)]
  docs = [Document(id=str(i), text=text) for i, text in enumerate(["Calm Text", "LOUD TEXT", "Bang!", "More Calm"])]
  kept = list(apply_steps(docs, steps, stats))
  assert [doc.text for doc in kept] == ["calm text", "more calm"]
  assert stats["shout"].to_json()["reasons"] == {"too_much_upper_case": 1}
  explode = stats["explode"].to_json()
  assert explode["docs_in"] == 3 and explode["reasons"] == {"error_ValueError": 1}
  assert "cannot handle" in explode["examples"]["error_ValueError"][0]["note"]


def test_custom_filter_is_a_table_entry_and_a_config_section(shipped_warc, clean_config, tmp_path, monkeypatch):
  def build(cfg):
    return functools.partial(drop_shouting, max_upper_ratio=cfg.max_upper_ratio)

  monkeypatch.setattr(stage, "FILTER_STEPS", FILTER_STEPS + (Step("shouting", build),))
  clean_config.shouting = ml_collections.ConfigDict(dict(enabled=True, max_upper_ratio=0.02))
  summary = stage.run(clean_config, tmp_path / "run", input_pattern=str(shipped_warc), workers=1)
  shouting = summary["steps"]["shouting"]
  assert shouting["docs_in"] == summary["steps"]["fineweb_quality"]["kept"]
  assert shouting["removed"] == shouting["reasons"]["too_much_upper_case"] > 0
