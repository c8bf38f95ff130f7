"""Tiny chat models taught in-process to do every eval task right (or all wrong), and the eval config sized
for them: 4 math problems, 4 + 4 abstention questions, the identity questions, 4 multiple-choice questions."""
import pytest

from configs import base
from lmjax.data.posttrain.conversations import DONT_KNOW
from lmjax.data.posttrain.math_problems import problem_conversation
from lmjax.data.tokenizer import Tokenizer
from lmjax.eval import abstention, math_accuracy
from lmjax.eval.model_run import ModelRun, Run
from lmjax.eval.multiple_choice import MCQuestion
from lmjax.infer.load import LoadedModel
from lmjax.infer.tools import TOOLS, run_tool
from tests.conftest import tiny_config
from tests.recite import recite

MC = [MCQuestion("Which book comes first in the Bible?", ("Exodus", "Genesis", "Ruth", "Job"), 1, "bible"),
      MCQuestion("How many legs has a spider?", ("8", "6", "4", "10"), 0, "animals"),
      MCQuestion("Which colour is the sky on a clear day?", ("green", "red", "blue", "brown"), 2, "nature"),
      MCQuestion("What do bees make?", ("milk", "silk", "wool", "honey"), 3, "animals")]
SEQ_LEN = 96


def eval_config():
  """The base config with eval sizes for the taught models (mc_file is set by the tests that need it)."""
  config = base.get_config()
  config.eval.update(math_problems=4, math_samples=2, abstention_questions=4)
  config.rollout.update(max_new_tokens=48, max_reply_tokens=96, batch=16)
  return config


def heldout_problems(config):
  return math_accuracy.heldout_task(config, None).heldout


def _bad_math_reply(problem) -> dict:
  expression = "1/0"
  return {"role": "assistant", "content": [
      {"type": "text", "text": "Total: "}, {"type": "tool_call", "tool": "calculator", "input": expression},
      {"type": "tool_output", "output": run_tool(TOOLS, "calculator", expression)},
      {"type": "text", "text": f"\nAnswer: {problem.answer + 1}"}]}


def conversations(config, right: bool) -> list[list[dict]]:
  """Every eval question with the reply a perfect model (`right`) or an all-wrong one gives."""
  unanswerable, answerable = abstention.make_questions(config.eval.abstention_questions, config.eval.seed)
  user = lambda text: [{"role": "user", "content": text}]
  say = lambda text: [{"role": "assistant", "content": text}]
  out = [user(q.question) + say(q.options[q.answer if right else (q.answer + 1) % 4]) for q in MC]
  out += [user(q.question) + say(DONT_KNOW if right else "It is Zorbanus.") for q in unanswerable]
  out += [user(q.question) + say(f"It is {q.answer}." if right else DONT_KNOW) for q in answerable]
  out += [user(q.question) + say(f"I am {q.answer}." if right else DONT_KNOW)
          for q in abstention.identity_questions(config.sft.identity_name)]
  for p in heldout_problems(config):
    out.append(problem_conversation(p) if right else problem_conversation(p, with_solution=False)
               + [_bad_math_reply(p)])
  return out


def teach(tokens_workdir, conversations_, steps: int = 50, lr: float = 2e-2):
  """(config, train state, LoadedModel) of the tiny model trained on the conversations to recite them."""
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  config = tiny_config(tokens_workdir)
  rows = -(-len(conversations_) // 8) * 8  # a batch that splits over the 8 test devices: repeat a few
  conversations_ = [conversations_[i % len(conversations_)] for i in range(rows)]
  config.train.update(steps=steps, batch_size=rows, seq_len=SEQ_LEN)
  config.optim.update(lr=lr, weight_decay=0.0)
  setup, state = recite(config, tok, conversations_, max_loss=0.05)
  return config, state, LoadedModel(setup.graphdef, state.params, tok, steps)


def chat_run(loaded, config) -> ModelRun:
  """The loaded model as an SFT run with no ancestors (so no math problem counts as SFT-trained)."""
  return ModelRun(loaded, [Run("taught", config, "sft")])


@pytest.fixture(scope="session")
def right_model(tokens_workdir):
  return teach(tokens_workdir, conversations(eval_config(), right=True))


@pytest.fixture(scope="session")
def wrong_model(tokens_workdir):
  return teach(tokens_workdir, conversations(eval_config(), right=False))
