"""`lmjax serve`: one process serving a run's latest checkpoint as an OpenAI-compatible API and a web page.

    lmjax serve --workdir runs/sft [--host 127.0.0.1] [--port 8000] [--search 'docs/*.jsonl.gz']

FastAPI (on Starlette, run by uvicorn): request schemas are pydantic models that validate and document
themselves, server-sent event streams are an async generator, and uvicorn is a maintained ASGI server —
nothing of HTTP is written by hand here. Routes are in `lmjax.serve.app`.
"""
import dataclasses
import os
import time

from lmjax import chat
from lmjax.infer.engine import Engine, cache_length, chat_engine
from lmjax.infer.load import LoadedModel
from lmjax.infer.sampler import SamplingParams
from lmjax.serve.batcher import Batcher, Sampling


@dataclasses.dataclass
class Served:
  """What the server serves: the loaded run, its name in the API, the tools, `config.serve`, the batcher."""
  loaded: LoadedModel
  name: str
  tools: dict
  settings: object  # config.serve
  created: int = dataclasses.field(default_factory=lambda: int(time.time()))

  def __post_init__(self):
    warm_up = Sampling("chat" if self.has_chat_tokens() else "completion", 0.0, 1.0, 0)
    self.batcher = Batcher(self.engine, window_s=self.settings.batch_window_ms / 1000,
                           max_waiting=self.settings.max_waiting, warm_up=warm_up)

  @property
  def context(self) -> int:
    return self.loaded.context

  def has_chat_tokens(self) -> bool:
    try:
      chat.chat_tokens(self.loaded.tokenizer)
      return True
    except KeyError:  # an imported tokenizer without the protocol's tokens (MissingSpecialToken)
      return False

  def engine(self, sampling: Sampling) -> Engine:
    """The engine for one batch: `serve.slots` slots over a cache as long as the context, so every batch
    reuses the same compiled programs; a reply may run to the end of the context (its budget says less)."""
    s, m = self.settings, self.loaded
    params = SamplingParams(max_new_tokens=self.context, temperature=sampling.temperature, top_k=sampling.top_k,
                            top_p=sampling.top_p)
    shared = dict(slots=s.slots, max_reply_tokens=self.context, length=cache_length(self.context, 0),
                  context=self.context, steps_per_call=s.steps_per_call)
    if sampling.kind == "chat":
      return chat_engine(m.graphdef, m.params, m.tokenizer, sampling=params, tools=self.tools,
                         max_tool_calls=s.max_tool_calls, **shared)
    return Engine(m.graphdef, m.params, sampling=dataclasses.replace(params, stop_ids=(m.tokenizer.eos_id,)),
                  **shared)


def load_served(config, workdir: str, *, search: str | None = None) -> Served:
  """The run's latest checkpoint and tokenizer, with the calculator (and search over `search`, a glob)."""
  from lmjax.infer.load import load_model
  from lmjax.infer.tools import make_tools
  from lmjax.infer.tools.search import SearchIndex
  tools = make_tools(search_index=SearchIndex.build(search) if search else None)  # a bad glob fails first
  name = os.path.basename(os.path.normpath(workdir)) or "lmjax"
  return Served(load_model(config, workdir), name, tools, config.serve)


def run(config, workdir: str, *, host: str, port: int, search: str | None = None) -> None:
  """Loads the run and serves it until interrupted (Ctrl-C)."""
  import uvicorn

  from lmjax.serve.app import make_app
  started = time.perf_counter()
  served = load_served(config, workdir, search=search)
  where = ("only this machine can connect (the default; --host 0.0.0.0 opens it to the network)"
           if host in ("127.0.0.1", "localhost") else f"bound to {host}: other machines can connect")
  print(f"serving {workdir} (step {served.loaded.step}) as model {served.name!r}, loaded in "
        f"{time.perf_counter() - started:.1f} s\n  web page: http://{host}:{port}/\n  OpenAI API: "
        f"http://{host}:{port}/v1 (chat/completions, completions, models)\n  {where}", flush=True)
  uvicorn.run(make_app(served), host=host, port=port, log_level="warning")
