"""Preference pairs from JSONL: strings or protocol messages accepted as written, a bad line an error naming it."""
import json

import pytest

from lmjax.data.pairs_pipeline import read_pairs

GOOD = {"prompt": "q", "chosen": "a", "rejected": "b"}


def test_read_pairs_accepts_strings_and_messages(tmp_path):
  path = tmp_path / "prefs.jsonl"
  messages = {"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
              "chosen": {"role": "assistant", "content": [{"type": "text", "text": "a"}]},
              "rejected": {"role": "assistant", "content": "b"}, "source": "x"}
  path.write_text(json.dumps(GOOD) + "\n\n" + json.dumps(messages) + "\n", encoding="utf-8")
  assert read_pairs(str(path)) == [GOOD, messages]


@pytest.mark.parametrize("bad, message", [
    ("{not json", "JSONDecodeError: Expecting property name"),
    ('["a list"]', "TypeError"),
    ('{"prompt": "q", "chosen": "a"}', "KeyError: 'rejected'"),
    ('{"prompt": "q", "chosen": "a", "rejected": 3}', "message 1: a message is a dict"),
    ('{"prompt": [{"role": "assistant", "content": "x"}], "chosen": "a", "rejected": "b"}',
     "message 0: the conversation must start with a system or user message"),
    ('{"prompt": [{"role": "user", "content": "q"}, {"role": "assistant", "content": "x"}], "chosen": "a", '
     '"rejected": "b"}', "message 2: two assistant messages in a row"),
    ('{"prompt": "q", "chosen": {"role": "assistant", "content": [{"type": "tool_output", "output": "1"}]}, '
     '"rejected": "b"}', "message 1: part 0 is a tool_output"),
    ('{"prompt": "q", "chosen": {"role": "user", "content": "a"}, "rejected": "b"}',
     "message 1: two user messages in a row"),
])
def test_a_bad_line_is_an_error_naming_file_line_and_problem(tmp_path, bad, message):
  path = tmp_path / "prefs.jsonl"
  path.write_text(json.dumps(GOOD) + "\n" + bad + "\n", encoding="utf-8")
  with pytest.raises(ValueError, match=f"prefs.jsonl:2: not a prompt/chosen/rejected pair .*{message}"):
    read_pairs(str(path))
