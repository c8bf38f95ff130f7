"""Held-out math through `lmjax eval`: RL's held-out problems (a prefix of them, none SFT-trained), pass@1 /
pass@k / greedy of a model that solves them and of one that answers wrong, and tool-call validity."""
from configs import base
from lmjax.data.posttrain.math_problems import generate_problems
from lmjax.eval.math_accuracy import evaluate_math, heldout_task
from lmjax.eval.tool_calls import tool_call_stats
from lmjax.rl import math_task
from tests.eval.conftest import chat_run, eval_config


def test_a_model_that_solves_the_heldout_problems_scores_them_all(right_model):
  config = eval_config()
  result = evaluate_math(config, chat_run(right_model[2], config))
  assert (result["math_problems"], result["math_k"]) == (4, 2)
  assert result["math_greedy"] == 1.0 and result["math_pass1"] >= 0.5 and result["math_pass_at_k"] >= 0.75
  assert result["tool_calls"] >= 4 and result["tool_call_validity"] >= 0.9


def test_a_model_that_answers_wrong_and_divides_by_zero_scores_zero(wrong_model):
  config = eval_config()
  result = evaluate_math(config, chat_run(wrong_model[2], config))
  assert result["math_greedy"] == result["math_pass1"] == result["math_pass_at_k"] == 0.0
  assert result["tool_calls"] >= 4 and result["tool_call_validity"] == 0.0


def test_heldout_problems_are_a_prefix_of_rls_and_none_the_sft_run_trained_on():
  config = base.get_config()
  config.eval.math_problems = 16
  sft = base.get_config().sft
  sft.mixture.math, sft.math_problems = 1.0, 3000
  ours = heldout_task(config, sft).heldout
  assert ours == math_task.make_math_task(config.math, heldout_problems=config.rl.heldout_problems,
                                          sft_config=sft).heldout[:16]
  assert not {p.question for p in ours} & {p.question for p in generate_problems(3000, 1, seed=0)}


def test_tool_call_validity_counts_the_calls_that_ran():
  call = lambda tool: {"type": "tool_call", "tool": tool, "input": "1+1"}
  output = lambda text: {"type": "tool_output", "output": text}
  text = {"type": "text", "text": "2"}
  messages = [{"role": "assistant", "content": [call("calculator"), output("2"), text]},
              {"role": "assistant", "content": [call("abacus"), output("error: unknown tool 'abacus'"),
                                                call("calculator")]},  # the last call never ran
              {"role": "assistant", "content": "no tools"}]
  assert tool_call_stats(messages) == {"tool_calls": 2, "tool_calls_per_reply": 2 / 3,
                                       "tool_call_validity": 0.5}
  assert tool_call_stats(messages[2:])["tool_call_validity"] is None
