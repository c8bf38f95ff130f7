"""The FastAPI app of `lmjax serve`: the OpenAI routes (`/v1/chat/completions`, `/v1/completions`,
`/v1/models`), the web page at `/` with its own small API (`lmjax.serve.page_api`), and OpenAI-shaped errors.

A request is checked, rendered to prompt ids (the chat protocol, or [BOS] + text), and handed to the
batcher as one job with a choice per `n`; its replies come back through an asyncio queue, whole or as
server-sent events (`stream: true`). A prompt and its `max_tokens` must fit the model's context (400,
code context_length_exceeded), as OpenAI's API answers: nothing is cut silently.
"""
import asyncio
import contextlib
import json
import os
import secrets

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException

from lmjax import chat
from lmjax.serve import openai_shapes as shapes
from lmjax.serve.batcher import Job, Sampling
from lmjax.serve.page_api import page_routes
from lmjax.serve.reply_text import ReplyText

STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")


def make_app(served) -> FastAPI:
  """The app over a `lmjax.serve.server.Served`; its lifespan starts and stops the engine's thread."""
  @contextlib.asynccontextmanager
  async def lifespan(app):
    served.batcher.start()
    yield
    served.batcher.stop()

  app = FastAPI(title=f"lmjax serve: {served.name}", lifespan=lifespan)
  app.add_exception_handler(shapes.APIError, lambda request, e: JSONResponse(e.body(), status_code=e.status))
  app.add_exception_handler(RequestValidationError, lambda request, e: _error(shapes.validation_error(e.errors())))
  app.add_exception_handler(HTTPException, lambda request, e: _error(shapes.APIError(e.status_code, str(e.detail))))
  app.add_exception_handler(Exception, lambda request, e: _error(shapes.APIError(
      500, f"internal error: {type(e).__name__}: {e}", kind="server_error")))
  app.include_router(page_routes(served))
  app.mount("/static", StaticFiles(directory=STATIC), name="static")

  @app.get("/", include_in_schema=False)
  async def page():
    return FileResponse(os.path.join(STATIC, "index.html"))

  @app.get("/v1/models")
  async def models():
    return shapes.model_list(served.name, served.created)

  @app.post("/v1/chat/completions")
  async def chat_completions(body: shapes.ChatRequest):
    _check(served, body)
    if not served.has_chat_tokens():
      raise shapes.bad_request("this run's tokenizer has no chat tokens (an imported one?): use /v1/completions")
    try:
      prompt = chat.render_prompt(shapes.protocol_messages(body.messages), served.loaded.tokenizer)
    except chat.ProtocolError as e:
      raise shapes.bad_request(f"messages: {e}", param="messages") from e
    budget = reply_budget(len(prompt), body.reply_budget(), served.context)
    text = ReplyText(served.loaded.tokenizer, chat_reply=True, stops=body.stops())
    job, events = _submit(served, body, "chat", [prompt] * body.n, budget, text)
    rid = shapes.new_id("chatcmpl")
    if body.stream:
      return _sse(_chat_stream(job, events, rid, served.name, body.n))
    replies = await _replies(events, body.n)
    choices = [(shown.text, shown.parts, text.finish_reason(r.reply, shown.stopped)) for r, shown in replies]
    return shapes.chat_completion(rid, served.name, choices, _usage([prompt], replies))

  @app.post("/v1/completions")
  async def completions(body: shapes.CompletionRequest):
    _check(served, body)
    tok = served.loaded.tokenizer
    prompts = [[tok.bos_id, *tok.encode(p)] for p in body.prompts()]
    budget = min(reply_budget(len(p), body.max_tokens, served.context) for p in prompts)
    text = ReplyText(tok, chat_reply=False, stops=body.stops())
    job, events = _submit(served, body, "completion", [p for p in prompts for _ in range(body.n)], budget, text)
    rid = shapes.new_id("cmpl")
    if body.stream:
      return _sse(_completion_stream(job, events, rid, served.name, len(job.prompts)))
    replies = await _replies(events, len(job.prompts))
    choices = [(shown.text, text.finish_reason(r.reply, shown.stopped)) for r, shown in replies]
    return shapes.completion(rid, served.name, choices, _usage(prompts, replies))

  return app


def _error(e: shapes.APIError) -> JSONResponse:
  return JSONResponse(e.body(), status_code=e.status)


def _check(served, body) -> None:
  body.check_supported()
  if body.model is not None and body.model != served.name:
    raise shapes.APIError(404, f"model {body.model!r} is not served here; this server serves {served.name!r}",
                          param="model", code="model_not_found")


def reply_budget(prompt_tokens: int, max_tokens: int | None, context: int) -> int:
  """The reply's token budget: `max_tokens`, or the rest of the context; a 400 if the two do not fit it."""
  if prompt_tokens >= context or (max_tokens and prompt_tokens + max_tokens > context):
    asked = f" and {max_tokens} for the reply (max_tokens)" if max_tokens else ""
    raise shapes.bad_request(
        f"this model's context is {context} tokens (train.seq_len); the prompt is {prompt_tokens}{asked}: "
        "shorten the messages or lower max_tokens", param="messages", code="context_length_exceeded")
  return max_tokens or context - prompt_tokens


def _submit(served, body, kind: str, prompts: list, budget: int, text: ReplyText):
  """(job, its asyncio queue of events) for the prompts, one choice each, seeds body.seed + i (else random)."""
  loop, events = asyncio.get_running_loop(), asyncio.Queue()
  seed = body.seed if body.seed is not None else secrets.randbits(31)
  job = Job(Sampling(kind, body.temperature, body.top_p, body.top_k), prompts,
            [seed + i for i in range(len(prompts))], [budget] * len(prompts), text,
            lambda event: loop.call_soon_threadsafe(events.put_nowait, event))
  served.batcher.submit(job)
  return job, events


async def _replies(events: asyncio.Queue, n: int) -> list:
  """[(Reply, final Shown)] of the job's n choices, in order, once all are done."""
  replies = [None] * n
  while any(r is None for r in replies):
    event = await events.get()
    if event[0] == "error":
      raise shapes.APIError(500, f"generation failed: {event[1]}", kind="server_error")
    if event[0] == "reply":
      replies[event[1]] = (event[2], event[3])
  return replies


def _usage(prompts: list, replies: list) -> dict:
  return shapes.usage(sum(map(len, prompts)), sum(sum(r.generated) for r, _ in replies))


def _sse(chunks) -> StreamingResponse:
  return StreamingResponse(chunks, media_type="text/event-stream", headers={"Cache-Control": "no-cache"})


def _event(body: dict) -> str:
  return f"data: {json.dumps(body)}\n\n"


async def _stream(job: Job, events: asyncio.Queue, n: int):
  """(choice, new text, Shown, finish reason or None) as the job's choices grow; the job is cancelled when
  the stream ends early (the client went away)."""
  sent, done = [""] * n, 0
  try:
    while done < n:
      event = await events.get()
      if event[0] == "error":
        raise RuntimeError(str(event[1]))
      choice, shown = event[1], event[-1]
      new = shown.text[len(sent[choice]):] if shown.text.startswith(sent[choice]) else ""
      sent[choice] += new
      finish = job.text.finish_reason(event[2].reply, shown.stopped) if event[0] == "reply" else None
      done += finish is not None
      yield choice, new, shown, finish
  finally:
    job.cancelled.set()


async def _chat_stream(job, events, rid: str, model: str, n: int):
  shown_parts = [[] for _ in range(n)]
  for choice in range(n):
    yield _event(shapes.chat_chunk(rid, model, choice, {"role": "assistant", "content": ""}, parts=[]))
  try:
    async for choice, new, shown, finish in _stream(job, events, n):
      if new or finish or shown.parts != shown_parts[choice]:
        shown_parts[choice] = shown.parts
        yield _event(shapes.chat_chunk(rid, model, choice, {"content": new} if new else {}, finish, shown.parts))
  except RuntimeError as e:
    yield _event(shapes.APIError(500, f"generation failed: {e}", kind="server_error").body())
  yield "data: [DONE]\n\n"


async def _completion_stream(job, events, rid: str, model: str, n: int):
  try:
    async for choice, new, _, finish in _stream(job, events, n):
      if new or finish:
        yield _event(shapes.completion_chunk(rid, model, choice, new, finish))
  except RuntimeError as e:
    yield _event(shapes.APIError(500, f"generation failed: {e}", kind="server_error").body())
  yield "data: [DONE]\n\n"
