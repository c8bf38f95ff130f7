"""What a stage reads: the same config gives bit-identical stages in any workdir and from data in any folder
(ids and splits never hold a path, markers are never documents), and a stage's key covers every config field
the stage reads (recorded while the tiny chain runs, then its DPO route from the same stages)."""
import hashlib
import json
import pathlib
import shutil
import subprocess
import sys

import pytest

from lmjax.chain import stages
from lmjax.train.metrics import read_metrics
from tests.chain.test_chain import ENV, TINY_CHAIN
from tests.conftest import REPO

ASSETS = REPO / "lmjax" / "assets"
SAME_STAGES = ("clean", "tokenizer", "tokenize", "pretrain", "sft")


def _recorded_run(workdir, reads, *args) -> dict[str, str]:
  """Runs the tiny chain with every stage's config reads recorded; returns {stage: its folder}."""
  command = [sys.executable, "-m", "tests.chain.config_reads", str(reads), "run", "--config", TINY_CHAIN,
             "--workdir", str(workdir), *args]
  result = subprocess.run(command, env=ENV, cwd=REPO, capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  with open(workdir / "chain.json") as f:
    return {s["stage"]: s["dir"] for s in json.load(f)["stages"]}


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
  """The whole tiny chain in one workdir on the shipped data; in another, up to SFT, on a copy of that data
  in another folder (as in a second checkout)."""
  root = tmp_path_factory.mktemp("inputs")
  elsewhere = shutil.copytree(ASSETS, root / "checkout" / "assets")
  corpus = ",".join(f"{elsewhere}/corpus/{name}" for name in ("botchan.jsonl.gz", "fortunes_de_es.jsonl.gz"))
  first = _recorded_run(root / "a", root / "reads_a.json")
  second = _recorded_run(root / "elsewhere" / "b", root / "reads_b.json", "--until", "sft",
                         f"--config.chain.web_input={elsewhere}/web/*.warc.gz", f"--config.chain.corpus={corpus}")
  with open(root / "reads_a.json") as f:
    return first, second, json.load(f)


@pytest.fixture(scope="module")
def dpo_route(two_runs, tmp_path_factory):
  """({stage: folder}, reads) of the tiny chain with chain.preference=dpo, run over the first run's stages."""
  first, _, _ = two_runs
  root = tmp_path_factory.mktemp("dpo_route")
  dirs = _recorded_run(root / "run", root / "reads.json", "--config.chain.preference=dpo",
                       "--stage-root", str(pathlib.Path(first["sft"]).parent))
  with open(root / "reads.json") as f:
    return root / "run", dirs, json.load(f)


def _digest(folder, pattern: str) -> dict[str, str]:
  return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
          for p in sorted(folder.glob(pattern))}


def test_the_same_config_gives_the_same_stage_keys_in_any_workdir_and_data_folder(two_runs):
  first, second, _ = two_runs
  assert {s: first[s].rsplit("-", 1)[1] for s in SAME_STAGES} == {
      s: second[s].rsplit("-", 1)[1] for s in SAME_STAGES}


def test_the_tokenizer_and_token_shards_are_bit_identical_in_any_workdir(two_runs):
  first, second, _ = two_runs
  model = lambda dirs: (pathlib.Path(dirs["tokenizer"]) / "tokenizer.model").read_bytes()
  assert model(first) == model(second)
  shards = lambda dirs: _digest(pathlib.Path(dirs["tokenize"]), "tokens/*/*.array_record")
  assert shards(first) == shards(second) and len(shards(first)) == 4


def test_pretraining_and_sft_losses_agree_step_for_step_in_any_workdir(two_runs):
  first, second, _ = two_runs
  for stage in ("pretrain", "sft"):
    losses = lambda dirs: [(m["step"], m["loss"], m.get("val_loss")) for m in read_metrics(dirs[stage])]
    assert losses(first) == losses(second) and len(losses(first)) >= 6, stage


def test_the_clean_stages_markers_and_stats_are_never_read_as_documents(two_runs):
  first, _, _ = two_runs
  docs = pathlib.Path(first["clean"]) / "docs"
  assert list(docs.glob("*.done")) and list(docs.glob("*.stats.json"))  # they are there, beside the shards
  with open(pathlib.Path(first["tokenize"]) / "tokens" / "summary.json") as f:
    tokenized = sum(split["documents"] for split in json.load(f).values())
  with open(pathlib.Path(first["clean"]) / "stats.json") as f:
    cleaned = json.load(f)["docs_written"]
  assert tokenized == cleaned + sum(1 for _ in _corpus_documents())


def _corpus_documents():
  import gzip
  for name in ("botchan.jsonl.gz", "fortunes_de_es.jsonl.gz"):
    with gzip.open(ASSETS / "corpus" / name, "rt") as f:
      yield from (line for line in f if line.strip())


def _covered(name: str) -> tuple[str, ...]:
  """The fields whose values a stage's key depends on: its own, its inputs' (through their keys), the wired
  folders and the fields that decide only how it runs."""
  from configs import base
  from lmjax.chain.stages import stage_config
  config = stage_config(base.get_config(), name)
  fields, pending = set(), [name]
  while pending:
    stage = stages.STAGES[pending.pop()]
    fields.update(stage.fields)
    pending.extend(stage.needs(config))
  return (*fields, *stages.WIRING, *stages.UNKEYED)


@pytest.mark.slow  # ~80 s: a DPO stage and its evaluation over the shared chain
def test_the_dpo_route_trains_dpo_from_the_shared_sft_run_and_evaluates_it_as_the_final_policy(two_runs, dpo_route):
  first, _, _ = two_runs
  workdir, dirs, _ = dpo_route
  with open(workdir / "chain.json") as f:
    ran = [s["stage"] for s in json.load(f)["stages"] if not s["cached"]]
  assert ran == ["dpo", "eval_dpo"] and "rm" not in dirs and dirs["sft"] == first["sft"]
  with open(pathlib.Path(dirs["eval_dpo"]) / "eval.json") as f:
    results = json.load(f)
  assert results["kind"] == "dpo" and results["model_workdir"] == dirs["dpo"] and "math_pass1" in results
  assert [m["step"] for m in read_metrics(dirs["dpo"])][-1] == 4
  text = (workdir / "report.md").read_text()
  assert "## Preference optimisation" in text and "| eval_dpo |" in text and "### Sample conversations (dpo)" in text


def test_every_stage_reads_only_config_fields_its_key_covers(two_runs, dpo_route):
  both = (two_runs[2], dpo_route[2])
  reads = {name: sorted({f for r in both for f in r.get(name, [])}) for r in both for name in r}
  assert set(reads) == set(stages.STAGES)  # every stage of both routes ran and was watched
  for name, fields in reads.items():
    covered = _covered(name)
    uncovered = [f for f in fields if not any(f == c or f.startswith(c + ".") for c in covered)]
    assert not uncovered, f"stage {name} reads {uncovered}, which its key does not cover (lmjax/chain/stages.py)"
    assert fields, name


def test_the_recorder_sees_a_field_read_outside_the_key(tmp_path):
  from configs import base
  from tests.chain.config_reads import ConfigReads
  reads, config = ConfigReads(), base.get_config()
  reads.watch(config, "probe")
  with reads.installed():
    _ = config.rollout.temperature, config.get("rl").clip_eps
    _ = config.copy_and_resolve_references().sample.top_k
    config.sft.mixture.to_dict()
    config.to_json_best_effort()  # serialising the whole config reads nothing
  _ = config.train.steps  # no longer recorded
  assert reads.read["probe"] == {"rollout.temperature", "rl.clip_eps", "sample.top_k", "sft.mixture"}
