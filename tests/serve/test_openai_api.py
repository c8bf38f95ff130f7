"""The OpenAI-compatible API through the official `openai` client: chat completions (whole, streamed, n
choices, stop strings, the model's tool call run in the server), completions, the model list, and errors in
OpenAI's shape with their HTTP status; concurrent requests share engine batches."""
import concurrent.futures
import dataclasses
import json
import signal
import urllib.request

import openai
import pytest

from lmjax.infer.engine import continuations
from lmjax.infer.sampler import SamplingParams
from tests.serve.conftest import CONVERSATIONS, SEQ_LEN, ServerThread


@pytest.fixture(scope="module")
def client(server):
  return openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=120)


def _ask(client, served, text, **options):
  return client.chat.completions.create(model=served.name, messages=[{"role": "user", "content": text}],
                                        temperature=options.pop("temperature", 0), **options)


def test_the_model_list_names_the_run(client, served, chat_run):
  [model] = client.models.list().data
  assert model.id == served.name == chat_run.name and model.owned_by == "lmjax"


def test_a_chat_reply_runs_the_models_tool_call_and_shows_it(client, served):
  reply = _ask(client, served, "What is 6*7?")
  [choice] = reply.choices
  assert choice.message.content == "[calculator] 6*7\n  → 42\nIt is 42."
  assert choice.message.model_extra["parts"] == CONVERSATIONS[0][1]["content"]
  assert choice.finish_reason == "stop" and reply.object == "chat.completion" and reply.model == served.name
  assert reply.usage.prompt_tokens > 5 and reply.usage.completion_tokens == len(
      served.loaded.tokenizer.encode("calculator\n6*7It is 42.")) + 3  # + call start, call end, assistant end


def test_streamed_chunks_add_up_to_the_greedy_reply(client, served):
  for text in ("Tell me a story.", "What is 6*7?"):
    whole = _ask(client, served, text).choices[0].message.content
    chunks = list(_ask(client, served, text, stream=True))
    pieces = [c.choices[0].delta.content for c in chunks if c.choices[0].delta.content]
    assert "".join(pieces) == whole and len(pieces) > 2
    assert chunks[0].choices[0].delta.role == "assistant" and chunks[-1].choices[0].finish_reason == "stop"
  assert chunks[-1].choices[0].model_extra["parts"] == CONVERSATIONS[0][1]["content"]


def test_a_multi_turn_conversation_with_a_system_message(client, served):
  messages = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"}]
  reply = client.chat.completions.create(model=served.name, messages=messages, temperature=0)
  assert reply.choices[0].message.content == "Hi."
  followup = messages + [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "What is 6*7?"}]
  assert client.chat.completions.create(model=served.name, messages=followup, temperature=0).choices[0].message


def test_a_stop_string_cuts_the_reply(client, served):
  full = _ask(client, served, "Hello!").choices[0].message.content
  reply = _ask(client, served, "Hello!", stop=["tiny"])
  assert reply.choices[0].message.content == full[:full.index("tiny")] and reply.choices[0].finish_reason == "stop"
  streamed = "".join(c.choices[0].delta.content or "" for c in _ask(client, served, "Hello!", stop="tiny",
                                                                     stream=True))
  assert streamed == full[:full.index("tiny")]


def test_max_tokens_ends_the_reply_with_finish_reason_length(client, served):
  reply = _ask(client, served, "Tell me a story.", max_tokens=4)
  assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 4


def test_n_seeded_choices_are_reproducible(client, served):
  ask = lambda: _ask(client, served, "Tell me a story.", temperature=1.5, n=3, seed=7, max_tokens=12)
  first, again = ask(), ask()
  assert [c.index for c in first.choices] == [0, 1, 2]
  assert [c.message.content for c in first.choices] == [c.message.content for c in again.choices]


def test_a_completion_is_the_engines_continuation(client, served):
  reply = client.completions.create(model=served.name, prompt="In the beginning", max_tokens=6, temperature=0)
  tok, loaded = served.loaded.tokenizer, served.loaded
  [expected] = continuations(loaded.graphdef, loaded.params, [[tok.bos_id, *tok.encode("In the beginning")]],
                             SamplingParams(max_new_tokens=6, stop_ids=(tok.eos_id,)))
  assert reply.choices[0].text == tok.decode(expected.reply) and reply.object == "text_completion"
  assert reply.choices[0].finish_reason == "length" and reply.usage.completion_tokens == 6
  streamed = client.completions.create(model=served.name, prompt="In the beginning", max_tokens=6, temperature=0,
                                       stream=True)
  assert "".join(c.choices[0].text for c in streamed) == reply.choices[0].text


def test_a_bad_request_is_an_openai_error_naming_the_field(client, served):
  with pytest.raises(openai.BadRequestError) as bad:
    _ask(client, served, "Hello!", temperature=5)
  assert bad.value.status_code == 400 and bad.value.param == "temperature" and "temperature" in bad.value.message
  with pytest.raises(openai.BadRequestError) as bad:
    client.chat.completions.create(model=served.name, messages=[{"role": "assistant", "content": "Hi"}])
  assert "must start with a system or user message" in bad.value.message
  with pytest.raises(openai.NotFoundError) as missing:
    client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": "Hi"}])
  assert missing.value.code == "model_not_found" and served.name in missing.value.message


def test_a_prompt_beyond_the_context_is_a_400_saying_so(client, served):
  with pytest.raises(openai.BadRequestError) as long:
    _ask(client, served, "word " * 200)
  assert long.value.code == "context_length_exceeded" and f"context is {SEQ_LEN} tokens" in long.value.message
  with pytest.raises(openai.BadRequestError) as long:
    _ask(client, served, "Hello!", max_tokens=SEQ_LEN)
  assert long.value.code == "context_length_exceeded" and "max_tokens" in long.value.message


def test_concurrent_requests_share_engine_batches_and_get_their_own_replies(client, served):
  texts = [conversation[-2]["content"] for conversation in CONVERSATIONS[:3]] * 2
  alone = {text: _ask(client, served, text).choices[0].message.content for text in set(texts)}
  before = len(served.batcher.batch_sizes)
  with concurrent.futures.ThreadPoolExecutor(len(texts)) as pool:
    replies = list(pool.map(lambda text: _ask(client, served, text).choices[0].message.content, texts))
  assert replies == [alone[text] for text in texts]
  assert max(served.batcher.batch_sizes[before:]) > 1


def test_an_overloaded_server_answers_503(served):
  settings = served.settings.copy_and_resolve_references()
  settings.max_waiting = 0
  from lmjax.serve.app import make_app
  running = ServerThread(make_app(dataclasses.replace(served, settings=settings)))
  try:
    client = openai.OpenAI(base_url=f"{running.url}/v1", api_key="unused", max_retries=0)
    with pytest.raises(openai.InternalServerError) as busy:
      _ask(client, served, "Hello!")
    assert busy.value.status_code == 503 and busy.value.code == "overloaded"
  finally:
    running.stop()


def test_a_server_started_and_stopped_in_a_thread_leaves_the_signal_handlers_as_they_were(served):
  """uvicorn takes SIGINT/SIGTERM only on the main thread: the tests' servers leave the process's handlers (which
  test_preemption's watch test relies on) as they were, while they run and after."""
  from lmjax.serve.app import make_app
  handlers = lambda: [signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)]
  before = handlers()
  running = ServerThread(make_app(dataclasses.replace(served)))  # its own batcher: the session's is running
  try:
    assert handlers() == before
  finally:
    running.stop()
  assert handlers() == before


def test_an_unknown_route_and_malformed_json_get_openai_shaped_errors(server):
  for path, data, status in [("/v1/nope", None, 404), ("/v1/chat/completions", b"{not json", 400)]:
    request = urllib.request.Request(server.url + path, data=data, headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as error:
      urllib.request.urlopen(request)
    assert error.value.code == status and set(json.load(error.value)["error"]) == {"message", "type", "param", "code"}
