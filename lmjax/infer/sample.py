"""`lmjax sample`: continuations from the latest checkpoint (KV-cache sampler), one prompt or a file of them.

    lmjax sample --workdir runs/quickstart --prompt "The meaning of life"
    lmjax sample --workdir runs/quickstart --prompts prompts.txt --output samples.jsonl
"""
import json
import sys

from lmjax import fs
from lmjax.config import UserError
from lmjax.data.documents import read_jsonl, read_lines
from lmjax.infer.context import cut_notice
from lmjax.infer.engine import continuations
from lmjax.infer.load import load_model
from lmjax.infer.sampler import SamplingParams


def sampling_params(sample_config, stop_ids: tuple[int, ...]) -> SamplingParams:
  s = sample_config
  return SamplingParams(max_new_tokens=s.max_new_tokens, temperature=s.temperature, top_k=s.top_k,
                        top_p=s.top_p, seed=s.seed, stop_ids=stop_ids)


def read_prompts(path: str) -> list[str]:
  """Prompts from a text file (one per non-blank line) or JSONL (a "prompt" string per line); an error
  naming the file (and line) if it holds none or a bad one."""
  if path.endswith(".jsonl"):
    prompts = list(read_jsonl([path], _prompt, 'a {"prompt": string} record'))
  else:
    prompts = [line.rstrip("\n") for _, line in read_lines(path) if line.strip()]
  if not prompts:
    raise UserError(f"--prompts {path} holds no prompts; write one per line (or JSONL with a \"prompt\" field)")
  return prompts


def _prompt(record: dict, where: str) -> str:
  if not isinstance(record["prompt"], str):
    raise TypeError("'prompt' is not a string")
  return record["prompt"]


def run(config, workdir: str, prompts: list[str], output: str | None = None) -> list[str]:
  """Samples a continuation of each prompt (all in one batch of engine slots); prints them, or writes JSONL to
  `output`. A prompt longer than the model's context keeps its end, with a notice on stderr."""
  loaded = load_model(config, workdir)
  tok = loaded.tokenizer
  ids = [[tok.bos_id, *tok.encode(p)] for p in prompts]
  replies = continuations(loaded.graphdef, loaded.params, ids, sampling_params(config.sample, (tok.eos_id,)),
                          context=loaded.context)
  for n, reply in enumerate(replies):
    if reply.dropped:
      print(cut_notice(reply.dropped, loaded.context, f"prompt {n + 1}"), file=sys.stderr)
  new_ids = [list(reply.reply) for reply in replies]
  texts = [tok.decode([i for i in row if i != tok.eos_id]) for row in new_ids]
  if output:
    with fs.open(output, "w") as f:
      for prompt, text, row in zip(prompts, texts, new_ids):
        f.write(json.dumps({"prompt": prompt, "completion": text, "tokens": len(row), "step": loaded.step}) + "\n")
  else:
    for prompt, text in zip(prompts, texts):
      print(prompt + text)
  return texts
