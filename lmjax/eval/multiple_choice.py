"""Multiple-choice questions scored by log-likelihood: the model "answers" the option it finds most likely
after the question, so even a model that cannot yet write a clean reply is measured.

A chat model reads the question as a user turn and each option as the start of its reply; a base model
reads "Question: ...\\nAnswer:" and the option after a space. `mc_accuracy` picks the option with the highest
summed log-probability, `mc_accuracy_norm` the highest per token (fairer between options of different
lengths); `mc_chance` is what picking uniformly at random scores. Questions are JSONL records
{"question", "options": [str, ...], "answer": index of the right option[, "kind"]}; the shipped ones
(lmjax/assets/eval/multiple_choice.jsonl) come from experiments/build_mc_questions.py.
"""
import dataclasses
import os

import numpy as np

from lmjax import chat
from lmjax.config import ConfigError
from lmjax.data.documents import read_jsonl
from lmjax.rl.experience import make_scorer

SHIPPED = os.path.normpath(os.path.join(os.path.dirname(__file__), "..", "assets", "eval",
                                        "multiple_choice.jsonl"))
ROW_MULTIPLE = 64  # rows are padded to a multiple of this many tokens: few shapes, few compilations


@dataclasses.dataclass(frozen=True)
class MCQuestion:
  question: str
  options: tuple[str, ...]
  answer: int
  kind: str = "mc"


def _record(record, where) -> MCQuestion:
  options, answer = record["options"], record["answer"]
  if not isinstance(options, list) or len(options) < 2 or not all(isinstance(o, str) and o for o in options):
    raise ValueError("'options' must be a list of at least 2 non-empty strings")
  if not isinstance(answer, int) or not 0 <= answer < len(options):
    raise ValueError(f"'answer' must be the index of the right option, 0 to {len(options) - 1}")
  return MCQuestion(str(record["question"]), tuple(options), answer, record.get("kind", "mc"))


def read_questions(pattern: str = "") -> list[MCQuestion]:
  """The questions of a JSONL file (or glob), the shipped ones if `pattern` is ""; an error if none."""
  pattern = pattern or SHIPPED
  try:
    questions = list(read_jsonl(pattern, _record, 'a {"question", "options", "answer"} record'))
  except FileNotFoundError:
    raise ConfigError(f"config.eval.mc_file={pattern!r} matches no file") from None
  except ValueError as e:
    raise ConfigError(f"config.eval.mc_file: {e}") from e
  if not questions:
    raise ConfigError(f"config.eval.mc_file={pattern!r} holds no questions; give a JSONL file with one "
                      '{"question", "options", "answer"} record per line')
  return questions


def context_and_options(question: MCQuestion, tokenizer, chat_format: bool) -> tuple[list[int], list[list]]:
  """(the ids the options continue, each option's ids)."""
  if chat_format:
    context = chat.render_prompt([{"role": "user", "content": question.question}], tokenizer)
    return context, [tokenizer.encode(option) for option in question.options]
  context = [tokenizer.bos_id, *tokenizer.encode(f"Question: {question.question}\nAnswer:")]
  return context, [tokenizer.encode(f" {option}") for option in question.options]


def continuation_rows(pairs: list[tuple[list[int], list[int]]], length: int) -> dict[str, np.ndarray]:
  """[n, length] rows of context + continuation, shifted by one; loss_mask 1 on the continuation's targets."""
  keys = ("tokens", "targets", "positions", "segment_ids")
  rows = {k: np.zeros((len(pairs), length), np.int32) for k in keys}
  rows["loss_mask"] = np.zeros((len(pairs), length), np.float32)
  for b, (context, continuation) in enumerate(pairs):
    ids = np.asarray(context + continuation, np.int32)
    n = len(ids) - 1
    rows["tokens"][b, :n], rows["targets"][b, :n] = ids[:-1], ids[1:]
    rows["positions"][b, :n], rows["segment_ids"][b, :n] = np.arange(n), 1
    rows["loss_mask"][b, len(context) - 1:n] = 1
  return rows


def continuation_logprobs(loaded, pairs: list[tuple[list[int], list[int]]],
                          batch_size: int = 32) -> np.ndarray:
  """log p(continuation | context) of each (context ids, continuation ids) pair: the sum over its tokens."""
  if any(not continuation for _, continuation in pairs):
    raise ValueError("a continuation is empty; every option must encode to at least one token")
  longest = max(len(c) + len(o) for c, o in pairs) - 1
  rows = continuation_rows(pairs, -(-longest // ROW_MULTIPLE) * ROW_MULTIPLE)
  score, sums = make_scorer(loaded.graphdef, with_values=False), []
  for start in range(0, len(pairs), batch_size):
    chunk = {k: v[start:start + batch_size] for k, v in rows.items()}
    full = {k: np.pad(v, [(0, batch_size - len(v)), (0, 0)]) for k, v in chunk.items()}  # one shape
    logprobs_bt = np.asarray(score(loaded.params, full)[0])[:len(chunk["tokens"])]
    sums.append((logprobs_bt * chunk["loss_mask"]).sum(axis=1))
  return np.concatenate(sums)


def mc_metrics(questions: list[MCQuestion], logprobs: list[np.ndarray], lengths: list[np.ndarray]) -> dict:
  """Accuracy by summed and by per-token log-probability, overall and per kind, and the chance level."""
  answers = np.array([q.answer for q in questions])
  right = np.array([np.argmax(lp) for lp in logprobs]) == answers
  right_norm = np.array([np.argmax(lp / n) for lp, n in zip(logprobs, lengths)]) == answers
  kinds = np.array([q.kind for q in questions])
  chance = float(np.mean([1 / len(q.options) for q in questions]))
  return {"mc_accuracy": float(right.mean()), "mc_accuracy_norm": float(right_norm.mean()),
          "mc_chance": chance, "mc_questions": len(questions),
          **{f"mc_accuracy_{kind}": float(right[kinds == kind].mean()) for kind in sorted(set(kinds))}}


def evaluate_multiple_choice(config, run) -> dict:
  """mc_accuracy, mc_accuracy_norm, mc_chance, mc_questions and mc_accuracy_<kind> on config.eval.mc_file."""
  questions = read_questions(config.eval.mc_file)
  per_question = [context_and_options(q, run.loaded.tokenizer, chat_format=run.chat) for q in questions]
  pairs = [(context, option) for context, options in per_question for option in options]
  splits = np.cumsum([len(q.options) for q in questions])[:-1]
  logprobs = np.split(continuation_logprobs(run.loaded, pairs), splits)
  lengths = np.split(np.array([len(option) for _, option in pairs]), splits)
  return mc_metrics(questions, logprobs, lengths)
