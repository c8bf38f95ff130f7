"""A later stage must continue its base run's architecture: sections compare by value, differences are named."""
import json

import ml_collections
import pytest

from configs import base
from lmjax.config import ConfigError
from lmjax.train.base_run import check_same_model


def _saved(config) -> ml_collections.ConfigDict:
  """The config as a run saves and reloads it (JSON), unlocked: what load_saved_config gives."""
  return ml_collections.ConfigDict(json.loads(json.dumps(config.to_dict())))


def test_a_base_run_with_the_same_model_passes_though_its_sections_were_reloaded():
  config = base.get_config()
  check_same_model(config, _saved(config))  # model.rope_scaling and model.lora are sections
  lora = base.get_config()
  lora.model.lora.rank = 8
  check_same_model(lora, _saved(config))  # LoRA or not, the model is the same


def test_a_different_architecture_names_the_field_and_the_base_runs_value():
  config, other = base.get_config(), base.get_config()
  other.model.rope_scaling.type = "llama3"
  other.model.num_layers = config.model.num_layers + 1
  with pytest.raises(ConfigError, match=r"differs from the base run's in num_layers, rope_scaling; set "
                                        rf"model.num_layers={config.model.num_layers + 1}"):
    check_same_model(config, _saved(other))
