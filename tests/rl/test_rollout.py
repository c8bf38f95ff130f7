"""Batched rollouts with a real tool-calling model: tool outputs are inserted and marked not-sampled, and a
greedy rollout is exactly the chat engine's reply."""
from lmjax import chat
from lmjax.infer.engine import chat_reply
from lmjax.infer.sampler import SamplingParams
from lmjax.infer.tools import TOOLS
from lmjax.rl.rollout import rollout
from tests.infer.test_engine import MALICIOUS, overfit_model  # noqa: F401 (a fixture)


def test_rollouts_insert_tool_outputs_marked_as_not_sampled(overfit_model):  # noqa: F811
  loaded, conversations = overfit_model
  prompts = [chat.render_prompt(c[:1], loaded.tokenizer) for c in conversations]
  sampling = SamplingParams(max_new_tokens=48)
  rollouts = rollout(loaded.graphdef, loaded.params, loaded.tokenizer, prompts, sampling, tools=TOOLS)
  special = chat.chat_tokens(loaded.tokenizer)
  for conversation, r in zip(conversations, rollouts):
    assert r.tool_calls == 1
    assert r.message(loaded.tokenizer)["content"] == conversation[1]["content"]
    inserted = [i for i, g in zip(r.reply, r.generated) if not g]
    assert inserted[0] == special.tool_output_start and inserted[-1] == special.tool_output_end
    sampled = [i for i, g in zip(r.reply, r.generated) if g]
    assert special.tool_output_start not in sampled and sampled[-1] == special.assistant_end


def test_a_greedy_rollout_is_the_chat_engines_reply(overfit_model):  # noqa: F811
  loaded, conversations = overfit_model
  sampling = SamplingParams(max_new_tokens=48)
  prompts = [chat.render_prompt(c[:1], loaded.tokenizer) for c in conversations]
  rollouts = rollout(loaded.graphdef, loaded.params, loaded.tokenizer, prompts, sampling, tools=TOOLS)
  for conversation, r in zip(conversations, rollouts):
    assert list(r.reply) == chat_reply(loaded, conversation[:1], sampling=sampling).ids


def test_the_reply_budget_and_the_tool_call_limit_end_a_rollout(overfit_model):  # noqa: F811
  loaded, conversations = overfit_model
  prompts = [chat.render_prompt(conversations[3][:1], loaded.tokenizer)]
  sampling = SamplingParams(max_new_tokens=48)
  [short] = rollout(loaded.graphdef, loaded.params, loaded.tokenizer, prompts, sampling, tools=TOOLS,
                    max_reply_tokens=5)
  assert len(short.reply) == 5 and all(short.generated) and short.tool_calls == 0
  [no_tools] = rollout(loaded.graphdef, loaded.params, loaded.tokenizer, prompts, sampling, tools=TOOLS,
                       max_tool_calls=0)
  assert no_tools.tool_calls == 0 and all(no_tools.generated)
  assert no_tools.reply[-1] == chat.chat_tokens(loaded.tokenizer).tool_call_end
