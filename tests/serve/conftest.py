"""The serve tests' tiny chat run — a model taught to recite a few conversations, one calling the calculator,
saved as a run folder (config.json, tokenizer, checkpoint) — and a server over it on a free port, in a thread
of the test process, shut down at the end of the session."""
import threading
import time

import pytest
import uvicorn

from lmjax.infer.tools import TOOLS, run_tool
from lmjax.train import checkpoint
from tests.conftest import tiny_config
from tests.recite import recite

SEQ_LEN = 96  # the run's context

CONVERSATIONS = [
    [{"role": "user", "content": "What is 6*7?"},
     {"role": "assistant", "content": [{"type": "tool_call", "tool": "calculator", "input": "6*7"},
                                       {"type": "tool_output", "output": run_tool(TOOLS, "calculator", "6*7")},
                                       {"type": "text", "text": "It is 42."}]}],
    [{"role": "user", "content": "Hello!"},
     {"role": "assistant", "content": "Hello there, I am a tiny model trained by lmjax. How can I help you today?"}],
    [{"role": "user", "content": "Tell me a story."},
     {"role": "assistant", "content": "Once upon a time a small model learned to talk. It said the same story "
                                      "every time, and everyone was happy."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello!"},
     {"role": "assistant", "content": "Hi."}],
]


@pytest.fixture(scope="session")
def chat_run(tokens_workdir, tmp_path_factory):
  """A run folder whose model answers CONVERSATIONS' user turns with their assistant turns."""
  from lmjax.data.tokenizer import Tokenizer
  workdir = tmp_path_factory.mktemp("chat_run")
  config = tiny_config(tokens_workdir)
  config.train.update(steps=60, batch_size=len(CONVERSATIONS), seq_len=SEQ_LEN)
  config.optim.update(lr=2e-2, weight_decay=0.0)
  _, state = recite(config, Tokenizer(config.data.tokenizer), CONVERSATIONS, max_loss=0.05)
  config.mesh.fsdp = -1  # recite trained on one device; the run loads onto all of them (8 fake ones)
  manager = checkpoint.make_manager(str(workdir / "checkpoints"), keep=1)
  checkpoint.save(manager, int(state.step), state, {})
  manager.wait_until_finished()
  (workdir / "config.json").write_text(config.to_json_best_effort())
  return workdir


class ServerThread:
  """uvicorn serving `app` on 127.0.0.1 at a free port in a thread, until `stop()`."""

  def __init__(self, app):
    self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    self.thread = threading.Thread(target=self.server.run, daemon=True)
    self.thread.start()
    deadline = time.time() + 60
    while not self.server.started:
      assert self.thread.is_alive() and time.time() < deadline, "the server did not start"
      time.sleep(0.02)
    port = self.server.servers[0].sockets[0].getsockname()[1]
    self.url = f"http://127.0.0.1:{port}"

  def stop(self) -> None:
    self.server.should_exit = True
    self.thread.join(timeout=30)
    assert not self.thread.is_alive(), "the server did not shut down"


@pytest.fixture(scope="session")
def served(chat_run):
  from lmjax.config import load_saved_config
  from lmjax.serve.server import load_served
  return load_served(load_saved_config(str(chat_run)), str(chat_run))


@pytest.fixture(scope="session")
def server(served):
  from lmjax.serve.app import make_app
  running = ServerThread(make_app(served))
  yield running
  running.stop()
