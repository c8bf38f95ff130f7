"""See how text becomes tokens, and what the model thinks comes next.

    lmjax tokens --workdir runs/quickstart "Some text to split"
    lmjax next --workdir runs/quickstart "The meaning of life is" [--continuation " to love"] [--top-k 10]

`tokens` prints the text coloured token by token with ids, the count and bytes per token. `next` prints
the k most likely next tokens with probabilities, writes them as a bar chart (PNG), and for a given
continuation shows the probability the model gave each of its tokens, as text and as a heat map (PNG).
"""
import dataclasses
import os

import jax
import jax.numpy as jnp
import numpy as np

from lmjax import fs
from lmjax.config import UserError
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer.context import cut_notice, fit_prompt

COLOURS = (43, 46, 45, 42, 44, 41)  # ANSI background colours, cycled per token


def coloured_tokens(tok: Tokenizer, text: str, colour: bool = True) -> str:
  """The text with each token on its own background colour, then a table of pieces and ids."""
  ids = tok.encode(text)
  pieces = [tok.decode([i]) for i in ids]
  shown = "".join(f"\033[30;{COLOURS[n % len(COLOURS)]}m{p}\033[0m" if colour else f"[{p}]"
                  for n, p in enumerate(pieces))
  table = "\n".join(f"{i:>6}  {tok.sp.id_to_piece(i)!r}" for i in ids)
  n_bytes = len(text.encode())
  return (f"{shown}\n\n{table}\n\n{len(ids)} tokens, {n_bytes} bytes, "
          f"{n_bytes / max(len(ids), 1):.2f} bytes per token")


@dataclasses.dataclass(frozen=True)
class NextToken:
  token_id: int
  piece: str
  probability: float


def prompt_ids(tok: Tokenizer, prompt: str, context: int | None, reserve: int = 0) -> tuple[list[int], int]:
  """([BOS] + the prompt's ids, cut as every prompt is (`lmjax.infer.context`) to leave `reserve` tokens of
  the model's `context`; how many ids were dropped)."""
  ids = [tok.bos_id, *tok.encode(prompt)]
  if not context:
    return ids, 0
  fitted = fit_prompt(ids, context, reserve)
  if fitted.reply_tokens < reserve:
    raise UserError(f"--continuation is {reserve} tokens; beside this prompt at most {fitted.reply_tokens} fit "
                    f"the model's {context}-token context (train.seq_len): shorten it")
  return fitted.ids, fitted.dropped


def next_token_distribution(model, tok: Tokenizer, prompt: str, top_k: int, context: int | None = None,
                            temperature: float = 1.0) -> list[NextToken]:
  """The k most likely tokens after [BOS] + prompt (its end, if longer than `context`), with their
  probabilities when sampling at `temperature` (softmax of logits / temperature)."""
  ids = np.array([prompt_ids(tok, prompt, context)[0]], np.int32)
  probs = _probabilities(model, ids, temperature)[0, -1]
  order = np.argsort(-probs)[:top_k]
  return [NextToken(int(i), tok.decode([int(i)]), float(probs[i])) for i in order]


def continuation_probabilities(model, tok: Tokenizer, prompt: str, continuation: str,
                               context: int | None = None) -> list[NextToken]:
  """For each token of the continuation, the probability the model gave it, given everything before (the
  prompt's end, if both pass `context`)."""
  cont_ids = tok.encode(continuation)
  ids = prompt_ids(tok, prompt, context, len(cont_ids))[0]
  probs = _probabilities(model, np.array([ids + cont_ids], np.int32))[0]
  start = len(ids) - 1
  return [NextToken(i, tok.decode([i]), float(probs[start + n, i])) for n, i in enumerate(cont_ids)]


def _probabilities(model, ids_bt: np.ndarray, temperature: float = 1.0) -> np.ndarray:
  if temperature <= 0:
    raise UserError(f"temperature={temperature}: a distribution needs a temperature above 0")
  positions = np.broadcast_to(np.arange(ids_bt.shape[1], dtype=np.int32), ids_bt.shape)
  logits = model(jnp.asarray(ids_bt), positions, np.ones_like(ids_bt))
  return np.asarray(jax.nn.softmax(logits / temperature, axis=-1))


def distribution_table(rows: list[NextToken]) -> str:
  width = 40
  return "\n".join(f"{r.probability:7.2%}  {'█' * max(1, round(r.probability * width)):<{width}} "
                   f"{r.piece!r} ({r.token_id})" for r in rows)


def plot_distribution(rows: list[NextToken], prompt: str, path: str) -> str:
  """A horizontal bar chart of the next-token probabilities, most likely on top."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(7, 0.35 * len(rows) + 1.2))
  ax.barh([repr(r.piece) for r in rows][::-1], [r.probability for r in rows][::-1], color="tab:blue")
  ax.set_xlabel("probability")
  ax.set_title(f"next token after {prompt[-50:]!r}", fontsize=9)
  fig.tight_layout()
  with fs.open(path, "wb") as f:
    fig.savefig(f, format="png", dpi=120)
  plt.close(fig)
  return path


def plot_heatmap(rows: list[NextToken], path: str) -> str:
  """The continuation's tokens in a row, each coloured by the probability the model gave it."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  fig, ax = plt.subplots(figsize=(max(4, 0.9 * len(rows)), 1.6))
  image = ax.imshow([[r.probability for r in rows]], cmap="RdYlGn", vmin=0, vmax=1, aspect="auto")
  for n, r in enumerate(rows):
    ax.text(n, 0, f"{r.piece!r}\n{r.probability:.0%}", ha="center", va="center", fontsize=8)
  ax.set_xticks([]), ax.set_yticks([])
  fig.colorbar(image, ax=ax, fraction=0.05)
  fig.tight_layout()
  with fs.open(path, "wb") as f:
    fig.savefig(f, format="png", dpi=120)
  plt.close(fig)
  return path


def run_next(config, workdir: str, prompt: str, *, top_k: int, continuation: str | None) -> dict:
  """`lmjax next`: prints the table(s) and writes WORKDIR/next_token.png (and next_token_heatmap.png); a prompt
  longer than the model's context keeps its end, with a notice."""
  from lmjax.infer.load import load_model
  loaded = load_model(config, workdir)
  model, tok, context = loaded.model(), loaded.tokenizer, loaded.context
  dropped = prompt_ids(tok, prompt, context, len(tok.encode(continuation)) if continuation else 0)[1]
  if dropped:
    print(cut_notice(dropped, context))
  rows = next_token_distribution(model, tok, prompt, top_k, context)
  print(distribution_table(rows))
  out = {"distribution": rows, "chart": plot_distribution(rows, prompt, os.path.join(workdir, "next_token.png"))}
  print(f"bar chart: {out['chart']}")
  if continuation:
    per_token = continuation_probabilities(model, tok, prompt, continuation, context)
    print("\n" + "\n".join(f"{r.probability:7.2%}  {r.piece!r}" for r in per_token))
    out["heatmap"] = plot_heatmap(per_token, os.path.join(workdir, "next_token_heatmap.png"))
    print(f"heat map: {out['heatmap']}")
  return out
