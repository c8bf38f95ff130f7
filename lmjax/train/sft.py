"""`lmjax sft`: supervised fine-tuning of a pretrained model into an assistant, resumably.

    lmjax sft --config configs/sft_quickstart.py --workdir runs/quickstart_sft \
        --config.sft.base_workdir=runs/quickstart

The same loop and train step as pretraining, with the `next_token` loss and the chat protocol's
assistant-only mask: conversations are rendered by `lmjax.chat`, packed whole, and the model learns only
the tokens the assistant says (never the user's, the system's or a tool's output).
"""
import hashlib
import json

import jax
from flax import nnx

from lmjax import chat, losses
from lmjax.config import ConfigError, load_saved_config
from lmjax.data.chat_pipeline import make_chat_dataset, render_examples
from lmjax.data.documents import expand, open_text
from lmjax.infer.load import load_model
from lmjax.train.loop import StageData, train
from lmjax.train.setup import build_train_setup, tokenizer_path
from lmjax.train.state import TrainState


def read_conversations(pattern: str) -> list[list[dict]]:
  """Conversations from JSONL files: one per line, as {"messages": [...]} or a bare list; each validated."""
  conversations = []
  for path in expand(pattern):
    with open_text(path) as f:
      for number, line in enumerate(f, 1):
        if not line.strip():
          continue
        try:
          record = json.loads(line)
          messages = record["messages"] if isinstance(record, dict) else record
          chat.validate(messages)
        except (json.JSONDecodeError, KeyError, TypeError, chat.ProtocolError) as e:
          raise ValueError(f"{path}:{number}: not a valid conversation ({e})") from e
        conversations.append(messages)
  return conversations


def is_validation_conversation(messages: list[dict], fraction: float) -> bool:
  digest = hashlib.sha1(json.dumps(messages, sort_keys=True).encode()).digest()
  return int.from_bytes(digest[:8], "little") / 2**64 < fraction


def check_same_model(config, base_config) -> None:
  """SFT continues the base model, so the architecture must be the base run's."""
  differ = [k for k in config.model if k not in ("dtype",) and config.model[k] != base_config.model.get(k)]
  if differ:
    fixes = ", ".join(f"model.{k}={base_config.model[k]!r}" for k in differ)
    raise ConfigError(f"the SFT model differs from the base run's in {', '.join(differ)}; set {fixes}")


def run(config, workdir: str) -> dict:
  """Fine-tunes the latest checkpoint of config.sft.base_workdir on the configured conversations."""
  base_dir = config.sft.base_workdir
  if not base_dir:
    raise ConfigError("config.sft.base_workdir is empty; set it to the pretraining run to start from")
  base_config = load_saved_config(base_dir)
  check_same_model(config, base_config)
  base = load_model(base_config, base_dir)
  tok = base.tokenizer
  conversations = read_conversations(config.sft.conversations)
  t = config.train
  split = [is_validation_conversation(c, config.sft.val_fraction) for c in conversations]
  train_examples = render_examples([c for c, v in zip(conversations, split) if not v], tok, t.seq_len)
  val_examples = render_examples([c for c, v in zip(conversations, split) if v], tok, t.seq_len)
  setup = build_train_setup(config, tokenizer_path(base_config, base_dir))
  dataset = lambda examples, **kw: make_chat_dataset(
      examples, seq_len=t.seq_len, batch_size=t.batch_size, process_index=jax.process_index(),
      process_count=jax.process_count(), **kw)
  val = dataset(val_examples, seed=0, shuffle=False, repeat=False) if val_examples else []
  data = StageData(iter(dataset(train_examples, seed=t.seed)), list(val)[: config.eval.batches])

  def init_from_base() -> TrainState:
    params = jax.device_put(base.params, setup.shardings.params)
    opt_state = jax.jit(setup.optimizer.init, out_shardings=setup.shardings.opt_state)(params)
    return TrainState(step=jax.numpy.zeros((), jax.numpy.int32), params=params, opt_state=opt_state)

  print(f"sft: {len(train_examples)} training and {len(val_examples)} validation conversations, "
        f"from {base_dir} (step {base.step})")
  return train(config, workdir, setup, data, loss_fn=losses.next_token, loss_name="next_token",
               init_state=init_from_base)
