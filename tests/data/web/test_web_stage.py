"""The whole stage: shipped WARC to cleaned shards, stats, bad input, resume after a kill, failed tasks."""
import json
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest
from web_test_data import REPO

from lmjax.config import UserError
from lmjax.data.web import extract, shards, stage
from lmjax.data.web.readers import InputProblems, read_documents
from lmjax.data.web.tasks import TasksFailed


def output_rows(workdir: pathlib.Path) -> list[dict]:
  rows = []
  for path in sorted(workdir.glob("docs/*.jsonl*")):
    rows += [doc.to_json() for doc in shards.read_documents(path)]
  return rows


@pytest.fixture
def mixed_inputs(tmp_path, shipped_warc, clean_config) -> pathlib.Path:
  """The shipped WARC, its pages as 3 JSONL files of extracted text, and 3 kinds of bad input."""
  folder = tmp_path / "inputs"
  folder.mkdir()
  (folder / "pages.warc.gz").write_bytes(shipped_warc.read_bytes())
  step = extract.build(clean_config.extract)
  docs = [step(doc) for doc in read_documents(str(shipped_warc), InputProblems())]
  for part in range(3):
    lines = [json.dumps({"id": f"jsonl-{doc.id}", "url": doc.url, "text": doc.text}) for doc in docs[part::3]]
    (folder / f"part{part}.jsonl").write_text("\n".join(lines) + "\n{broken json\n")
  (folder / "cut.warc.gz").write_bytes(shipped_warc.read_bytes()[:200_000])
  (folder / "empty.html").write_bytes(b"")
  return folder


def test_shipped_warc_end_to_end(shipped_warc, clean_config, tmp_path, capsys):
  summary = stage.run(clean_config, tmp_path / "run", input_pattern=str(shipped_warc), workers=1)
  rows = output_rows(tmp_path / "run")
  assert summary["docs_read"] == 125 and summary["docs_written"] == len(rows) > 10
  assert set(rows[0]) >= {"id", "url", "text", "language", "language_score", "source"}
  assert all(row["language"] == "en" and row["source"].endswith(row["id"]) for row in rows)
  steps = summary["steps"]
  assert list(steps) == ["url_filter", "extract", "language", "gopher_quality", "gopher_repetition", "c4",
                         "fineweb_quality", "minhash", "pii"]
  for before, after in zip(list(steps.values()), list(steps.values())[1:]):
    assert after["docs_in"] == before["kept"]  # every document is accounted for, step by step
  assert steps["minhash"]["reasons"].get("near_duplicate", 0) >= 1  # a /mirror/ page
  assert all(len(examples) <= 3 for step in steps.values() for examples in step["examples"].values())
  saved = json.loads((tmp_path / "run" / "stats.json").read_text())
  assert saved["steps"] == json.loads(json.dumps(steps))
  assert "gopher_quality" in capsys.readouterr().out  # the summary table


def test_bad_input_is_counted_and_reported(mixed_inputs, clean_config, tmp_path):
  summary = stage.run(clean_config, tmp_path / "run", input_pattern=str(mixed_inputs / "*"), workers=1)
  problems = summary["input_problems"]
  assert problems["bad_json_line"] == 3 and problems["truncated_record"] == 1
  assert problems["empty_document"] == 1  # the empty HTML file
  assert summary["input_problem_examples"]["bad_json_line"][0].endswith("line skipped")
  ids = {row["id"] for row in output_rows(tmp_path / "run")}
  # the JSONL copies of pages are exact duplicates of the WARC pages: one of each survives
  assert not any(f"jsonl-{doc_id}" in ids for doc_id in ids)


def test_switching_steps_off_and_jsonl_output(shipped_warc, clean_config, tmp_path):
  for name in ("language", "gopher_quality", "gopher_repetition", "c4", "fineweb_quality", "minhash"):
    clean_config[name].enabled = False
  clean_config.output_format = "jsonl"
  summary = stage.run(clean_config, tmp_path / "run", input_pattern=str(shipped_warc), workers=1)
  assert list(summary["steps"]) == ["url_filter", "extract", "pii"] and summary["docs_written"] == 125
  assert len((tmp_path / "run" / "docs" / "00000.jsonl").read_text().splitlines()) == 125


def test_parquet_output(shipped_warc, clean_config, tmp_path):
  pq = pytest.importorskip("pyarrow.parquet")
  clean_config.output_format = "parquet"
  summary = stage.run(clean_config, tmp_path / "run", input_pattern=str(shipped_warc), workers=1)
  assert pq.read_table(tmp_path / "run" / "docs" / "00000.parquet").num_rows == summary["docs_written"] > 0


def test_rerun_skips_finished_tasks_and_workdir_guards_its_config(shipped_warc, clean_config, tmp_path):
  stage.run(clean_config, tmp_path / "run", input_pattern=str(shipped_warc), workers=1)
  output = tmp_path / "run" / "docs" / "00000.jsonl.zst"
  before = output.stat().st_mtime_ns
  stage.run(clean_config, tmp_path / "run", input_pattern=str(shipped_warc), workers=1)
  assert output.stat().st_mtime_ns == before
  clean_config.gopher_quality.min_doc_words = 10
  with pytest.raises(UserError, match="different config"):
    stage.run(clean_config, tmp_path / "run", input_pattern=str(shipped_warc), workers=1)


def test_no_matching_input_names_the_pattern(clean_config, tmp_path):
  with pytest.raises(FileNotFoundError, match="no input files match"):
    stage.run(clean_config, tmp_path / "run", input_pattern=str(tmp_path / "nothing*.warc.gz"))


def test_failed_task_is_retried_alone_on_rerun(mixed_inputs, clean_config, tmp_path, monkeypatch):
  real_filter_task = stage.filter_task

  def flaky(input_paths, output, config):
    if output.endswith("00002.filtered.zst"):
      raise RuntimeError("disk on fire")
    real_filter_task(input_paths, output, config)

  monkeypatch.setattr(stage, "filter_task", flaky)
  with pytest.raises(TasksFailed, match="(?s)1 of 6 filter tasks failed.*disk on fire"):
    stage.run(clean_config, tmp_path / "run", input_pattern=str(mixed_inputs / "*"), workers=1)
  done = sorted(path.name for path in (tmp_path / "run" / "filtered").glob("*.done"))
  assert done == ["00000.done", "00001.done", "00003.done", "00004.done", "00005.done"]
  first_output = tmp_path / "run" / "filtered" / "00000.filtered.zst"
  before = first_output.stat().st_mtime_ns
  monkeypatch.setattr(stage, "filter_task", real_filter_task)
  stage.run(clean_config, tmp_path / "run", input_pattern=str(mixed_inputs / "*"), workers=1)
  assert first_output.stat().st_mtime_ns == before
  reference = stage.run(clean_config, tmp_path / "reference", input_pattern=str(mixed_inputs / "*"), workers=1)
  assert output_rows(tmp_path / "run") == output_rows(tmp_path / "reference")
  assert reference["docs_written"] == len(output_rows(tmp_path / "run"))


KILLABLE_RUN = """
import sys, time
sys.path.insert(0, {repo!r})
import configs.clean
from lmjax.data.web import minhash, stage
slow = lambda fn: lambda **kwargs: (time.sleep(0.4), fn(**kwargs))[1]
stage.filter_task = slow(stage.filter_task)
stage.final_task = slow(stage.final_task)
stage.run(configs.clean.get_config(), {workdir!r}, input_pattern={pattern!r}, workers=1)
"""


@pytest.mark.parametrize("kill_when", ["filtered/*.done", "docs/*.done"])
def test_resume_after_kill_gives_identical_output(mixed_inputs, clean_config, tmp_path, kill_when):
  pattern = str(mixed_inputs / "*")
  workdir = tmp_path / "killed"
  script = KILLABLE_RUN.format(repo=str(REPO), workdir=str(workdir), pattern=pattern)
  process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
  deadline = time.time() + 60
  while len(list(workdir.glob(kill_when))) < 2 and time.time() < deadline and process.poll() is None:
    time.sleep(0.02)
  os.kill(process.pid, signal.SIGKILL)
  process.wait()
  assert len(list(workdir.glob(kill_when))) >= 2 and not (workdir / "stats.json").exists()
  (workdir / "filtered" / ".00004.filtered.zst.tmp999").write_bytes(b"half a shard")  # a kill mid-write
  resumed = stage.run(clean_config, workdir, input_pattern=pattern, workers=1)
  assert not list(workdir.rglob(".*.tmp*"))
  uninterrupted = stage.run(clean_config, tmp_path / "clean", input_pattern=pattern, workers=1)
  assert output_rows(workdir) == output_rows(tmp_path / "clean") and len(output_rows(workdir)) > 10
  for key in ("docs_read", "docs_written", "input_problems"):
    assert resumed[key] == uninterrupted[key]


def test_worker_processes_give_the_same_output(mixed_inputs, clean_config, tmp_path):
  pattern = str(mixed_inputs / "*")
  stage.run(clean_config, tmp_path / "one", input_pattern=pattern, workers=1)
  stage.run(clean_config, tmp_path / "two", input_pattern=pattern, workers=2)
  assert output_rows(tmp_path / "one") == output_rows(tmp_path / "two")


def test_bad_executor_and_output_format_fail_before_any_work(shipped_warc, clean_config, tmp_path):
  with pytest.raises(UserError, match="--executor='spark' is not one of"):
    stage.run(clean_config, tmp_path / "run", input_pattern=str(shipped_warc), executor="spark")
  clean_config.output_format = "csv"
  with pytest.raises(ValueError, match="output_format='csv'"):
    stage.run(clean_config, tmp_path / "run", input_pattern=str(shipped_warc))
  assert not (tmp_path / "run").exists()
