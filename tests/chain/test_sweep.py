"""Ablation files: what they must define, the launch commands they emit, and bad variants failing up front."""
import shlex

import pytest

from lmjax.chain import sweep
from lmjax.config import ConfigError
from tests.conftest import REPO


def _ablation(tmp_path, text):
  path = tmp_path / "ablation.py"
  path.write_text(text)
  return str(path)


def test_every_shipped_ablation_loads_and_its_variants_are_valid_configs(tmp_path):
  for path in ("experiments/ppo_clip.py", "experiments/web_filters.py"):
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
