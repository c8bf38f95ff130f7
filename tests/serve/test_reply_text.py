"""What a streamed reply shows as it grows: always a prefix of the final text (an open tool call, a
character split across byte pieces and a possible stop string's start are held back), so chunks add up
to the whole reply; a stop string cuts the model's text but never a tool's output."""
import pytest

from lmjax import chat
from lmjax.data.tokenizer import Tokenizer
from lmjax.serve.reply_text import ReplyText


@pytest.fixture(scope="module")
def tok(tokens_workdir):
  return Tokenizer(str(tokens_workdir / "tokenizer.model"))


def _reply_ids(tok, content) -> list[int]:
  """The ids after <|assistant_start|> of an assistant turn with this content."""
  ids, _ = chat.render([{"role": "user", "content": "q"}, {"role": "assistant", "content": content}], tok)
  prompt = chat.render_prompt([{"role": "user", "content": "q"}], tok)
  return ids[len(prompt):]


CONTENT = [{"type": "text", "text": "Let me see: "}, {"type": "tool_call", "tool": "calculator", "input": "2**10"},
           {"type": "tool_output", "output": "1024"}, {"type": "text", "text": "Grüße — it is 1024 ✓."}]


@pytest.mark.parametrize("stops", [(), ("is 10",), ("see",)])
def test_every_growing_reply_shows_a_prefix_of_the_final_text(tok, stops):
  ids = _reply_ids(tok, CONTENT)
  text = ReplyText(tok, chat_reply=True, stops=stops)
  final = text.shown(ids, final=True)
  shown = [text.shown(ids[:n], final=False).text for n in range(len(ids) + 1)]
  assert all(final.text.startswith(s) for s in shown)
  assert all(a == b[:len(a)] for a, b in zip(shown, shown[1:]))  # the text only grows
  if not stops:
    assert final.text == "Let me see: \n[calculator] 2**10\n  → 1024\nGrüße — it is 1024 ✓." and not final.stopped
    assert final.parts == CONTENT and text.finish_reason(ids, final.stopped) == "stop"
    open_call = ids[:ids.index(chat.chat_tokens(tok).tool_call_start) + 3]
    assert text.shown(open_call, final=False).text == "Let me see: "  # the open call waits for its end
  else:
    assert final.stopped and final.text == {"is 10": "Let me see: \n[calculator] 2**10\n  → 1024\nGrüße — it ",
                                            "see": "Let me "}[stops[0]]


def test_a_stop_string_in_a_tool_output_does_not_stop_the_reply(tok):
  final = ReplyText(tok, chat_reply=True, stops=("1024",)).shown(_reply_ids(tok, CONTENT), final=True)
  assert final.stopped and final.parts[2] == {"type": "tool_output", "output": "1024"}
  assert final.parts[3]["text"] == "Grüße — it is "


def test_a_completion_is_its_decoded_text_without_eos_and_ends_for_its_reason(tok):
  ids = tok.encode(" and the earth") + [tok.eos_id]
  text = ReplyText(tok, chat_reply=False)
  assert text.shown(ids, final=True).text == " and the earth" and text.finish_reason(ids, False) == "stop"
  assert text.finish_reason(ids[:-1], False) == "length"
