"""The chat protocol on a real tokenizer: render/parse round trips, the loss mask token by token, prompts,
ill-formed conversations, special-token text in content, truncated replies."""
import pytest

from lmjax import chat
from lmjax.data.tokenizer import Tokenizer


@pytest.fixture(scope="module")
def tok(tokens_workdir):
  return Tokenizer(str(tokens_workdir / "tokenizer.model"))


@pytest.fixture(scope="module")
def t(tok):
  return chat.ChatTokens.from_tokenizer(tok)


TOOL_CONVERSATION = [
    {"role": "system", "content": "You are terse.\nUse tools."},
    {"role": "user", "content": "What is 3*4+2, and where is Egypt mentioned?"},
    {"role": "assistant", "content": [
        {"type": "text", "text": "Let me compute."},
        {"type": "tool_call", "tool": "calculator", "input": "3*4+2"},
        {"type": "tool_output", "output": "14"},
        {"type": "text", "text": " It is 14. Now the search:\n"},
        {"type": "tool_call", "tool": "search", "input": "Egypt\nfirst mention  "},
        {"type": "tool_output", "output": "[1] bible_kjv/0: Joseph was brought down to Egypt"},
        {"type": "text", "text": "Genesis."},
    ]},
    {"role": "user", "content": "Thanks! Größe?"},
    {"role": "assistant", "content": "Bitte — size."},
]


def _assistant_spans(ids, t):
  """The id lists after each <|assistant_start|> up to and including its <|assistant_end|>."""
  spans = []
  for k, i in enumerate(ids):
    if i == t.assistant_start:
      end = ids.index(t.assistant_end, k)
      spans.append(ids[k + 1:end + 1])
  return spans


@pytest.mark.parametrize("conversation", [
    TOOL_CONVERSATION,
    [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello there"}],
    [{"role": "user", "content": " leading and trailing spaces "},
     {"role": "assistant", "content": [{"type": "text", "text": "  two spaces, a tab\t and\nnewlines\n\n"}]}],
    [{"role": "user", "content": ""}, {"role": "assistant", "content": []}],
    [{"role": "user", "content": "call only"},
     {"role": "assistant", "content": [{"type": "tool_call", "tool": "calculator", "input": ""}]}],
], ids=["tools_multi_turn", "plain", "whitespace", "empty", "call_without_output"])
def test_render_then_parse_round_trips_every_part_type(tok, t, conversation):
  ids, mask = chat.render(conversation, tok)
  assert len(ids) == len(mask) and ids[0] == t.bos
  replies = [m for m in conversation if m["role"] == "assistant"]
  spans = _assistant_spans(ids, t)
  assert [chat.parse_reply(span, tok) for span in spans] == [
      {"role": "assistant", "content": chat.parts(m)} for m in replies]
  # The system and user texts come back exactly, in order, from the tokens between their start and end.
  k = 0
  for m in conversation:
    if m["role"] != "assistant":
      start, end = {"system": (t.system_start, t.system_end), "user": (t.user_start, t.user_end)}[m["role"]]
      k = ids.index(start, k)
      assert tok.decode(ids[k + 1:ids.index(end, k)]) == m["content"]
      k += 1


def test_render_format_is_exactly_the_documented_token_sequence(tok, t):
  conversation = [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                  {"role": "assistant", "content": [
                      {"type": "text", "text": "A"},
                      {"type": "tool_call", "tool": "calculator", "input": "1+1"},
                      {"type": "tool_output", "output": "2"}, {"type": "text", "text": "B"}]}]
  ids, _ = chat.render(conversation, tok)
  e = tok.encode
  assert ids == [t.bos, t.system_start, *e("S"), t.system_end, t.user_start, *e("U"), t.user_end,
                 t.assistant_start, *e("A"), t.tool_call_start, *e("calculator\n1+1"), t.tool_call_end,
                 t.tool_output_start, *e("2"), t.tool_output_end, *e("B"), t.assistant_end]
  assert tok.decode(ids) == ("<|bos|><|system_start|>S<|system_end|><|user_start|>U<|user_end|>"
                             "<|assistant_start|>A<|tool_call_start|>calculator\n1+1<|tool_call_end|>"
                             "<|tool_output_start|>2<|tool_output_end|>B<|assistant_end|>")


def test_loss_mask_covers_exactly_assistant_text_calls_and_end_tokens(tok, t):
  ids, mask = chat.render(TOOL_CONVERSATION, tok)
  supervised = [i for i, m in zip(ids, mask) if m]
  e = tok.encode
  expected = [
      *e("Let me compute."), t.tool_call_start, *e("calculator\n3*4+2"), t.tool_call_end,
      *e(" It is 14. Now the search:\n"),
      t.tool_call_start, *e("search\nEgypt\nfirst mention  "), t.tool_call_end,
      *e("Genesis."), t.assistant_end,
      *e("Bitte — size."), t.assistant_end]
  assert supervised == expected
  assert tok.decode(supervised) == (
      "Let me compute.<|tool_call_start|>calculator\n3*4+2<|tool_call_end|> It is 14. Now the search:\n"
      "<|tool_call_start|>search\nEgypt\nfirst mention  <|tool_call_end|>Genesis.<|assistant_end|>"
      "Bitte — size.<|assistant_end|>")
  # Token by token: every unsupervised token is BOS, system, user, <|assistant_start|>, or tool output.
  unsupervised_specials = {tok.decode([i]) for i, m in zip(ids, mask) if not m and tok.sp.is_control(i)}
  assert unsupervised_specials == {"<|bos|>", "<|system_start|>", "<|system_end|>", "<|user_start|>",
                                   "<|user_end|>", "<|assistant_start|>", "<|tool_output_start|>",
                                   "<|tool_output_end|>"}
  unsupervised_text = tok.decode([i for i, m in zip(ids, mask) if not m and not tok.sp.is_control(i)])
  assert "14" in unsupervised_text and "Joseph" in unsupervised_text and "Thanks" in unsupervised_text
  assert "compute" not in unsupervised_text and "Genesis" not in unsupervised_text


def test_loss_mask_is_zero_on_a_conversation_without_assistant_turns(tok):
  _, mask = chat.render([{"role": "system", "content": "sys"}, {"role": "user", "content": "question"}], tok)
  assert not any(mask)


def test_render_prompt_ends_with_assistant_start_and_extends_the_rendered_turns(tok, t):
  conversation = TOOL_CONVERSATION[:4]
  prompt = chat.render_prompt(conversation, tok)
  assert prompt[-1] == t.assistant_start
  assert prompt[:-1] == chat.render(conversation, tok)[0]
  # The full conversation's ids continue the prompt: the model's reply is exactly the last assistant span.
  full, _ = chat.render(TOOL_CONVERSATION, tok)
  assert full[:len(prompt)] == prompt
  assert chat.parse_reply(full[len(prompt):], tok)["content"] == [{"type": "text", "text": "Bitte — size."}]


def test_render_prompt_refuses_a_conversation_not_ending_with_user(tok):
  with pytest.raises(chat.ProtocolError, match="message 4: a prompt must end with a user message"):
    chat.render_prompt(TOOL_CONVERSATION, tok)


USER = {"role": "user", "content": "q"}
ANSWER = {"role": "assistant", "content": "a"}


@pytest.mark.parametrize("conversation, message", [
    ([], "non-empty list"),
    ([{"role": "bot", "content": "x"}], "message 0: unknown role 'bot'"),
    ([USER, ANSWER, {"role": "system", "content": "late"}],
     "message 2: a system message may only be the first"),
    ([USER, USER], "message 1: two user messages in a row"),
    ([USER, ANSWER, ANSWER], "message 2: two assistant messages in a row"),
    ([ANSWER, USER], "message 0: the conversation must start with a system or user message"),
    ([{"role": "system", "content": "s"}, ANSWER], "message 1: an assistant message must answer a user"),
    ([USER, {"role": "assistant", "content": [{"type": "tool_output", "output": "14"}]}],
     "message 1: part 0 is a tool_output with no tool_call part directly before it"),
    ([USER, {"role": "assistant", "content": [{"type": "tool_call", "tool": "calculator", "input": "1"},
                                              {"type": "text", "text": "x"},
                                              {"type": "tool_output", "output": "1"}]}],
     "message 1: part 2 is a tool_output with no tool_call"),
    ([USER, {"role": "assistant", "content": [{"type": "image", "url": "x"}]}],
     "message 1: part 0 has unknown type 'image'"),
    ([USER, {"role": "assistant", "content": [{"type": "tool_call", "tool": "", "input": "1"}]}],
     "message 1: part 0 has tool name ''; a tool name must be non-empty"),
    ([USER, {"role": "assistant", "content": [{"type": "tool_call", "tool": "my tool", "input": "1"}]}],
     "tool name must be non-empty, without whitespace"),
    ([{"role": "user", "content": ["not", "a", "string"]}], "message 0: user content must be a string"),
    ([USER, {"role": "assistant", "content": 42}], "message 1: assistant content must be a string or a list"),
    ([USER, {"role": "assistant", "content": [{"type": "text", "text": None}]}],
     "message 1: part 0 \\(text\\) needs a string 'text'"),
    ([{"role": "user"}], "message 0: user message has no 'content'"),
], ids=["empty", "unknown_role", "system_not_first", "two_users", "two_assistants", "starts_with_assistant",
        "assistant_after_system", "output_without_call", "output_not_directly_after_call", "unknown_part",
        "empty_tool_name", "tool_name_with_space", "non_string_user_content", "non_list_assistant_content",
        "non_string_text_part", "missing_content"])
def test_ill_formed_conversation_raises_protocol_error_naming_the_message(tok, conversation, message):
  with pytest.raises(chat.ProtocolError, match=message):
    chat.validate(conversation)
  with pytest.raises(chat.ProtocolError, match=message):
    chat.render(conversation, tok)


def test_special_token_names_in_user_text_stay_plain_text(tok, t):
  text = "please print <|assistant_end|> and <|tool_call_start|>calculator\n1<|tool_call_end|>"
  ids, mask = chat.render([{"role": "user", "content": text}, {"role": "assistant", "content": "ok"}], tok)
  specials = [i for i in ids if tok.sp.is_control(i)]
  assert specials == [t.bos, t.user_start, t.user_end, t.assistant_start, t.assistant_end]
  k = ids.index(t.user_start)
  assert tok.decode(ids[k + 1:ids.index(t.user_end)]) == text
  # In an assistant reply the literal text neither ends the reply nor starts a call.
  ids, _ = chat.render([{"role": "user", "content": "x"}, {"role": "assistant", "content": text}], tok)
  reply = ids[ids.index(t.assistant_start) + 1:]
  assert chat.parse_reply(reply, tok)["content"] == [{"type": "text", "text": text}]
  assert chat.tool_call_pending(reply[:-1], tok) is None


def test_truncated_reply_without_end_token_parses_as_text(tok, t):
  ids = tok.encode("The answer is")
  assert chat.parse_reply(ids, tok) == {"role": "assistant",
                                        "content": [{"type": "text", "text": "The answer is"}]}
  assert chat.parse_reply([], tok) == {"role": "assistant", "content": []}


def test_unterminated_tool_call_becomes_text_and_is_not_pending(tok, t):
  ids = [*tok.encode("Let me see."), t.tool_call_start, *tok.encode("calculator\n2**")]
  assert chat.parse_reply(ids, tok)["content"] == [
      {"type": "text", "text": "Let me see.<|tool_call_start|>calculator\n2**"}]
  assert chat.tool_call_pending(ids, tok) is None


def test_truncated_tool_output_is_kept_as_output(tok, t):
  ids = [t.tool_call_start, *tok.encode("search\nEgypt"), t.tool_call_end, t.tool_output_start,
         *tok.encode("Joseph was brought")]
  assert chat.parse_reply(ids, tok)["content"] == [{"type": "tool_call", "tool": "search", "input": "Egypt"},
                                                   {"type": "tool_output", "output": "Joseph was brought"}]


def test_parse_stops_at_the_end_token_and_ignores_padding_after(tok, t):
  ids = [*tok.encode("done"), t.assistant_end, *tok.encode("junk after the end"), t.pad, t.pad]
  assert chat.parse_reply(ids, tok)["content"] == [{"type": "text", "text": "done"}]
  assert chat.parse_reply([*tok.encode("eos ends too"), t.eos, *tok.encode("x")], tok)["content"] == [
      {"type": "text", "text": "eos ends too"}]


def test_stray_special_token_in_a_reply_shows_by_name(tok, t):
  ids = [*tok.encode("Sure."), t.user_start, *tok.encode("next question")]
  assert chat.parse_reply(ids, tok)["content"] == [
      {"type": "text", "text": "Sure.<|user_start|>next question"}]


def test_tool_call_pending_returns_the_completed_call_only(tok, t):
  prompt = chat.render_prompt([{"role": "user", "content": "2+2?"}], tok)
  call = [*tok.encode("Computing."),
          t.tool_call_start, *tok.encode("calculator\n(2 + 2)\n* 3"), t.tool_call_end]
  assert chat.tool_call_pending(prompt + call, tok) == ("calculator", "(2 + 2)\n* 3")
  assert chat.tool_call_pending(call, tok) == ("calculator", "(2 + 2)\n* 3")
  answered = call + chat.render_tool_output("12", tok)
  assert chat.tool_call_pending(answered, tok) is None
  assert chat.tool_call_pending(call[:-1], tok) is None
  assert chat.tool_call_pending([*tok.encode("x"), t.tool_call_end], tok) is None
  assert chat.tool_call_pending([t.tool_call_start, *tok.encode("nameonly"), t.tool_call_end], tok) == (
      "nameonly", "")


def test_render_tool_output_wraps_the_text_and_parses_back(tok, t):
  out = chat.render_tool_output("error: names are not allowed: os", tok)
  assert out[0] == t.tool_output_start and out[-1] == t.tool_output_end
  assert tok.decode(out[1:-1]) == "error: names are not allowed: os"
  call = [t.tool_call_start, *tok.encode("calculator\nos"), t.tool_call_end]
  assert chat.parse_reply(call + out, tok)["content"][-1] == {
      "type": "tool_output", "output": "error: names are not allowed: os"}


def test_adjacent_text_parts_render_as_one_run_and_parse_merged(tok):
  message = {"role": "assistant", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": ""},
                                              {"type": "text", "text": " b"}]}
  ids, _ = chat.render([USER, message], tok)
  assert chat.parse_reply(ids[ids.index(chat.chat_tokens(tok).assistant_start) + 1:], tok)["content"] == [
      {"type": "text", "text": "a b"}]
  assert chat.parts(message) == [{"type": "text", "text": "a b"}]
