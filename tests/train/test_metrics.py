"""The metrics log: a resumed run drops lines past its checkpoint and a half-written last line (saying so),
recreates a missing file with a warning and rewrites nothing else; a remote log is uploaded whole, never
appended to (objects cannot be)."""
from lmjax import fs
from lmjax.train import metrics
from lmjax.train.metrics import MetricsLog, read_metrics


def test_a_resumed_log_drops_the_lines_past_the_restored_step_and_a_half_written_one(tmp_path, capsys):
  log = MetricsLog(str(tmp_path / "metrics.jsonl"), resume_step=0, tensorboard_dir=None)
  for step in (1, 2, 3):
    log.write(step, {"loss": float(step)})
  log.close()
  with open(tmp_path / "metrics.jsonl", "a") as f:
    f.write('{"step": 4, "lo')  # killed mid-line
  MetricsLog(str(tmp_path / "metrics.jsonl"), resume_step=2, tensorboard_dir=None).close()
  assert read_metrics(tmp_path) == [{"step": 1, "loss": 1.0}, {"step": 2, "loss": 2.0}]
  assert "dropping the half-written last line" in capsys.readouterr().out


def test_a_missing_log_of_a_resumed_run_is_recreated_with_a_warning(tmp_path, capsys):
  log = MetricsLog(str(tmp_path / "metrics.jsonl"), resume_step=8, tensorboard_dir=None)
  log.write(9, {"loss": 1.0})
  log.close()
  assert read_metrics(tmp_path) == [{"step": 9, "loss": 1.0}]
  assert "metrics.jsonl is missing; recreating it" in capsys.readouterr().out


def test_a_clean_log_is_appended_to_as_it_stands_never_rewritten(tmp_path, monkeypatch):
  text = '{"step": 1, "loss": 1.0}\n{"step":2,"loss":2.0, "note": "kept as written"}\n'
  (tmp_path / "metrics.jsonl").write_text(text)
  monkeypatch.setattr(fs, "write_atomically", lambda *a: (_ for _ in ()).throw(AssertionError("rewritten")))
  log = MetricsLog(str(tmp_path / "metrics.jsonl"), resume_step=2, tensorboard_dir=None)
  log.write(3, {"loss": 3.0})
  log.close()
  assert (tmp_path / "metrics.jsonl").read_text() == text + '{"step": 3, "loss": 3.0}\n'


def test_a_remote_log_is_uploaded_whole_at_intervals_and_at_close(tmp_path, monkeypatch):
  monkeypatch.setattr(fs, "is_remote", lambda p: True)  # a local file stands in for the object
  appends = []
  real_open = fs.open
  monkeypatch.setattr(fs, "open", lambda p, mode="r": appends.append(mode) if "a" in mode else real_open(p, mode))
  clock = iter([0.0, 10.0, 40.0, 50.0, 60.0, 70.0])
  monkeypatch.setattr(metrics.time, "monotonic", lambda: next(clock))
  log = MetricsLog(str(tmp_path / "metrics.jsonl"), resume_step=0, tensorboard_dir=None, upload_every_s=30)
  log.write(1, {"loss": 1.0})  # t=10: not yet
  assert read_metrics(tmp_path) == []
  log.write(2, {"loss": 2.0})  # t=40: uploaded
  assert [m["step"] for m in read_metrics(tmp_path)] == [1, 2]
  log.write(3, {"loss": 3.0})  # t=60 after the upload at 50: not yet
  log.close()
  assert [m["step"] for m in read_metrics(tmp_path)] == [1, 2, 3] and not appends
