"""`lmjax sft`: supervised fine-tuning of a pretrained model into an assistant, resumably.

    lmjax sft --config configs/sft_quickstart.py --workdir runs/quickstart_sft \
        --config.sft.base_workdir=runs/quickstart

The same loop and train step as pretraining, with the `next_token` loss and the chat protocol's
assistant-only mask: conversations are rendered by `lmjax.chat`, packed whole, and the model learns only
the tokens the assistant says (never the user's, the system's or a tool's output).
"""
import json

from lmjax import losses
from lmjax.data.chat_pipeline import make_chat_dataset, render_examples
from lmjax.data.documents import is_validation
from lmjax.data.posttrain.mixture import mix
from lmjax.data.posttrain.sources import load_sources
from lmjax.sharding import process_rows
from lmjax.train import lora
from lmjax.train.base_run import carry_tokenizer, load_base_run, start_state
from lmjax.train.loop import StageData, train
from lmjax.train.setup import build_train_setup, tokenizer_path


def mixed_conversations(sft_config) -> list[list[dict]]:
  """The configured sources mixed by weight (every conversation once when num_conversations is 0)."""
  sources = load_sources(sft_config)
  if not sft_config.num_conversations:
    return [c for name in sorted(sources) for c in sources[name]]
  return mix(sources, {k: v for k, v in sft_config.mixture.items() if k in sources},
             sft_config.num_conversations, seed=sft_config.seed)


def run(config, workdir: str) -> dict:
  """Fine-tunes the latest checkpoint of config.sft.base_workdir on the configured conversations (all its
  weights, or LoRA adapters on it with model.lora.rank > 0)."""
  base_dir = config.sft.base_workdir
  config = lora.with_base(config, base_dir)
  base_config, base = load_base_run(config, base_dir, "sft.base_workdir")
  carry_tokenizer(base_config, base_dir, workdir)
  tok = base.tokenizer
  conversations = mixed_conversations(config.sft)
  t = config.train
  split = [is_validation(json.dumps(c, sort_keys=True), config.sft.val_fraction) for c in conversations]
  train_examples = render_examples([c for c, v in zip(conversations, split) if not v], tok, t.seq_len)
  val_examples = render_examples([c for c, v in zip(conversations, split) if v], tok, t.seq_len)
  setup = build_train_setup(config, tokenizer_path(base_config, base_dir))
  rows = process_rows(setup.batch_sharding, t.batch_size)  # this process's rows of every global batch
  dataset = lambda examples, **kw: make_chat_dataset(examples, seq_len=t.seq_len, batch_size=t.batch_size,
                                                     rows=rows, **kw)
  val = dataset(val_examples, seed=0, shuffle=False, repeat=False) if val_examples else []
  data = StageData(dataset(train_examples, seed=t.seed, streams=config.data.streams),
                   list(val)[: config.eval.batches])

  print(f"sft: {len(train_examples)} training and {len(val_examples)} validation conversations, "
        f"from {base_dir} (step {base.step}); training {setup.trainable_count:,} of {setup.param_count:,} parameters")
  return train(config, workdir, setup, data, loss_fn=losses.next_token, loss_name="next_token",
               init_state=lambda: start_state(setup, base.params), frozen=setup.frozen(base.params))
