"""`lmjax serve` from the command line: it loads the run, says where it listens (127.0.0.1 by default, and
that only this machine can connect), answers within seconds, and stops cleanly on Ctrl-C."""
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from tests.conftest import REPO


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def test_serve_binds_localhost_says_so_answers_and_stops_on_ctrl_c(chat_run):
  port = _free_port()
  env = dict(os.environ, XLA_FLAGS="")  # one CPU device, as on a user's machine (not the tests' 8 fake ones)
  started = time.perf_counter()
  process = subprocess.Popen([sys.executable, "-m", "lmjax.cli", "serve", "--workdir", str(chat_run), "--port",
                              str(port)], cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                             text=True)
  try:
    lines = []
    while not any("connect" in line for line in lines):
      line = process.stdout.readline()
      assert line, "lmjax serve exited:\n" + "".join(lines)
      lines.append(line)
    banner = "".join(lines)
    assert f"web page: http://127.0.0.1:{port}/" in banner and "only this machine can connect" in banner
    deadline = time.time() + 60
    while True:
      try:
        models = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=5))
        break
      except OSError:
        assert time.time() < deadline and process.poll() is None, "the server did not answer"
        time.sleep(0.05)
    answered_s = time.perf_counter() - started
    assert models["data"][0]["id"] == chat_run.name
    print(f"lmjax serve answered {answered_s:.1f} s after it was started")
    assert answered_s < 30
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=30) == 0
  finally:
    if process.poll() is None:
      process.kill()
      process.wait()
