"""Ablation files: what they must define, the launch commands they emit (once per seed), bad variants failing
up front (the statistics over seeds by hand are in test_seed_stats.py), and a two-variant, two-seed sweep of the tiny chain."""
import json
import math
import os
import shlex
import shutil
import subprocess
import sys

import pytest

from lmjax.chain import report, runner, sweep
from lmjax.config import ConfigError, load_config
from tests.conftest import REPO


def _ablation(tmp_path, text):
  path = tmp_path / "ablation.py"
  path.write_text(text)
  return str(path)


def test_every_shipped_ablation_loads_and_its_variants_are_valid_configs(tmp_path):
  for path in ("experiments/ppo_clip.py", "experiments/web_filters.py", "experiments/preference.py"):
    base, variants = sweep.load_ablation(str(REPO / path))
    commands = sweep.launch_commands(base, variants, str(tmp_path), [], f"{tmp_path}/stages")
    assert len(commands) == len(variants)
    for command in commands:
      args = shlex.split(command)
      assert args[:2] == ["lmjax", "run"] and args[args.index("--stage-root") + 1] == f"{tmp_path}/stages"


def test_emitted_commands_carry_the_variant_and_the_shared_overrides(tmp_path):
  base, variants = sweep.load_ablation(str(REPO / "experiments" / "ppo_clip.py"))
  first = sweep.launch_commands(base, variants, str(tmp_path), ["rl.iterations=2"], "shared")[0]
  assert "--stage-root shared" in first
  assert first.endswith("--config.rl.iterations=2 --config.rl.clip_eps=0.1")


def test_an_ablation_without_variants_or_base_is_an_error(tmp_path):
  with pytest.raises(ConfigError, match="must define BASE"):
    sweep.load_ablation(_ablation(tmp_path, "VARIANTS = {'a': {}}\n"))
  with pytest.raises(ConfigError, match="defines no VARIANTS"):
    sweep.load_ablation(_ablation(tmp_path, "BASE = 'configs/speedrun_cpu.py'\nVARIANTS = {}\n"))


def test_a_mistyped_variant_field_fails_before_any_variant_runs(tmp_path):
  path = _ablation(tmp_path, f"BASE = {str(REPO / 'configs' / 'speedrun_cpu.py')!r}\n"
                             "VARIANTS = {'ok': {'rl.clip_eps': 0.1}, 'typo': {'rl.clip_epz': 0.3}}\n")
  with pytest.raises(ConfigError, match="config.rl.clip_epz; did you mean clip_eps"):
    sweep.run(path, str(tmp_path / "sweep"), [])
  assert not (tmp_path / "sweep").exists()


def test_emitted_commands_run_each_variant_once_per_seed_in_its_seed_folder(tmp_path, capsys):
  path = _ablation(tmp_path, f"BASE = {str(REPO / 'configs' / 'speedrun_cpu.py')!r}\nSEEDS = [3]\n"
                             "VARIANTS = {'a': {'rl.clip_eps': 0.1}, 'b': {'rl.clip_eps': 0.3}}\n")
  sweep.run(path, str(tmp_path / "sweep"), ["rl.iterations=2"], emit_commands=True, seeds=[0, 1])  # flag wins
  commands = capsys.readouterr().out.strip().split("\n")
  assert [shlex.split(c)[shlex.split(c).index("--workdir") + 1] for c in commands] == [
      f"{tmp_path}/sweep/{name}/seed{seed}" for seed in (0, 1) for name in ("a", "b")]
  assert commands[3].endswith("--config.rl.iterations=2 --config.rl.clip_eps=0.3 --config.train.seed=1 "
                              "--config.rl.seed=1")
  assert json.loads((tmp_path / "sweep" / "sweep.json").read_text())["seeds"] == [0, 1]  # for `lmjax report`
  sweep.run(path, str(tmp_path / "sweep"), [], emit_commands=True)  # the file's SEEDS
  assert "--workdir " + f"{tmp_path}/sweep/a/seed3" in capsys.readouterr().out


def test_a_variant_that_sets_a_seed_field_is_an_error_before_anything_runs_when_seeds_are_given(tmp_path):
  path = _ablation(tmp_path, f"BASE = {str(REPO / 'configs' / 'speedrun_cpu.py')!r}\n"
                             "VARIANTS = {'ok': {}, 'seeded': {'train.seed': 5}}\n")
  with pytest.raises(ConfigError, match="variant 'seeded' sets train.seed"):
    sweep.run(path, str(tmp_path / "sweep"), [], seeds=[0, 1])
  with pytest.raises(ConfigError, match="--config.rl.seed=2 sets a field the sweep's seeds set"):
    sweep.run(_ablation(tmp_path, f"BASE = {str(REPO / 'configs' / 'speedrun_cpu.py')!r}\n"
                                  "VARIANTS = {'ok': {}}\nSEEDS = [0]\n"), str(tmp_path / "sweep"), ["rl.seed=2"])
  with pytest.raises(ConfigError, match="repeats a seed"):
    sweep.run(path, str(tmp_path / "sweep"), [], seeds=[1, 1])
  assert not (tmp_path / "sweep").exists()


def test_the_speedrun_seeds_experiment_has_the_stage_keys_of_its_documented_lmjax_run(tmp_path, monkeypatch):
  monkeypatch.chdir(REPO)
  path = "experiments/speedrun_seeds.py"
  base, variants = sweep.load_ablation(path)
  seeds = sweep.load_seeds(path)
  assert (base, variants, seeds) == ("configs/speedrun_cpu.py", {"speedrun": {}}, [0, 1, 2])
  command = ("lmjax run --config configs/speedrun_cpu.py --workdir runs/speedrun_seeds/speedrun/seed0 "
             "--stage-root runs/speedrun_seeds/stages --config.train.seed=0 --config.rl.seed=0")
  assert sweep.launch_commands(base, variants, "runs/speedrun_seeds", [], "runs/speedrun_seeds/stages",
                               seeds)[0] == command
  documented = load_config("configs/speedrun_cpu.py", ["train.seed=0", "rl.seed=0"])
  keys = lambda config: [(p.name, p.key) for p in runner.plan(config, str(tmp_path / "stages"))]
  assert keys(sweep.run_configs(base, variants, [], seeds)[("speedrun", 0)]) == keys(documented)
  assert keys(sweep.run_configs(base, variants, [], seeds)[("speedrun", 1)]) != keys(documented)


def test_the_speedrun_seeds_script_runs_the_same_sweep_as_lmjax_sweep(tmp_path):
  result = subprocess.run([sys.executable, "experiments/speedrun_seeds.py", "--workdir", str(tmp_path / "s"),
                           "--seeds", "4", "--emit-commands"], cwd=REPO, capture_output=True, text=True,
                          timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO)))
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout.strip() == (
      f"lmjax run --config configs/speedrun_cpu.py --workdir {tmp_path}/s/speedrun/seed4 --stage-root "
      f"{tmp_path}/s/stages --config.train.seed=4 --config.rl.seed=4")


T_975_1_DOF = 12.706204736174698  # Student t's 97.5% quantile for 1 degree of freedom (two seeds)
CHEAP = ["--config.chain.stages=('clean', 'tokenizer', 'tokenize', 'pretrain', 'eval_pretrain')",
         "--config.eval.tasks=('loss',)"]


@pytest.fixture(scope="module")
def seeded_sweep(sweep, tmp_path_factory):
  """The tiny chain up to the base model's evaluation, two variants (how many val batches `lmjax eval` scores)
  × seeds 0 and 1, through the CLI, over copies of the shared chain's stages before evaluation (seed 0's)."""
  from tests.chain.conftest import ENV, TINY_CHAIN
  root = tmp_path_factory.mktemp("seeded")
  for stage in ("clean", "tokenizer", "tokenize", "pretrain"):
    [done] = (sweep / "stages").glob(f"{stage}-*")
    shutil.copytree(done, root / "sweep" / "stages" / done.name)
  ablation = root / "loss_batches.py"
  ablation.write_text(f"BASE = {TINY_CHAIN!r}\nVARIANTS = {{'one_batch': {{'eval.loss_batches': 1}}, "
                      "'two_batches': {'eval.loss_batches': 2}}\n")
  result = subprocess.run([sys.executable, "-m", "lmjax.cli", "sweep", str(ablation), "--workdir",
                           str(root / "sweep"), "--seeds", "0", "1", *CHEAP], env=ENV, cwd=REPO,
                          capture_output=True, text=True, timeout=900)
  assert result.returncode == 0, result.stderr[-3000:]
  return root / "sweep"


def _headlines(workdir) -> dict[str, dict[int, dict]]:
  return {name: {seed: report.headline(str(workdir / name / f"seed{seed}")) for seed in (0, 1)}
          for name in ("one_batch", "two_batches")}


def test_a_seeded_sweep_shares_the_stages_that_read_no_seed_and_the_seeds_train_differently(seeded_sweep):
  chains = {(name, seed): json.loads((seeded_sweep / name / f"seed{seed}" / "chain.json").read_text())["stages"]
            for name in ("one_batch", "two_batches") for seed in (0, 1)}
  ran = {run: [s["stage"] for s in stages if not s["cached"]] for run, stages in chains.items()}
  assert ran == {("one_batch", 0): ["eval_pretrain"], ("two_batches", 0): ["eval_pretrain"],  # seed 0's: copied
                 ("one_batch", 1): ["pretrain", "eval_pretrain"], ("two_batches", 1): ["eval_pretrain"]}
  config = json.loads((seeded_sweep / "two_batches" / "seed1" / "config.json").read_text())
  assert (config["train"]["seed"], config["rl"]["seed"], config["eval"]["loss_batches"]) == (1, 1, 2)
  heads = _headlines(seeded_sweep)["one_batch"]
  assert heads[0]["pretrain.val_loss"] != heads[1]["pretrain.val_loss"]  # init and data order follow the seed


def test_sweep_json_and_md_hold_the_mean_std_and_paired_difference_of_each_runs_headline(seeded_sweep):
  heads, saved = _headlines(seeded_sweep), json.loads((seeded_sweep / "sweep.json").read_text())
  assert saved["seeds"] == [0, 1] and list(saved["variants"]) == ["one_batch", "two_batches"]
  text = (seeded_sweep / "sweep.md").read_text()
  for metric in ("pretrain.val_loss", "eval_pretrain.val_loss", "tokenize.train_tokens"):
    a, b = ([heads[name][seed][metric] for seed in (0, 1)] for name in ("one_batch", "two_batches"))
    for name, values in (("one_batch", a), ("two_batches", b)):
      entry = saved["variants"][name][metric]
      assert entry["values"] == {"0": values[0], "1": values[1]} and entry["n"] == 2
      assert entry["mean"] == pytest.approx((values[0] + values[1]) / 2)
      assert entry["std"] == pytest.approx(abs(values[0] - values[1]) / math.sqrt(2))  # ddof=1, two values
    diffs = [b[0] - a[0], b[1] - a[1]]
    mean, half = sum(diffs) / 2, T_975_1_DOF * (abs(diffs[0] - diffs[1]) / math.sqrt(2)) / math.sqrt(2)
    entry = saved["variants"]["two_batches"][metric]
    assert entry["diff_mean"] == pytest.approx(mean, abs=1e-12)
    assert entry["diff_ci95"] == pytest.approx([mean - half, mean + half], abs=1e-12)
    assert "diff_mean" not in saved["variants"]["one_batch"][metric]
    mean_a, std_a = saved["variants"]["one_batch"][metric]["mean"], saved["variants"]["one_batch"][metric]["std"]
    assert f"| {metric} | {report.fmt(mean_a)} ± {report.fmt(std_a)} (n=2) |" in text
  assert saved["variants"]["one_batch"]["pretrain.val_loss"]["std"] > 0
  assert saved["variants"]["two_batches"]["eval_pretrain.val_loss"]["diff_mean"] != 0  # the variants differ
  assert "| eval.loss_batches | 1 | 2 |" in text


def test_lmjax_report_of_a_sweep_folder_recomputes_its_table_from_the_runs_on_disk(seeded_sweep, tmp_path):
  from tests.chain.conftest import ENV
  copy = shutil.copytree(seeded_sweep, tmp_path / "sweep", ignore=shutil.ignore_patterns("stages"))
  (copy / "two_batches" / "seed1" / "chain.json").unlink()  # as if that run had not finished a stage yet
  (copy / "sweep.md").unlink()
  result = subprocess.run([sys.executable, "-m", "lmjax.cli", "report", str(copy)], env=ENV, cwd=REPO,
                          capture_output=True, text=True, timeout=300)
  assert result.returncode == 0, result.stderr[-3000:]
  assert result.stdout == (copy / "sweep.md").read_text()
  entry = json.loads((copy / "sweep.json").read_text())["variants"]["two_batches"]["pretrain.val_loss"]
  assert (entry["n"], entry["std"], entry["diff_n"], entry["diff_ci95"]) == (1, None, 1, None)
  assert entry["values"] == {"0": _headlines(seeded_sweep)["two_batches"][0]["pretrain.val_loss"]}
