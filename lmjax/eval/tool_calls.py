"""Tool-call validity: of the tool calls a model's replies made and the engine ran, the share that ran
without error (a known tool, input it accepts). A call cut off before <|tool_call_end|> never runs and is
not counted; neither is a call past the reply's max_tool_calls (it gets no output)."""
from lmjax import chat

ERROR_PREFIX = "error:"  # how every tool reports bad input or a refusal (lmjax.infer.tools)


def ran_calls(message: dict) -> list[tuple[dict, str]]:
  """(tool_call part, its output) for every call in an assistant message that has an output."""
  content = chat.parts(message)
  return [(part, after["output"]) for part, after in zip(content, content[1:])
          if part["type"] == "tool_call" and after["type"] == "tool_output"]


def tool_call_stats(messages: list[dict]) -> dict:
  """`tool_calls` (ran), `tool_calls_per_reply` and `tool_call_validity` (share without error; None if no
  call ran: undefined, not 0)."""
  outputs = [output for message in messages for _, output in ran_calls(message)]
  valid = sum(not output.strip().startswith(ERROR_PREFIX) for output in outputs)
  return {"tool_calls": len(outputs), "tool_calls_per_reply": len(outputs) / max(len(messages), 1),
          "tool_call_validity": valid / len(outputs) if outputs else None}
