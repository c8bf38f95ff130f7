"""`lmjax <command>`: parse flags and the config, then call that stage's `run`. Nothing else lives here.

    lmjax tokenizer --config configs/quickstart.py --workdir runs/quickstart
    lmjax tokenize  --config configs/quickstart.py --workdir runs/quickstart
    lmjax pretrain  --config configs/quickstart.py --workdir runs/quickstart [--config.optim.lr=1e-3 ...]
    lmjax sample    --workdir runs/quickstart --prompt "Once upon a time"
    lmjax clean     --input 'raw/*.warc.gz' --workdir runs/web [--config configs/clean.py]

Any config field can be overridden with `--config.FIELD=VALUE`; unknown fields are errors.
"""
import argparse
import importlib
import os
import sys

from lmjax.config import ConfigError, UserError, load_config, load_saved_config

DEFAULT_CLEAN_CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                    "configs", "clean.py")


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="lmjax", description=__doc__.split("\n")[0])
  commands = parser.add_subparsers(dest="command", required=True)
  for name, help_text in [("tokenizer", "train the sentencepiece BPE tokenizer"),
                          ("tokenize", "documents -> token shards (ArrayRecord)"),
                          ("pretrain", "train with the next-token loss (resumes from WORKDIR)")]:
    command = commands.add_parser(name, help=help_text)
    command.add_argument("--config", required=True, help="a config file under configs/")
    command.add_argument("--workdir", required=True)
  sample = commands.add_parser("sample", help="continue a prompt from the latest checkpoint")
  sample.add_argument("--workdir", required=True)
  sample.add_argument("--prompt", required=True)
  sample.add_argument("--config", help="defaults to the config the run saved in WORKDIR")
  clean = commands.add_parser("clean", help="FineWeb-style cleaning of raw web data")
  clean.add_argument("--input", required=True, help="glob of WARC/HTML/JSONL/parquet inputs")
  clean.add_argument("--workdir", required=True)
  clean.add_argument("--config", default=DEFAULT_CLEAN_CONFIG)
  clean.add_argument("--executor", choices=("local", "ray"), default="local")
  clean.add_argument("--ray-address", default=None)
  clean.add_argument("--workers", type=int, default=None)
  return parser


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


STAGES = {"tokenizer": "lmjax.data.tokenizer", "tokenize": "lmjax.data.shards", "pretrain": "lmjax.train.pretrain"}


def main(argv: list[str] | None = None) -> None:
  try:
    args_list, overrides = split_overrides(sys.argv[1:] if argv is None else argv)
    args = _parser().parse_args(args_list)
    if args.command in STAGES:
      importlib.import_module(STAGES[args.command]).run(load_config(args.config, overrides), args.workdir)
    elif args.command == "sample":
      from lmjax.infer import sample
      config = load_config(args.config, overrides) if args.config else load_saved_config(args.workdir, overrides)
      sample.run(config, args.workdir, args.prompt)
    elif args.command == "clean":
      from lmjax.data.web import stage
      stage.run(load_config(args.config, overrides), args.workdir, input_pattern=args.input,
                executor=args.executor, ray_address=args.ray_address, workers=args.workers)
  except ConfigError as e:
    sys.exit(f"lmjax: config error: {e}")
  except (FileNotFoundError, UserError) as e:
    sys.exit(f"lmjax: {e}")


if __name__ == "__main__":
  main()
