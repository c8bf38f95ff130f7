"""lmjax runs as lm-evaluation-harness models: the adapter's log-likelihoods are hand sums of the token
log-probs of `lmjax.model.logits` (left-truncated to the context; a long text in disjoint windows), its
generations are the greedy continuation cut at a stop string, and `lmjax eval --harness` runs tasks defined
from local files (no download) into eval.json, its CORE-style average and the report."""
import json
import subprocess
import sys

import numpy as np
import pytest

from lmjax import chat, cli, model
from lmjax.chain import report
from lmjax.config import ConfigError
from lmjax.eval import harness_task, model_run, multiple_choice
from tests.conftest import REPO

CONFIG = str(REPO / "configs" / "base.py")
# Two questions of two options, two of three, four of four: chance is (2/2 + 2/3 + 4/4) / 8 = 1/3.
QUESTIONS = [("Which book comes first in the Bible?", ["Exodus", "Genesis"], 1),
             ("How many legs has a spider?", ["8", "6"], 0),
             ("Which colour is the sky?", ["green", "red", "blue"], 2),
             ("What do bees make?", ["milk", "silk", "honey"], 2),
             ("Who built the ark?", ["Noah", "Moses", "Abraham", "David"], 0),
             ("What is the first day of the week?", ["Sunday", "Friday", "Monday", "Tuesday"], 0),
             ("Where is the sun at noon?", ["below", "high", "behind", "east"], 1),
             ("What falls from clouds?", ["stones", "rain", "bread", "sand"], 1)]
MC_TASK = """task: lmjax_mc
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: multiple_choice
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_choice: "{{{{options}}}}"
doc_to_target: answer
metric_list:
  - metric: acc
  - metric: acc_norm
"""
GEN_TASK = """task: lmjax_gen
dataset_path: json
dataset_kwargs:
  data_files:
    test: {data}
test_split: test
output_type: generate_until
doc_to_text: "Question: {{{{question}}}}\\nAnswer:"
doc_to_target: "{{{{options[answer]}}}}"
generation_kwargs:
  until: ["\\n"]
  max_gen_toks: 8
metric_list:
  - metric: exact_match
"""


@pytest.fixture(scope="module")
def run(uninterrupted):
  """(the run's saved config, its LoadedModel): 16 steps of the tiny model, context 64."""
  runs = model_run.lineage(str(uninterrupted))
  return runs[0].config, model_run.load_policy(runs[0])


@pytest.fixture(scope="module")
def lm(run):
  from lmjax.eval.harness import HarnessLM
  return HarnessLM(run[1], batch_size=4)


def _instances(kind: str, args: list[tuple]):
  from lm_eval.api.instance import Instance
  return [Instance(kind, {}, a, i) for i, a in enumerate(args)]


def _logprobs(config, params, rows: list[list[int]]) -> np.ndarray:
  """log_softmax of lmjax.model.logits over rows of equal length, in float64: [b, t, v]."""
  logits = np.asarray(model.logits(config, params, np.array(rows)), np.float64)
  shifted = logits - logits.max(-1, keepdims=True)
  return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def _by_hand(config, loaded, context: str, continuation: str) -> tuple[float, bool]:
  """log p(continuation | BOS + context) and whether it is greedy, by hand: the last 64 inputs kept."""
  tok = loaded.tokenizer
  whole = [tok.bos_id, *tok.encode(context + continuation)]
  n = len(whole) - len([tok.bos_id, *tok.encode(context)]) if context else len(whole) - 1
  inputs, targets = whole[:-1][-loaded.context:], whole[1:][-loaded.context:]
  logprobs = _logprobs(config, loaded.params, [inputs])[0]
  picked = [logprobs[len(inputs) - n + i] for i in range(n)]
  targets = targets[-n:]
  return sum(lp[t] for lp, t in zip(picked, targets)), all(int(lp.argmax()) == t for lp, t in zip(picked, targets))


def test_loglikelihood_is_the_hand_sum_of_token_logprobs_from_model_logits(run, lm):
  config, loaded = run
  long_context = " ".join(["In the beginning God created the heaven and the earth."] * 12)  # > 64 tokens
  args = [("Question: Which book comes first?\nAnswer:", " Genesis"), ("", "And God said"),
          (long_context, " And the earth was without form"), ("The cat", " sat on the mat.")]
  assert len(loaded.tokenizer.encode(long_context)) > 2 * loaded.context
  results = lm.loglikelihood(_instances("loglikelihood", args))
  for (context, continuation), (logprob, greedy) in zip(args, results):
    hand_logprob, hand_greedy = _by_hand(config, loaded, context, continuation)
    assert logprob == pytest.approx(hand_logprob, abs=1e-3) and greedy == hand_greedy
  assert all(logprob < 0 for logprob, _ in results)


def test_rolling_loglikelihood_scores_each_token_of_a_long_text_once_in_disjoint_windows(run, lm):
  config, loaded = run
  text = " ".join(["And God saw the light, that it was good: and God divided the light from the darkness."] * 8)
  ids, c = loaded.tokenizer.encode(text), loaded.context
  assert len(ids) > 3 * c and len(ids) % c  # several full windows and a partial last one
  windows = lm.rolling_windows(text)
  assert [t for _, scored in windows for t in scored] == ids
  assert all(len(context) + len(scored) - 1 <= c for context, scored in windows)
  # By hand: [BOS] + ids in rows of c inputs, each predicting the next c ids; the last row, a full c inputs
  # ending at the text's end, predicts only the ids no row before it did.
  seq, full = [loaded.tokenizer.bos_id, *ids], len(ids) // c
  rows = [seq[k * c:k * c + c + 1] for k in range(full)] + [seq[-c - 1:]]
  logprobs = _logprobs(config, loaded.params, [r[:-1] for r in rows])
  per_row = [[lp[t] for lp, t in zip(logprobs[k], row[1:])] for k, row in enumerate(rows)]
  by_hand = sum(sum(r) for r in per_row[:-1]) + sum(per_row[-1][c - len(ids) % c:])
  (rolled,) = lm.loglikelihood_rolling(_instances("loglikelihood_rolling", [(text,)]))
  assert rolled == pytest.approx(by_hand, rel=1e-5)
  assert lm.loglikelihood_rolling(_instances("loglikelihood_rolling", [("Genesis",)]))[0] == pytest.approx(
      lm.loglikelihood(_instances("loglikelihood", [("", "Genesis")]))[0][0], abs=1e-4)


def _greedy_by_hand(config, loaded, prompt: list[int], steps: int) -> list[int]:
  """Greedy continuation recomputing the whole prefix with lmjax.model.logits each step (one padded row:
  the model is causal, so what follows the prefix changes nothing before it)."""
  ids = list(prompt)
  for _ in range(steps):
    row = np.zeros((1, loaded.context), np.int32)
    row[0, :len(ids)] = ids
    ids.append(int(np.asarray(model.logits(config, loaded.params, row))[0, len(ids) - 1].argmax()))
  return ids[len(prompt):]


def test_generate_until_is_the_greedy_continuation_cut_at_the_first_stop_string(run, lm):
  config, loaded = run
  tok, context = loaded.tokenizer, "In the beginning God created"
  reference = tok.decode(_greedy_by_hand(config, loaded, [tok.bos_id, *tok.encode(context)], 12))
  stop = reference[5:7]  # a stop string inside the greedy text: what follows it must be cut
  cut = reference[:reference.find(stop)]
  kwargs = [{"until": [stop], "max_gen_toks": 12}, {"until": "\x00", "max_gen_toks": 12}]
  out = lm.generate_until(_instances("generate_until", [(context, kwargs[0]), (context, kwargs[1])]))
  assert out == [cut, reference] and len(cut) < len(reference)


def _task_dir(tmp_path) -> str:
  data = tmp_path / "questions.jsonl"
  data.write_text("".join(json.dumps({"question": q, "options": o, "answer": a}) + "\n" for q, o, a in QUESTIONS))
  tasks = tmp_path / "tasks"
  tasks.mkdir()
  (tasks / "lmjax_mc.yaml").write_text(MC_TASK.format(data=data))
  (tasks / "lmjax_gen.yaml").write_text(GEN_TASK.format(data=data))
  return str(tasks)


def test_lmjax_eval_harness_runs_a_local_task_into_eval_json_with_the_core_average(uninterrupted, run, tmp_path):
  out = tmp_path / "eval"
  cli.main(["eval", "--config", CONFIG, "--workdir", str(out), f"--config.eval.model_workdir={uninterrupted}",
            "--config.eval.tasks=('harness',)", "--harness", "lmjax_mc", "--harness-include", _task_dir(tmp_path)])
  result = json.load(open(out / "eval.json"))
  assert result["tasks"] == ["harness"]
  # The harness's accuracy is lmjax's own multiple-choice accuracy: the same prompts, the same sums.
  config = run[0].copy_and_resolve_references()
  config.eval.mc_file = str(tmp_path / "questions.jsonl")
  own = multiple_choice.evaluate_multiple_choice(config, model_run.ModelRun(run[1], model_run.lineage(
      str(uninterrupted))))
  assert result["harness/lmjax_mc/acc"] == own["mc_accuracy"]
  assert result["harness/lmjax_mc/acc_norm"] >= 0 and result["harness/lmjax_mc/acc_stderr"] > 0
  chance = 1 / 3
  assert result["harness/core_centered"] == pytest.approx((own["mc_accuracy"] - chance) / (1 - chance))
  assert result["harness/core_tasks"] == 1
  assert "| harness/lmjax_mc/acc |" in (out / "eval.md").read_text()


def test_a_chat_models_prompt_is_the_chat_protocols_ids_written_out_and_read_back(run):
  """apply_chat_template is chat.render_prompt as text; tok_encode gives back exactly those ids (the ones the
  model was fine-tuned on), and a task's gen_prefix stays an open reply. A base model reads the names as text."""
  from lmjax.eval.harness import HarnessLM
  tok = run[1].tokenizer
  lm = HarnessLM(run[1], batch_size=4, chat_format=True)
  messages = [{"role": "system", "content": "Answer in one word."},
              {"role": "user", "content": "Question: Which book comes first?\nAnswer:"}]
  text = lm.apply_chat_template(messages)
  assert text == ("<|bos|><|system_start|>Answer in one word.<|system_end|><|user_start|>Question: Which book "
                  "comes first?\nAnswer:<|user_end|><|assistant_start|>")
  assert lm.tok_encode(text) == chat.render_prompt(messages, tok)
  prefilled = lm.apply_chat_template(messages + [{"role": "assistant", "content": "The book is"}],
                                     add_generation_prompt=False)
  assert lm.tok_encode(prefilled) == chat.render_prompt(messages, tok) + tok.encode("The book is")
  assert chat.chat_tokens(tok).assistant_end in lm.sampling({}).stop_ids
  base = HarnessLM(run[1], batch_size=4)
  assert base.tok_encode(text) == [tok.bos_id, *tok.encode(text)]
  assert chat.chat_tokens(tok).user_start not in base.tok_encode(text)


def test_a_chat_model_runs_a_local_task_on_its_chat_prompts(run, tmp_path):
  """lmjax_mc with the chat template: every request is the question as a user turn, each option the start of
  the reply, scored on exactly the ids chat.render_prompt gives."""
  from lmjax.eval.harness import score_pairs
  config, loaded = run[0].copy_and_resolve_references(), run[1]
  config.eval.update(harness_tasks="lmjax_mc", harness_include=_task_dir(tmp_path))
  results = harness_task.run_harness(config, loaded, chat_format=True)
  tok, samples, correct = loaded.tokenizer, results["samples"]["lmjax_mc"], 0
  assert len(samples) == len(QUESTIONS)
  for sample in samples:
    doc = sample["doc"]
    prompt = chat.render_prompt([{"role": "user", "content": f"Question: {doc['question']}\nAnswer:"}], tok)
    assert sample["arguments"] == [(tok.decode(prompt), option) for option in doc["options"]]  # no delimiter
    pairs = [(prompt, tok.encode(option)) for option in doc["options"]]
    by_hand = [logprob for logprob, _ in score_pairs(loaded, pairs, batch_size=4)]
    assert [r[0][0] for r in sample["resps"]] == pytest.approx(by_hand, abs=1e-3)
    correct += int(np.argmax(by_hand)) == doc["answer"]
  assert results["results"]["lmjax_mc"]["acc,none"] == correct / len(QUESTIONS)


@pytest.mark.slow  # compiles the engine's prefill and decode for the task's 8 prompts (about 15 s more)
def test_a_generation_task_gets_replies_cut_at_its_stop_string_and_no_core_entry(run, tmp_path):
  config = run[0].copy_and_resolve_references()
  config.eval.update(harness_tasks="lmjax_gen,lmjax_mc", harness_include=_task_dir(tmp_path))
  results = harness_task.run_harness(config, run[1])
  replies = [s["filtered_resps"][0] for s in results["samples"]["lmjax_gen"]]
  assert len(replies) == len(QUESTIONS) and all(isinstance(r, str) and "\n" not in r for r in replies)
  assert all(len(run[1].tokenizer.encode(r)) <= 8 for r in replies)  # the task's max_gen_toks
  scores = harness_task.metric_scores(results) | harness_task.core_centered(results)
  assert 0 <= scores["harness/lmjax_gen/exact_match"] <= 1
  assert scores["harness/core_tasks"] == 1  # the generation task reports no acc: only lmjax_mc counts


def test_the_report_shows_harness_scores_in_their_own_table(tmp_path):
  stage_dir = tmp_path / "eval_pretrain"
  stage_dir.mkdir()
  scores = {"harness/hellaswag/acc": 0.25, "harness/hellaswag/acc_stderr": 0.01,
            "harness/hellaswag/acc_norm": 0.3, "harness/gsm8k/exact_match,strict-match": 0.0,
            "harness/core_centered": 0.02, "harness/core_tasks": 1, "mc_accuracy": 0.3}
  (stage_dir / "eval.json").write_text(json.dumps(scores))
  (tmp_path / "chain.json").write_text(json.dumps({"stages": [{"stage": "eval_pretrain", "dir": str(stage_dir),
                                                               "key": "k"}]}))
  text = report.render(str(tmp_path))
  section = text[text.index("### Standard benchmarks"):]
  assert "| hellaswag | acc | 0.25 ± 0.01 |" in section and "| gsm8k | exact_match,strict-match | 0 |" in section
  assert "| CORE-style average (1 task) | centered acc | 0.02 |" in section
  assert "harness/" not in text[:text.index("### Standard benchmarks")]  # not repeated in the main table


def test_core_average_centers_each_top_level_task_on_its_chance_level():
  samples = lambda choices: [{"arguments": [None] * n} for n in choices]
  results = {"results": {"a": {"acc,none": 0.75}, "b1": {"acc,none": 0.5}, "b2": {"acc,none": 1.0},
                         "g": {"exact_match,none": 0.5}, "b": {"acc,none": 0.6}},  # lm_eval lists groups here too
             "groups": {"b": {"acc,none": 0.6}}, "group_subtasks": {"b": ["b1", "b2"]},
             "configs": {"a": {"output_type": "multiple_choice"}, "b1": {"output_type": "multiple_choice"},
                         "b2": {"output_type": "multiple_choice"}, "g": {"output_type": "generate_until"}},
             "samples": {"a": samples([2, 2]), "b1": samples([4]), "b2": samples([4, 4, 4]), "g": samples([1])}}
  assert harness_task.chance_levels(results) == {"a": 0.5, "b1": 0.25, "b2": 0.25, "b": 0.25}
  core = harness_task.core_centered(results)  # a: (0.75 - 0.5) / 0.5; group b: (0.6 - 0.25) / 0.75
  assert core == {"harness/core_centered": pytest.approx((0.5 + 0.35 / 0.75) / 2), "harness/core_tasks": 2}
  results["results"]["b"] = {"alias": "b"}  # a group lm_eval does not aggregate counts its members:
  del results["groups"]  # b1 (0.5 - 0.25) / 0.75, b2 (1 - 0.25) / 0.75
  core = harness_task.core_centered(results)
  assert core == {"harness/core_centered": pytest.approx((0.5 + 1 / 3 + 1) / 3), "harness/core_tasks": 3}


@pytest.mark.slow  # indexes the harness's ~15,000 built-in tasks (about 15 s)
def test_unknown_harness_tasks_are_an_error_naming_the_field_and_a_close_name(tmp_path):
  with pytest.raises(ConfigError, match=r"harness_tasks.*'lmjax_mcq' \(did you mean lmjax_mc"):
    harness_task.task_manager(["lmjax_mcq"], _task_dir(tmp_path))


def test_importing_lmjax_and_its_eval_command_does_not_import_lm_eval():
  code = "import sys, lmjax, lmjax.cli, lmjax.eval.stage, lmjax.chain.report; print('lm_eval' in sys.modules)"
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
  assert out.stdout.strip() == "False"
