"""experiments/benchmarks/checklist.py: a failing check is recorded and the next one still runs, a check due
after the budget is skipped, and the JSON on disk always holds every result so far."""
import json

from experiments.benchmarks.checklist import Checklist


def fails(context):
  raise RuntimeError("out of memory\nsecond line of the reason")


def test_a_failing_check_is_recorded_in_one_line_and_the_next_one_runs(tmp_path, capsys):
  out = tmp_path / "checks.json"
  checklist = Checklist("probe", str(out), budget_s=60, machine="here")
  checklist.run("first", fails, {})
  checklist.run("second", lambda context: ("fine", {"value": 3}), {})
  printed = capsys.readouterr().out.splitlines()
  assert printed == ["probe: first: FAILED RuntimeError: out of memory", "probe: second: fine"]
  summary = json.loads(out.read_text())
  assert [(c["check"], c["status"]) for c in summary["checks"]] == [("first", "FAILED"), ("second", "ok")]
  assert summary["checks"][1]["value"] == 3 and summary["machine"] == "here"
  assert not checklist.all_ran()


def test_a_check_due_after_the_budget_is_skipped_without_running(tmp_path):
  checklist = Checklist("probe", str(tmp_path / "checks.json"), budget_s=0)
  ran = []
  checklist.run("late", lambda context: ran.append(1) or ("", {}), {})
  assert ran == [] and checklist.summary["checks"][0]["status"] == "SKIPPED"


def test_checks_share_the_context_they_are_given(tmp_path):
  checklist, context = Checklist("probe", None, budget_s=60), {}
  checklist.run("writes", lambda c: (c.update(answer=42) or "ok", {}), context)
  checklist.run("reads", lambda c: (str(c["answer"]), {}), context)
  assert [c["line"] for c in checklist.summary["checks"]] == ["ok", "42"] and checklist.all_ran()
