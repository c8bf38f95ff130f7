"""The web page's own routes under /api: the run's facts, the token view, the next-token distribution with
a continuation's per-token probabilities, and the inside of the transformer (`lmjax.serve.inside`).

The numbers are those of the terminal viewers (`lmjax.infer.viewers`) for the same prompt; a page request
runs in a worker thread beside the engine's batches, never inside them.
"""
from fastapi import APIRouter
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from lmjax import chat
from lmjax.config import UserError
from lmjax.infer import viewers
from lmjax.serve.inside import look_inside
from lmjax.serve.openai_shapes import bad_request


class TokensRequest(BaseModel):
  text: str
  as_chat: bool = False  # render the text as a user turn of the chat protocol (its special tokens shown)


class NextRequest(BaseModel):
  prompt: str
  top_k: int = Field(10, ge=1, le=100)
  temperature: float = Field(1.0, gt=0.0, le=5.0)
  continuation: str = ""


class InsideRequest(BaseModel):
  prompt: str
  top_k: int = Field(5, ge=1, le=20)


def token_rows(tok, ids: list[int]) -> list[dict]:
  """Each id with its piece, the text it decodes to (a byte piece alone: its piece) and whether it is special."""
  rows = []
  for i in ids:
    text = tok.decode([i]) if not tok.sp.is_control(i) else tok.sp.id_to_piece(i)
    rows.append({"id": i, "piece": tok.sp.id_to_piece(i), "text": text if "\ufffd" not in text
                 else tok.sp.id_to_piece(i), "special": bool(tok.sp.is_control(i) or tok.sp.is_byte(i))})
  return rows


def tokens_view(tok, text: str, as_chat: bool) -> dict:
  ids = chat.render_prompt([{"role": "user", "content": text}], tok) if as_chat else tok.encode(text)
  n_bytes = len(text.encode())
  return {"tokens": token_rows(tok, ids), "count": len(ids), "bytes": n_bytes,
          "bytes_per_token": n_bytes / max(len(ids), 1)}


def next_view(loaded, body: NextRequest) -> dict:
  model, tok = loaded.model(), loaded.tokenizer
  try:
    top = viewers.next_token_distribution(model, tok, body.prompt, body.top_k, loaded.context, body.temperature)
    per_token = (viewers.continuation_probabilities(model, tok, body.prompt, body.continuation, loaded.context)
                 if body.continuation else [])
  except UserError as e:
    raise bad_request(str(e)) from e
  row = lambda r: {"id": r.token_id, "text": r.piece, "probability": r.probability}
  return {"top": [row(r) for r in top], "continuation": [row(r) for r in per_token]}


def inside_view(loaded, body: InsideRequest, max_tokens: int) -> dict:
  tok = loaded.tokenizer
  ids = [tok.bos_id, *tok.encode(body.prompt)]
  if len(ids) > max_tokens:
    raise bad_request(f"the inside view takes prompts of at most {max_tokens} tokens (serve.inside_max_tokens); "
                      f"this one is {len(ids)} with BOS: shorten it", param="prompt")
  inside = look_inside(loaded.graphdef, loaded.params, ids, body.top_k)
  lens = [[{"ids": ids_k.tolist(), "texts": [tok.decode([int(i)]) for i in ids_k],
            "probs": [round(float(p), 5) for p in probs_k]}
           for ids_k, probs_k in zip(ids_tk, probs_tk)]
          for ids_tk, probs_tk in zip(inside.lens_ids_ltk, inside.lens_probs_ltk)]
  return {"tokens": token_rows(tok, ids), "attention": inside.attention_lnts.round(5).tolist(),
          "residual_norm": inside.residual_norm_lt.round(4).tolist(), "lens": lens}


def page_routes(served) -> APIRouter:
  router = APIRouter(prefix="/api")
  loaded = served.loaded

  @router.get("/info")
  async def info():
    cfg = loaded.model().cfg
    return {"model": served.name, "step": loaded.step, "context": served.context, "chat": served.has_chat_tokens(),
            "tools": sorted(served.tools), "layers": cfg.num_layers, "heads": cfg.num_heads,
            "embed_dim": cfg.embed_dim, "vocab_size": cfg.vocab_size,
            "inside_max_tokens": served.settings.inside_max_tokens}

  @router.post("/tokens")
  async def tokens(body: TokensRequest):
    try:
      return tokens_view(loaded.tokenizer, body.text, body.as_chat)
    except KeyError as e:  # no chat tokens in this tokenizer (MissingSpecialToken)
      raise bad_request(str(e), param="as_chat") from e

  @router.post("/next")
  async def next_token(body: NextRequest):
    return await run_in_threadpool(next_view, loaded, body)

  @router.post("/inside")
  async def inside(body: InsideRequest):
    return await run_in_threadpool(inside_view, loaded, body, served.settings.inside_max_tokens)

  return router
