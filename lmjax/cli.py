"""`lmjax <command>`: parse flags and the config, then call that stage's `run`. Nothing else lives here.

    lmjax tokenizer --config configs/quickstart.py --workdir runs/quickstart
    lmjax tokenize  --config configs/quickstart.py --workdir runs/quickstart
    lmjax pretrain  --config configs/quickstart.py --workdir runs/quickstart [--config.optim.lr=1e-3 ...]
                    [--coordinator-address HOST:PORT --num-processes N --process-id I | --distributed-auto]
    lmjax sft       --config configs/quickstart.py --workdir runs/sft --config.sft.base_workdir=runs/quickstart
    lmjax rm        --config configs/quickstart.py --workdir runs/rm --config.rm.base_workdir=runs/sft
    lmjax dpo       --config configs/dpo_quickstart.py --workdir runs/dpo --config.dpo.base_workdir=runs/sft
    lmjax rl        --config configs/rl_quickstart.py --workdir runs/rl --config.rl.base_workdir=runs/sft
    lmjax probe     --config configs/quickstart.py --workdir runs/probe --config.probe.model_workdir=runs/sft
    lmjax eval      --config configs/quickstart.py --workdir runs/eval --config.eval.model_workdir=runs/sft
                    [--harness hellaswag,arc_easy [--harness-include DIR]]   (lm-evaluation-harness tasks)
    lmjax sample    --workdir runs/quickstart --prompt "Once upon a time"
    lmjax chat      --workdir runs/sft --system "You are a helpful assistant." --search 'docs/*.jsonl.gz'
    lmjax serve     --workdir runs/sft [--host 127.0.0.1] [--port 8000] [--search 'docs/*.jsonl.gz']
    lmjax tokens    --workdir runs/quickstart "How does text become tokens?"
    lmjax next      --workdir runs/quickstart "The meaning of life is" --continuation " to love"
    lmjax clean     --input 'raw/*.warc.gz' --workdir runs/web [--config configs/clean.py]
    lmjax convert   --from-hf path/to/llama --workdir runs/llama   (or --to-hf --workdir RUN --out DIR)
    lmjax run       --config configs/speedrun_cpu.py --workdir runs/speedrun [--dry-run] [--until sft]
    lmjax report    runs/speedrun [runs/other]          (a sweep's folder: its table over seeds, recomputed)
    lmjax sweep     experiments/ppo_clip.py --workdir runs/ppo_clip [--seeds 0 1 2] [--emit-commands]
    lmjax plan      --config configs/llama3_8b.py [--json] [--mesh data=1,fsdp=256,tensor=1 --devices 256 --chip v5p]

Any config field can be overridden with `--config.FIELD=VALUE`; unknown fields are errors. Exit status: 0 done;
2 a mistake the user can fix (a config field, a missing or malformed file, a bad argument), printed as one line
naming it (`lmjax --debug <command>` shows its traceback instead); 75 stopped by SIGTERM/SIGINT after saving a
checkpoint (rerun the same command to continue); 1 any other error.
"""
import argparse
import contextlib
import importlib
import os
import sys

from lmjax import fs, lock
from lmjax.allocator import keep_freed_memory
from lmjax.backend import expected_platform
from lmjax.config import ConfigError, UserError, explicit_mesh_size, load_config, load_saved_config
from lmjax.train.preemption import EXIT_CODE as PREEMPTED_EXIT_CODE, Preempted

DEFAULT_CLEAN_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "configs", "clean.py")


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="lmjax", description=__doc__.split("\n")[0])
  parser.add_argument("--debug", action="store_true", help="show the traceback of a user error too")
  commands = parser.add_subparsers(dest="command", required=True)
  for name, help_text in [("tokenizer", "train the sentencepiece BPE tokenizer"),
                          ("tokenize", "documents -> token shards (ArrayRecord)"),
                          ("pretrain", "train with the next-token loss (resumes from WORKDIR)"),
                          ("sft", "fine-tune a pretrained run on conversations (assistant tokens only)"),
                          ("rm", "train a reward model on preference pairs (Bradley-Terry)"),
                          ("dpo", "train the policy on preference pairs directly (config.dpo.loss: dpo, ipo, "
                           "simpo or orpo)"),
                          ("probe", "ask a run questions with known answers; write \"I don't know\" data"),
                          ("rl", "reinforce correct answers to math problems (PPO / group-relative)"),
                          ("eval", "score a run: val loss/bpb, math pass@k, tools, abstention, multiple choice")]:
    command = commands.add_parser(name, help=help_text)
    command.add_argument("--config", required=True, help="a config file under configs/")
    command.add_argument("--workdir", required=True)
    if name in MULTIHOST_COMMANDS:
      _add_multihost_flags(command)
    if name == "eval":
      command.add_argument("--harness", metavar="TASK[,TASK...]", help="also run these lm-evaluation-harness "
                           "tasks (config.eval.harness_tasks); needs the harness extra (lm-eval)")
      command.add_argument("--harness-include", metavar="DIR", help="a folder of task YAMLs of your own "
                           "(config.eval.harness_include)")
  convert = commands.add_parser("convert", help="a HuggingFace checkpoint -> a run, or a run -> HF")
  direction = convert.add_mutually_exclusive_group(required=True)
  direction.add_argument("--from-hf", metavar="DIR", help="a HuggingFace Llama/Mistral/Qwen directory")
  direction.add_argument("--to-hf", action="store_true", help="export the run's latest checkpoint to --out")
  convert.add_argument("--workdir", required=True, help="the run to write (--from-hf) or read (--to-hf)")
  convert.add_argument("--out", help="with --to-hf: the HuggingFace directory to write")
  sample = commands.add_parser("sample", help="continue prompts from the latest checkpoint")
  sample.add_argument("--workdir", required=True)
  prompts = sample.add_mutually_exclusive_group(required=True)
  prompts.add_argument("--prompt", help="one prompt (\"\" samples from BOS alone)")
  prompts.add_argument("--prompts", help="a file of prompts: one per line, or JSONL with a 'prompt' field")
  sample.add_argument("--output", help="write JSONL here instead of printing")
  sample.add_argument("--config", help="defaults to the config the run saved in WORKDIR")
  chat = commands.add_parser("chat", help="talk to the latest checkpoint, with the calculator and search tools")
  chat.add_argument("--workdir", required=True)
  chat.add_argument("--system", help="a system message")
  chat.add_argument("--search", help="glob of JSONL documents for the search tool")
  chat.add_argument("--config", help="defaults to the config the run saved in WORKDIR")
  serve = commands.add_parser("serve", help="an OpenAI-compatible API and a web page (chat, tokens, next-token "
                              "distribution, inside the transformer) for the latest checkpoint")
  serve.add_argument("--workdir", required=True)
  serve.add_argument("--host", default="127.0.0.1", help="the address to bind (default 127.0.0.1: this machine "
                     "only; 0.0.0.0 opens the server to the network)")
  serve.add_argument("--port", type=int, default=8000)
  serve.add_argument("--search", help="glob of JSONL documents for the search tool")
  serve.add_argument("--config", help="defaults to the config the run saved in WORKDIR")
  tokens = commands.add_parser("tokens", help="show how text splits into tokens")
  tokens.add_argument("text")
  where = tokens.add_mutually_exclusive_group(required=True)
  where.add_argument("--workdir", help="a run whose tokenizer.model to use")
  where.add_argument("--tokenizer", help="a sentencepiece .model file")
  tokens.add_argument("--no-colour", action="store_true")
  next_token = commands.add_parser("next", help="the model's next-token distribution after a prompt")
  next_token.add_argument("prompt")
  next_token.add_argument("--workdir", required=True)
  next_token.add_argument("--continuation", help="also show the probability of each token of this text")
  next_token.add_argument("--top-k", type=int, default=10)
  next_token.add_argument("--config", help="defaults to the config the run saved in WORKDIR")
  clean = commands.add_parser("clean", help="FineWeb-style cleaning of raw web data")
  clean.add_argument("--input", required=True, help="glob of WARC/HTML/JSONL/parquet inputs")
  clean.add_argument("--workdir", required=True)
  clean.add_argument("--config", default=DEFAULT_CLEAN_CONFIG)
  clean.add_argument("--executor", choices=("local", "ray"), default="local")
  clean.add_argument("--ray-address", default=None)
  clean.add_argument("--workers", type=int, default=None)
  chain = commands.add_parser("run", help="the whole chain (clean ... rl, eval) with cached stages")
  chain.add_argument("--config", required=True)
  chain.add_argument("--workdir", required=True)
  chain.add_argument("--dry-run", action="store_true", help="only list which stages would run and which are cached")
  chain.add_argument("--until", metavar="STAGE", help="stop after this stage")
  chain.add_argument("--stage-root", help="where stage folders live (default WORKDIR/stages); share it to share stages")
  _add_multihost_flags(chain)
  report = commands.add_parser("report", help="write a chain run's report.md, compare several runs, or "
                                "recompute a sweep's sweep.md (a folder with sweep.json)")
  report.add_argument("workdirs", nargs="+")
  sweep = commands.add_parser("sweep", help="run every variant of an ablation file (once per seed) and compare "
                              "them: mean ± std over seeds, paired differences with 95%% intervals")
  sweep.add_argument("ablation", help="a Python file defining BASE, VARIANTS and optionally SEEDS (experiments/)")
  sweep.add_argument("--workdir", required=True)
  sweep.add_argument("--seeds", type=int, nargs="+", metavar="SEED",
                     help="run each variant once per seed in WORKDIR/<variant>/seed<s>, with --config.train.seed "
                     "and --config.rl.seed set to it (default: the file's SEEDS; without either, one run each)")
  sweep.add_argument("--stage-root", help="where stage folders live (default WORKDIR/stages)")
  sweep.add_argument("--emit-commands", action="store_true",
                     help="print one `lmjax run` per variant and seed instead (and write WORKDIR/sweep.json)")
  plan = commands.add_parser("plan", help="compile the train and eval steps for the config's hardware (or N "
                             "devices of a chip): memory, FLOPs, fit")
  plan.add_argument("--config", required=True)
  plan.add_argument("--devices", type=int, help="simulated with fake CPU devices; default: the mesh's size, or "
                    "config.hardware.devices")
  plan.add_argument("--mesh", help="data=D,fsdp=F,tensor=T (overrides config.mesh)")
  plan.add_argument("--chip", help="v4 | v5e | v5p | v6e | a100 | h100 | h200 | b200 | cpu (HBM budget and peak "
                    "FLOP/s); default config.hardware.chip")
  plan.add_argument("--json", action="store_true", help="print one JSON object: chip, devices, and per step "
                    "the memory per device and whether it fits")
  plan.add_argument("--efficiency", type=float, default=0.5, help="assumed share of peak FLOP/s reached")
  return parser


MULTIHOST_COMMANDS = ("pretrain", "sft", "rm", "dpo", "run")


def _env_int(name: str) -> int | None:
  return int(os.environ[name]) if os.environ.get(name) else None


def _add_multihost_flags(command: argparse.ArgumentParser) -> None:
  """Flags that join this process to the other hosts of a run (run the same command on every host)."""
  group = command.add_argument_group("multi-host (every host runs the same command)")
  group.add_argument("--coordinator-address", metavar="HOST:PORT",
                     default=os.environ.get("LMJAX_COORDINATOR_ADDRESS"),
                     help="process 0's address (default: $LMJAX_COORDINATOR_ADDRESS)")
  group.add_argument("--num-processes", type=int, default=_env_int("LMJAX_NUM_PROCESSES"),
                     help="number of processes (default: $LMJAX_NUM_PROCESSES)")
  group.add_argument("--process-id", type=int, default=_env_int("LMJAX_PROCESS_ID"),
                     help="this process's id, 0 .. N-1 (default: $LMJAX_PROCESS_ID)")
  group.add_argument("--distributed-auto", action="store_true",
                     help="let JAX find the coordinator, count and id (TPU pods, SLURM, Open MPI)")


def split_overrides(argv: list[str]) -> tuple[list[str], list[str]]:
  """(other args, ['a.b=value', ...]) from argv; accepts `--config.a.b=value` and `--config.a.b value`."""
  rest, overrides, i = [], [], 0
  while i < len(argv):
    arg = argv[i]
    if arg.startswith("--config."):
      if "=" in arg:
        overrides.append(arg[len("--config."):])
      elif i + 1 < len(argv):
        overrides.append(f"{arg[len('--config.'):]}={argv[i + 1]}")
        i += 1
      else:
        raise ConfigError(f"{arg} has no value")
    else:
      rest.append(arg)
    i += 1
  return rest, overrides


STAGES = {"tokenizer": "lmjax.data.tokenizer", "tokenize": "lmjax.data.shards", "pretrain": "lmjax.train.pretrain",
          "sft": "lmjax.train.sft", "rm": "lmjax.train.reward_model", "dpo": "lmjax.train.dpo",
          "rl": "lmjax.train.rl", "probe": "lmjax.infer.probe", "eval": "lmjax.eval.stage"}


def _run_config(args, overrides):
  """--config if given, else the config the run in --workdir saved."""
  return load_config(args.config, overrides) if args.config else load_saved_config(args.workdir, overrides)


# The commands that write --workdir (and `convert --from-hf`). On one host the CLI takes the folder's lock
# (lmjax.lock) before anything runs; across hosts a refusal on process 0 alone would strand the others, so
# there the training stages' Workdir takes it, stopping every process together, and a chain's stage lock
# is left to the barriers between stages.
WRITERS = ("tokenizer", "tokenize", "pretrain", "sft", "rm", "dpo", "probe", "rl", "eval", "clean", "run", "sweep")


def _workdir_lock(args):
  """The lock of the folder this command writes, or nothing: a command that only reads (`run --dry-run`
  too, so a running chain can be looked at), a remote folder (an object store cannot lock) or a multi-host
  run."""
  writes = (args.command in WRITERS and not getattr(args, "dry_run", False)) or \
      (args.command == "convert" and args.from_hf)
  multihost = getattr(args, "distributed_auto", False) or (getattr(args, "num_processes", None) or 1) > 1
  if not writes or multihost or fs.is_remote(args.workdir):
    return contextlib.nullcontext()
  return lock.held(fs.normalize(args.workdir))


TEXT_ARGUMENTS = {"prompt": "the prompt", "text": "TEXT", "continuation": "--continuation", "system": "--system"}


def _check_text_arguments(args) -> None:
  """Text on the command line must be UTF-8 (Python keeps other bytes as surrogates the tokenizer refuses)."""
  from lmjax.data.documents import first_undecodable
  for name, shown in TEXT_ARGUMENTS.items():
    value = getattr(args, name, None)
    if isinstance(value, str) and (bad := first_undecodable(value)):
      raise UserError(f"{shown} is not UTF-8 text (byte 0x{bad[0]:02x} at character {bad[1] + 1}); set the "
                      "terminal's encoding to UTF-8, or pass it re-encoded (e.g. through `iconv -t utf-8`)")


def _dispatch(args, overrides: list[str]) -> None:
  """Runs the parsed command."""
  if args.command == "eval":  # its --harness flags are short names for two config fields
    flags = {"eval.harness_tasks": args.harness, "eval.harness_include": args.harness_include}
    overrides = overrides + [f"{field}={value}" for field, value in flags.items() if value is not None]
  if args.command in STAGES:
    importlib.import_module(STAGES[args.command]).run(load_config(args.config, overrides), args.workdir)
  elif args.command == "sample":
    from lmjax.infer import sample
    prompts = [args.prompt] if args.prompt is not None else sample.read_prompts(args.prompts)
    config = _run_config(args, overrides)
    sample.run(config, args.workdir, prompts, args.output)
  elif args.command == "chat":
    from lmjax.infer import chat_session
    config = _run_config(args, overrides)
    chat_session.run_chat(config, args.workdir, system=args.system, search=args.search)
  elif args.command == "serve":
    from lmjax.serve import server
    server.run(_run_config(args, overrides), args.workdir, host=args.host, port=args.port, search=args.search)
  elif args.command == "tokens":
    from lmjax.data.tokenizer import Tokenizer
    from lmjax.infer import load, viewers
    tok = Tokenizer(args.tokenizer) if args.tokenizer else load.run_tokenizer(args.workdir)
    print(viewers.coloured_tokens(tok, args.text, colour=not args.no_colour))
  elif args.command == "next":
    from lmjax.infer import viewers
    config = _run_config(args, overrides)
    viewers.run_next(config, args.workdir, args.prompt, top_k=args.top_k, continuation=args.continuation)
  elif args.command == "convert":
    from lmjax.convert import stage
    stage.run(args.workdir, from_hf_dir=args.from_hf, to_hf_dir=args.out if args.to_hf else None)
  elif args.command == "run":
    from lmjax.chain import runner
    runner.run(load_config(args.config, overrides), args.workdir, dry_run=args.dry_run, until=args.until,
               stage_root=args.stage_root)
  elif args.command == "report":
    from lmjax.chain import report, sweep
    if len(args.workdirs) == 1 and sweep.is_sweep(args.workdirs[0]):
      print(sweep.rewrite_summary(args.workdirs[0]), end="")
    elif len(args.workdirs) == 1:
      report.write(args.workdirs[0])
    else:
      print(report.compare(args.workdirs))
  elif args.command == "sweep":
    from lmjax.chain import sweep
    sweep.run(args.ablation, args.workdir, overrides, stage_root=args.stage_root, emit_commands=args.emit_commands,
              seeds=args.seeds)
  elif args.command == "plan":
    mesh = [f"mesh.{size}" for size in args.mesh.split(",")] if args.mesh else []  # data=1 -> mesh.data=1
    config = load_config(args.config, overrides + mesh)
    if "model" not in config:
      raise SystemExit(f"lmjax plan: {args.config} trains no model (no config.model section): nothing to plan")
    sizes = (config.mesh.data, config.mesh.fsdp, config.mesh.tensor)
    devices = args.devices or (config.hardware.devices if -1 in sizes else explicit_mesh_size(config.mesh))
    # Fake CPU devices must be requested before JAX starts its backend, so this command does it here.
    os.environ["XLA_FLAGS"] = " ".join(
        [os.environ.get("XLA_FLAGS", ""), f"--xla_force_host_platform_device_count={devices}"]).strip()
    os.environ["JAX_PLATFORMS"] = "cpu"
    from lmjax.train import plan
    plan.run(config, devices=devices, chip=args.chip or config.hardware.chip, efficiency=args.efficiency,
             json_output=args.json)
  elif args.command == "clean":
    from lmjax.data.web import stage
    stage.run(load_config(args.config, overrides), args.workdir, input_pattern=args.input,
              executor=args.executor, ray_address=args.ray_address, workers=args.workers)


USAGE_ERROR = 2  # argparse's exit code for a bad command line; config and input mistakes share it


def main(argv: list[str] | None = None) -> None:
  if expected_platform() == "cpu":
    keep_freed_memory()  # before JAX computes anything: see lmjax/allocator.py
  argv = sys.argv[1:] if argv is None else argv
  try:
    args_list, overrides = split_overrides(argv)
    args = _parser().parse_args(args_list)
    _check_text_arguments(args)
    if args.command in MULTIHOST_COMMANDS:
      from lmjax import distributed
      distributed.initialize(args.coordinator_address, args.num_processes, args.process_id,
                             auto=args.distributed_auto)
    with _workdir_lock(args):
      _dispatch(args, overrides)
  except Preempted as e:  # its checkpoint is saved: a distinct exit code says a rerun continues
    print(f"lmjax: {e}", file=sys.stderr, flush=True)
    sys.exit(PREEMPTED_EXIT_CODE)
  except (FileNotFoundError, UserError) as e:
    if argv[:1] == ["--debug"]:
      raise
    print(f"lmjax: {'config error: ' if isinstance(e, ConfigError) else ''}{e}", file=sys.stderr)
    sys.exit(USAGE_ERROR)


if __name__ == "__main__":
  main()
