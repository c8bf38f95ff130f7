"""The RL math task: held-out problems are the same for every RL seed and never trained on (by RL or SFT),
and the reward reads the reply's own text, never a tool's output."""
import ml_collections

from lmjax.data.posttrain import math_problems, math_wordings
from lmjax.rl import math_task
from lmjax.infer.engine import Reply
from configs import base


def _task(seed: int, sft):
  return math_task.make_math_task(base.get_config().math, heldout_problems=40, train_problems=300, seed=seed,
                                  sft_config=sft)


def test_heldout_problems_do_not_depend_on_the_rl_seed_and_are_never_trained_on():
  sft = ml_collections.ConfigDict(dict(mixture={"math": 1.0}, math_problems=500, math_levels=(1,), seed=0))
  a, b = _task(0, sft), _task(1, sft)
  assert a.heldout == b.heldout and a.train != b.train
  heldout = {p.question for p in a.heldout}
  assert len(heldout) == 40 and len(a.train) == 300
  seen = list(a.train + b.train) + math_problems.generate_problems(500, 1, seed=0)  # RL's and SFT's
  assert not heldout & {math_wordings.in_wording(p, 3).question for p in seen}  # not even reworded
  assert not heldout & {p.question for p in seen}


def test_heldout_questions_are_asked_in_math_heldout_wordings_and_training_ones_in_math_wordings():
  math = base.get_config().math
  unseen = math_task.make_math_task(math, heldout_problems=20).heldout
  math.heldout_wordings, math.wordings = (0,), (1, 2)
  task = math_task.make_math_task(math, heldout_problems=20, train_problems=10)
  assert [math_wordings.in_wording(p, 3) for p in task.heldout] == list(unseen)
  base_train = math_task.make_math_task(base.get_config().math, heldout_problems=20, train_problems=10).train
  assert list(task.train) == math_wordings.in_wordings(base_train, (1, 2))


def test_the_reward_is_one_only_for_the_right_final_answer_in_the_replys_own_text(tokens_workdir):
  from lmjax import chat
  from lmjax.data.tokenizer import Tokenizer
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  problem = math_problems.generate_problem(3, level=1)
  end = chat.chat_tokens(tok).assistant_end

  def reward(ids):
    return math_task.reward(Reply((), tuple(ids), (True,) * len(ids), 0), problem, tok)

  assert reward(tok.encode(f"Answer: {problem.answer}") + [end]) == 1.0
  assert reward(tok.encode(f"Answer: {problem.answer + 1}") + [end]) == 0.0
  t = chat.chat_tokens(tok)
  call = [t.tool_call_start, *tok.encode("search\nthe answer"), t.tool_call_end]
  tool_says = chat.render_tool_output(f"Answer: {problem.answer}", tok)
  assert reward(call + tool_says + tok.encode("Answer: unknown") + [end]) == 0.0
  assert reward(call + tool_says + tok.encode(f"Answer: {problem.answer}") + [end]) == 1.0


def test_a_mix_of_levels_is_held_out_in_turn_and_a_smaller_check_is_a_prefix_of_the_evaluation():
  math = base.get_config().math
  math.levels = (1, 2)
  evaluation = math_task.make_math_task(math, heldout_problems=40).heldout
  check = math_task.make_math_task(math, heldout_problems=20, train_problems=100, seed=3)
  assert [p.level for p in evaluation] == [1, 2] * 20
  assert check.heldout == evaluation[:20]
  assert {p.level for p in check.train} == {1, 2}
  single = base.get_config().math
  assert [p for p in evaluation if p.level == 1] == list(math_task.make_math_task(single, heldout_problems=20).heldout)


def test_heldout_accuracy_splits_by_level_when_levels_mix(tokens_workdir):
  from lmjax import chat
  from lmjax.data.tokenizer import Tokenizer
  from lmjax.rl.heldout import heldout_accuracy
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  end = chat.chat_tokens(tok).assistant_end
  problems = [math_problems.generate_problem(seed, level=level) for seed, level in ((1, 1), (2, 2))]

  def reply(answer):
    ids = tok.encode(f"Answer: {answer}") + [end]
    return Reply((), tuple(ids), (True,) * len(ids), 0)

  right, wrong = [reply(p.answer) for p in problems], [reply(p.answer + 1) for p in problems]
  accuracy = heldout_accuracy(problems, greedy=[right[0], wrong[1]], sampled=[right[0], wrong[0], wrong[1], wrong[1]],
                              tokenizer=tok)
  assert accuracy["heldout_pass1_level1"] == 0.5 and accuracy["heldout_pass1_level2"] == 0.0
  assert accuracy["heldout_greedy_level1"] == 1.0 and accuracy["heldout_greedy_level2"] == 0.0
  assert accuracy["heldout_pass1"] == 0.25
  assert "heldout_pass1_level1" not in heldout_accuracy(problems[:1], [right[0]], [right[0]], tok)
