"""The OpenAI API's shapes as `lmjax serve` speaks them: request schemas, response and stream-chunk bodies,
and errors (`{"error": {"message", "type", "param", "code"}}` with an HTTP status).

Fields OpenAI defines and lmjax has no use for (`user`, `presence_penalty`, ...) are accepted and ignored;
ones whose meaning lmjax cannot honour (client-side `tools`, `logprobs`) are refused with a 400 that says so.
Two additions: `top_k` (sample among the k most likely tokens), and an assistant message's `parts` — the
chat protocol's parts (`lmjax.chat`): text, the tool calls the model made and their outputs. A reply carries
them beside its `content` text; a request may send them back so earlier tool calls render as the model wrote
them.
"""
import time
import uuid
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class APIError(Exception):
  """An error the API returns: an HTTP status and OpenAI's error object."""

  def __init__(self, status: int, message: str, *, param: str | None = None, code: str | None = None,
               kind: str = "invalid_request_error"):
    super().__init__(message)
    self.status, self.message, self.param, self.code, self.kind = status, message, param, code, kind

  def body(self) -> dict:
    return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def bad_request(message: str, param: str | None = None, code: str | None = None) -> APIError:
  return APIError(400, message, param=param, code=code)


def overloaded(waiting: int) -> APIError:
  return APIError(503, f"the server is busy: {waiting} requests are waiting for the engine; retry shortly",
                  kind="server_error", code="overloaded")


def validation_error(errors: list[dict]) -> APIError:
  """A 400 naming the first field pydantic rejected (FastAPI's own default would be a 422 in its own shape)."""
  first = errors[0]
  where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
  return bad_request(f"{where or 'body'}: {first.get('msg', 'invalid')}", param=where or None)


class _Request(BaseModel):
  model_config = ConfigDict(extra="allow")  # OpenAI fields lmjax ignores
  model: str | None = None
  temperature: float = Field(1.0, ge=0.0, le=2.0)
  top_p: float = Field(1.0, gt=0.0, le=1.0)
  top_k: int = Field(0, ge=0)  # lmjax (as vLLM): 0 = all tokens
  max_tokens: int | None = Field(None, ge=1)
  stop: str | list[str] | None = None
  seed: int | None = None
  n: int = Field(1, ge=1, le=16)
  stream: bool = False
  logprobs: bool | int | None = None

  def stops(self) -> tuple[str, ...]:
    stops = [self.stop] if isinstance(self.stop, str) else list(self.stop or [])
    if len(stops) > 4 or not all(stops):
      raise bad_request("stop: give at most 4 non-empty strings", param="stop")
    return tuple(stops)

  def check_supported(self) -> None:
    if self.logprobs:
      raise bad_request("logprobs are not served; the web page's next-token view shows probabilities",
                        param="logprobs")


class Message(BaseModel):
  model_config = ConfigDict(extra="allow")
  role: str
  content: str | list[dict] | None = None
  parts: list[dict] | None = None  # lmjax: an assistant message's protocol parts (see the module docstring)


class ChatRequest(_Request):
  messages: list[Message] = Field(min_length=1)
  max_completion_tokens: int | None = Field(None, ge=1)
  tools: list | None = None
  functions: list | None = None

  def check_supported(self) -> None:
    super().check_supported()
    if self.tools or self.functions:
      raise bad_request("client-side tools are not supported: the model's own tools (calculator, search) run "
                        "in the server and their calls and outputs appear in the reply", param="tools")

  def reply_budget(self) -> int | None:
    return self.max_completion_tokens or self.max_tokens


class CompletionRequest(_Request):
  prompt: str | list[str]
  max_tokens: int | None = Field(16, ge=1)  # OpenAI's default for completions

  def prompts(self) -> list[str]:
    prompts = [self.prompt] if isinstance(self.prompt, str) else list(self.prompt)
    if not prompts:
      raise bad_request("prompt: give a string or a non-empty list of strings", param="prompt")
    return prompts


def _text_of(content, index: int) -> str:
  """A message's content as text: a string, or OpenAI's list of {"type": "text", "text": ...} parts."""
  if content is None:
    return ""
  if isinstance(content, str):
    return content
  if not all(isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in content):
    raise bad_request(f"messages[{index}].content: only text parts are served (no images or audio)",
                      param=f"messages[{index}].content")
  return "".join(p["text"] for p in content)


def protocol_messages(messages: list[Message]) -> list[dict]:
  """OpenAI messages as the chat protocol's (`developer` is `system`); the protocol validates the order."""
  out = []
  for i, m in enumerate(messages):
    role = "system" if m.role == "developer" else m.role
    if role not in ("system", "user", "assistant"):
      raise bad_request(f"messages[{i}].role={m.role!r}: use system, user or assistant (tool outputs are "
                        "produced inside the server)", param=f"messages[{i}].role")
    content = m.parts if role == "assistant" and m.parts is not None else _text_of(m.content, i)
    out.append({"role": role, "content": content})
  return out


def new_id(prefix: str) -> str:
  return f"{prefix}-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
  return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
          "total_tokens": prompt_tokens + completion_tokens}


FinishReason = Literal["stop", "length"]


def chat_completion(rid: str, model: str, choices: list[tuple[str, list[dict], str]], usage_: dict) -> dict:
  """A chat.completion body; each choice is (content text, parts, finish reason)."""
  return {"id": rid, "object": "chat.completion", "created": int(time.time()), "model": model,
          "choices": [{"index": i, "message": {"role": "assistant", "content": text, "parts": parts},
                       "finish_reason": finish, "logprobs": None}
                      for i, (text, parts, finish) in enumerate(choices)],
          "usage": usage_}


def chat_chunk(rid: str, model: str, index: int, delta: dict, finish: str | None = None,
               parts: list[dict] | None = None) -> dict:
  """A chat.completion.chunk: `delta` adds to choice `index`; `parts` is that choice's settled parts so far."""
  choice = {"index": index, "delta": delta, "finish_reason": finish, "logprobs": None}
  if parts is not None:
    choice["parts"] = parts
  return {"id": rid, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
          "choices": [choice]}


def completion(rid: str, model: str, choices: list[tuple[str, str]], usage_: dict) -> dict:
  """A text_completion body; each choice is (text, finish reason)."""
  return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
          "choices": [{"index": i, "text": text, "finish_reason": finish, "logprobs": None}
                      for i, (text, finish) in enumerate(choices)],
          "usage": usage_}


def completion_chunk(rid: str, model: str, index: int, text: str, finish: str | None = None) -> dict:
  return {"id": rid, "object": "text_completion", "created": int(time.time()), "model": model,
          "choices": [{"index": index, "text": text, "finish_reason": finish, "logprobs": None}]}


def model_list(model: str, created: int) -> dict:
  return {"object": "list", "data": [{"id": model, "object": "model", "created": created, "owned_by": "lmjax"}]}
