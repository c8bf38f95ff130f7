"""What a stage reads: the same config gives bit-identical stages in any workdir and from data in any folder
(ids and splits never hold a path, markers are never documents), and a stage's key covers every config field
the stage reads (recorded while the shared sweep of the tiny chain runs, both routes, and the second run)."""
import hashlib
import json
import pathlib
import shutil

import pytest

from lmjax.chain import stages
from lmjax.train.metrics import read_metrics
from tests.chain.conftest import TINY_CHAIN, chain_dirs, recorded_lmjax
from tests.conftest import REPO

ASSETS = REPO / "lmjax" / "assets"
SAME_STAGES = ("clean", "tokenizer", "tokenize", "pretrain", "sft")


@pytest.fixture(scope="module")
def two_runs(sweep, tmp_path_factory):
  """({stage: folder} of the shared sweep's first variant, on the shipped data; the same up to SFT in another
  workdir, from a copy of that data in another folder (as in a second checkout), with its config reads)."""
  root = tmp_path_factory.mktemp("inputs")
  elsewhere = shutil.copytree(ASSETS, root / "checkout" / "assets")
  corpus = ",".join(f"{elsewhere}/corpus/{name}" for name in ("botchan.jsonl.gz", "fortunes_de_es.jsonl.gz"))
  recorded_lmjax(root / "reads.json", "run", "--config", TINY_CHAIN, "--workdir", str(root / "elsewhere" / "b"),
                 "--until", "sft", f"--config.chain.web_input={elsewhere}/web/*.warc.gz",
                 f"--config.chain.corpus={corpus}")
  with open(root / "reads.json") as f:
    return chain_dirs(sweep / "eps_0.1"), chain_dirs(root / "elsewhere" / "b"), json.load(f)


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
  """The first run's pretraining was killed (-9) after its step-4 checkpoint and resumed (conftest.py), so this
  also pins an exact resume of pretraining after kill -9 (tests/train/test_pretrain.py has it as a slow test)."""
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


def test_every_stage_reads_only_config_fields_its_key_covers(recorded_sweep, two_runs):
  both = (recorded_sweep[1], two_runs[2])  # the sweep ran each stage from pretraining on, the second run the rest
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
