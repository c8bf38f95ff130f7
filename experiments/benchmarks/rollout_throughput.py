"""python experiments/benchmarks/rollout_throughput.py --sft SFT_RUN [--slots 64] [--problems 32 --group 8]
    [--levels 1 2 3 4]

RL-style rollouts of a trained chat model through lmjax's inference engine, with continuous batching and as a
plain static batch of the same engine (continuous batching off: a batch of prompts in, every reply finished
— tool rounds included — before the next batch), in one run on the same prompts and seeds: replies/s,
generated tokens/s, the ratio, and the accuracy of both sets of replies (pass@1 over the problems ×
samples, with its standard error), which must agree within sampling error. Also `lmjax chat`'s latency to
the first token (one slot: prefill and one decode step) and the programs each mode compiled.

Each mode also reports its decode steps (one token for every slot). A step costs the same in both modes, so
the static batch's steps over continuous batching's are what batching gains on decode for these replies: a
static batch runs each segment as long as its batch's longest reply, so the gain grows with how much the
replies' lengths vary.

The settings are the CPU speedrun's RL stage (configs/speedrun_cpu.py: rollout.max_new_tokens,
max_reply_tokens, max_tool_calls, temperature; the calculator runs) on held-out level-1 problems; `--levels 1
2 3 4` mixes harder problems in (an equal share of each level: more steps and calculator calls, more varied
lengths). SFT_RUN is an SFT workdir such as the speedrun's (`runs/speedrun/chain.json` names it); without
--sft the benchmark looks there. Each mode is timed on its second pass over the same prompts and seeds: the
first compiles every program shape the second meets (a shorter warm-up left prefill widths to compile inside
the timed pass).
"""
import argparse
import json
import os
import pathlib
import platform
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from configs import speedrun_cpu  # noqa: E402
from lmjax.chain.stages import stage_config  # noqa: E402
from lmjax.config import load_saved_config  # noqa: E402
from lmjax.infer import slots  # noqa: E402
from lmjax.infer.chat_session import chat_reply  # noqa: E402
from lmjax.infer.engine import cache_length, rollout_engine  # noqa: E402
from lmjax.infer.load import load_model  # noqa: E402
from lmjax.infer.sampler import SamplingParams  # noqa: E402
from lmjax.infer.tools import make_tools  # noqa: E402
from lmjax.rl import math_task  # noqa: E402


def machine() -> str:
  model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
  return f"{model}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, Python {platform.python_version()}"


def speedrun_sft() -> str:
  chain = REPO / "runs" / "speedrun" / "chain.json"
  if not chain.exists():
    raise SystemExit("no --sft given and no runs/speedrun/chain.json: run the speedrun (README quickstart) or "
                     "pass --sft SFT_WORKDIR")
  return next(record["dir"] for record in json.loads(chain.read_text())["stages"] if record["stage"] == "sft")


def rollouts(loaded, prompts, seeds, config, slot_count: int, continuous: bool) -> dict:
  """One pass over the prompts; its replies, wall time, generated tokens and decode steps."""
  g = config.rollout
  engine = rollout_engine(loaded.graphdef, loaded.params, loaded.tokenizer, g, tools=make_tools(),
                          temperature=g.temperature, slots=slot_count, continuous=continuous,
                          length=cache_length(max(map(len, prompts)), g.max_reply_tokens))
  start = time.perf_counter()
  replies = engine.generate(prompts, seeds)
  seconds = time.perf_counter() - start
  return {"replies": replies, "seconds": seconds, "generated": sum(sum(r.generated) for r in replies),
          "tool_calls": sum(r.tool_calls for r in replies), "prefills": engine.prefills,
          "decode_steps": engine.decode_steps}


def _at_levels(math_config, levels: list[int]):
  """config.math with other problem levels, its held-out problems worded as RL's training ones (the
  rollouts RL times)."""
  copied = math_config.copy_and_resolve_references()
  copied.levels, copied.heldout_wordings = tuple(levels), copied.wordings
  return copied


def accuracy(replies, problems, tokenizer) -> tuple[float, float]:
  """(pass@1, its standard error) of the replies, consecutive groups answering each problem."""
  correct = math_task.rewards(replies, problems, tokenizer)
  return float(correct.mean()), float(correct.std(ddof=1) / np.sqrt(len(correct)))


def first_token_ms(loaded, config, repeats: int = 5) -> float:
  """Median milliseconds of a one-token chat reply: the latency `lmjax chat` shows before its first token."""
  sampling = SamplingParams(max_new_tokens=1, temperature=config.rollout.temperature)
  messages = [{"role": "user", "content": "What is 12 plus 30?"}]
  chat_reply(loaded, messages, sampling=sampling, max_reply_tokens=1)  # compiles
  times = []
  for seed in range(repeats):
    start = time.perf_counter()
    chat_reply(loaded, messages, sampling=SamplingParams(max_new_tokens=1, seed=seed), max_reply_tokens=1)
    times.append(time.perf_counter() - start)
  return 1e3 * float(np.median(times))


def main():
  parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
  parser.add_argument("--sft", help="the SFT workdir to generate with (default: the speedrun's)")
  parser.add_argument("--slots", type=int, default=64, help="engine slots, the same in both modes")
  parser.add_argument("--problems", type=int, default=32)
  parser.add_argument("--group", type=int, default=8, help="replies per problem")
  parser.add_argument("--levels", type=int, nargs="+", help="problem levels, an equal share of each (default "
                      "the RL stage's math.levels)")
  parser.add_argument("--json", help="also write the figures here")
  args = parser.parse_args()
  sft = args.sft or speedrun_sft()
  config = stage_config(speedrun_cpu.get_config(), "rl")
  loaded = load_model(load_saved_config(sft), sft)
  levels = args.levels or list(config.math.levels)
  problems = math_task.make_math_task(_at_levels(config.math, levels), heldout_problems=args.problems).heldout
  prompts = [math_task.prompt_ids(p, loaded.tokenizer) for p in problems for _ in range(args.group)]
  seeds = list(range(len(prompts)))
  g = config.rollout
  print(f"machine: {machine()}\nmodel: {sft} (step {loaded.step}); {args.problems} held-out problems x "
        f"{args.group} replies (levels {levels}), {args.slots} slots, segments of {g.max_new_tokens}, replies of "
        f"at most {g.max_reply_tokens} tokens, {g.max_tool_calls} tool calls, temperature {g.temperature}")
  results = {}
  for name, continuous in (("static", False), ("continuous", True)):
    rollouts(loaded, prompts, seeds, config, args.slots, continuous)  # compiles every shape the timed pass meets
    run = rollouts(loaded, prompts, seeds, config, args.slots, continuous)
    pass1, stderr = accuracy(run["replies"], problems, loaded.tokenizer)
    results[name] = {"replies_per_s": len(prompts) / run["seconds"], "tokens_per_s": run["generated"] / run["seconds"],
                     "seconds": run["seconds"], "pass1": pass1, "pass1_stderr": stderr,
                     "tool_calls": run["tool_calls"], "prefills": run["prefills"],
                     "decode_steps": run["decode_steps"]}
    r = results[name]
    print(f"{name:>10}: {r['replies_per_s']:6.2f} replies/s, {r['tokens_per_s']:7.1f} generated tokens/s "
          f"({r['seconds']:.1f} s; {r['decode_steps']} decode steps; {r['tool_calls']} tool calls; {r['prefills']} "
          f"prefills); pass@1 {pass1:.3f} ± {stderr:.3f}", flush=True)
  ratio = results["continuous"]["replies_per_s"] / results["static"]["replies_per_s"]
  gap = abs(results["continuous"]["pass1"] - results["static"]["pass1"])
  spread = np.hypot(results["continuous"]["pass1_stderr"], results["static"]["pass1_stderr"])
  steps = results["static"]["decode_steps"] / results["continuous"]["decode_steps"]
  lengths = [len(r.reply) for r in run["replies"]]
  print(f"continuous / static: {ratio:.2f}x replies/s; pass@1 differs by {gap:.3f} ({gap / max(spread, 1e-9):.1f} "
        f"standard errors)")
  print(f"decode steps, static / continuous: {steps:.2f}x (what batching can gain on these replies: reply "
        f"lengths {np.mean(lengths):.1f} on average, {np.percentile(lengths, 90):.0f} at the 90th percentile, "
        f"{max(lengths)} at most)")
  programs = {"decode": slots.decode._cache_size(), "prefill": slots.prefill._cache_size(),
              "copy_prefix": slots.copy_prefix._cache_size(),
              "init_state": slots.init_state._cache_size()}
  print(f"programs compiled in this process (both modes, every slot count): {programs}")
  latency = first_token_ms(loaded, config)
  print(f"lmjax chat, time to the first token: {latency:.0f} ms (one slot; prefill + one decode step)")
  results |= {"ratio": ratio, "decode_step_ratio": steps, "programs": programs, "chat_first_token_ms": latency,
              "machine": machine()}
  if args.json:
    pathlib.Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
  main()
