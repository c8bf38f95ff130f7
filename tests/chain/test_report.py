"""The report card and the headline of a run folder written by hand: the probe stage's report, read by both."""
import json

from lmjax.chain import report
from lmjax.data.posttrain.qa_facts import QA
from lmjax.infer import probe


def _probe_stage(tmp_path):
  """A run whose chain.json lists one probe stage, with the report run_probe writes (summaries by probe)."""
  answered = probe.Probed(QA("Q?", "x", "place", "doc"), ("x", "no"), ("correct", "wrong"))
  summary = probe.summarize([answered], 0.0)
  probed = {"samples_per_question": 2, "probe": summary, "heldout": summary, "dont_know_conversations": 3,
            "known_conversations": 4}
  stage_dir = tmp_path / "stages" / "probe-abc"
  stage_dir.mkdir(parents=True)
  (stage_dir / probe.REPORT_FILE).write_text(json.dumps(probed))
  run = tmp_path / "run"
  run.mkdir()
  (run / "chain.json").write_text(json.dumps({"stages": [{"stage": "probe", "key": "abc", "dir": str(stage_dir)}]}))
  return str(run)


def test_the_headline_and_the_report_card_show_the_probe_stages_report(tmp_path):
  run = _probe_stage(tmp_path)
  assert report.headline(run) == {"probe.accuracy": 0.5, "probe.dont_know_conversations": 3,
                                  "probe.known_conversations": 4}
  text = report.render(run)
  assert "SFT gets 3 \"I don't know\" conversations" in text and "| probe | place | 1 | 0.5 | 0 |" in text


def test_a_probe_stage_without_its_report_yet_is_said_so(tmp_path):
  run = _probe_stage(tmp_path)
  (tmp_path / "stages" / "probe-abc" / probe.REPORT_FILE).unlink()
  assert report.headline(run) == {}
  assert "(no probe report yet)" in report.render(run)
