"""Math problems in other wordings: the same arithmetic, sentence frames no other wording uses."""
import re

import pytest

from lmjax.data.posttrain import math_problems as m
from lmjax.data.posttrain import math_wordings as mw


def _frame(question: str) -> str:
  """The question with numbers, names, items and pronouns abstracted: its template."""
  words = {*m.NAMES, *m.ITEMS, *m.THINGS, "muffins", "rolls", "cupcakes", "she", "he", "herself", "himself"}
  frame = re.sub(r"\d+", "#", question)
  return re.sub(r"\b\w+\b", lambda w: "_" if w.group().lower() in {x.lower() for x in words} else w.group(), frame)


def test_every_wording_asks_the_same_arithmetic_in_frames_no_other_wording_uses():
  problems = [p for level in m.LEVELS for p in m.generate_problems(600, level, seed=5)]
  worded = {k: [mw.in_wording(p, k) for p in problems] for k in range(mw.NUM_WORDINGS)}
  frames, asked = {}, {}
  for w, reworded in worded.items():
    assert all((r.steps, r.answer, r.template_id) == (p.steps, p.answer, p.template_id)
               for r, p in zip(reworded, problems))
    frames[w] = {_frame(r.question) for r in reworded}
    asked[w] = {re.split(r"(?<=[.?]) ", frame)[-1] for frame in frames[w]}  # the last sentence: what is asked
  for w in worded:
    for other in range(w):
      assert not frames[w] & frames[other] and not asked[w] & asked[other], (w, other)


def test_wordings_alternate_so_that_every_level_meets_every_wording():
  problems = m.generate_problems(12, (1, 2), seed=0)
  worded = mw.in_wordings(problems, (0, 3), levels=2)
  assert [(p.level, p.question != q.question) for p, q in zip(problems, worded)] == \
      [(1, False), (2, False), (1, True), (2, True)] * 3
  with pytest.raises(ValueError, match=r"wordings \(4,\).*config.sft.math_wordings, config.math.wordings"):
    mw.in_wordings(problems, (4,))
