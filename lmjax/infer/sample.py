"""`lmjax sample`: a continuation of a prompt from the latest checkpoint (KV-cache sampler).

    lmjax sample --workdir runs/quickstart --prompt "The meaning of life"
"""
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer.sampler import SamplingParams, generate
from lmjax.train import checkpoint
from lmjax.train.setup import build_train_setup, tokenizer_path


def run(config, workdir: str, prompt: str) -> str:
  """Restores the latest checkpoint in WORKDIR and prints the prompt's continuation."""
  setup = build_train_setup(config, tokenizer_path(config, workdir))
  tok = Tokenizer(tokenizer_path(config, workdir))
  manager = checkpoint.make_manager(f"{workdir}/checkpoints", keep=config.checkpoint.keep)
  if manager.latest_step() is None:
    raise FileNotFoundError(f"no checkpoint in {workdir}/checkpoints; run `lmjax pretrain` first")
  state, _ = checkpoint.restore(manager, manager.latest_step(), setup.abstract_state, setup.shardings)
  s = config.sample
  sampling = SamplingParams(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_k=s.top_k,
                            top_p=s.top_p, seed=s.seed, stop_ids=(tok.eos_id,))
  [new_ids] = generate(setup.graphdef, state.params, [[tok.bos_id, *tok.encode(prompt)]], sampling)
  text = prompt + tok.decode(new_ids)
  print(text)
  return text
