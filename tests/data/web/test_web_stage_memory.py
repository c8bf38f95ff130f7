"""A filter task's memory stays flat as its input grows: documents stream from reader through steps to writer.

(The dedup index is the one thing that grows with the corpus; its size is in lmjax/data/web/minhash.py.)
"""
import json
import pathlib
import random
import subprocess
import sys

import pytest
from web_test_data import REPO

MARGIN_BYTES = 4 << 20  # allowed growth of peak RSS; 4x the input adds ~11.6 MB of text, so a list would show
WORDS = ("the river runs past old mill in valley and farmers bring grain to be ground with stones that have "
         "turned for centuries while children watch from bridge of town where market sells bread cheese "
         "apples honey wool travellers stop at inn near church whose bell rings each hour over fields "
         "forests hills").split()
CHILD = """
import json, resource, sys
import configs.clean
from lmjax.data.web import stage
config = configs.clean.get_config()
for name in sys.argv[3:]:
  config[name].enabled = False
stage.filter_task([sys.argv[1]], sys.argv[2], config)
print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024))  # KiB on Linux
"""


def write_jsonl(path: pathlib.Path, num_docs: int) -> int:
  """num_docs ~1.9 KB documents of 20 random sentences (they pass every filter); returns bytes."""
  rng = random.Random(0)
  with open(path, "w") as file:
    for i in range(num_docs):
      lines = [" ".join(rng.choices(WORDS, k=rng.randint(12, 20))).capitalize() + "." for _ in range(20)]
      doc = {"id": f"d{i}", "url": f"https://example.org/{i}", "text": "\n".join(lines)}
      file.write(json.dumps(doc) + "\n")
  return path.stat().st_size


def filter_task_peak_rss(input_path, output: pathlib.Path, disabled: tuple[str, ...]) -> tuple[int, int]:
  """Run stage.filter_task in a fresh process; returns (documents written, peak RSS in bytes)."""
  done = subprocess.run([sys.executable, "-c", CHILD, str(input_path), str(output), *disabled], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert done.returncode == 0, done.stderr[-2000:]
  stats = json.loads(output.with_name("00000.stats.json").read_text())
  return stats["docs_filtered"], int(done.stdout.split()[-1])


@pytest.mark.parametrize("disabled", [
    pytest.param(("language", "gopher_quality", "gopher_repetition"), id="cheap_steps"),  # ~10 s on 2 cores
    pytest.param((), id="all_steps", marks=pytest.mark.slow),  # ~60 s: the three slow steps add ~4 ms/doc
])
def test_filter_task_peak_memory_does_not_grow_with_input(tmp_path, disabled):
  peaks, sizes = [], []
  for num_docs in (2000, 8000):
    input_path = tmp_path / f"in_{num_docs}.jsonl"
    sizes.append(write_jsonl(input_path, num_docs))
    output = tmp_path / f"out_{num_docs}" / "00000.filtered.zst"
    written, peak = filter_task_peak_rss(input_path, output, disabled)
    assert written == num_docs  # every document went all the way to the writer
    peaks.append(peak)
  assert sizes[1] - sizes[0] > 2.5 * MARGIN_BYTES  # holding the extra input would break the margin
  assert peaks[1] - peaks[0] < MARGIN_BYTES, f"peak RSS {peaks[0] >> 20} -> {peaks[1] >> 20} MiB for 4x input"
