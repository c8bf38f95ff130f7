"""User mistakes end with one line naming the field, file (and line or shard) or argument, and exit code 2:
no traceback unless `lmjax --debug`. Each case drives the CLI as a user would."""
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
from array_record.python.array_record_module import ArrayRecordWriter
from flax import nnx

from lmjax import cli
from lmjax.config import UserError
from lmjax.data import shards
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer import load, sample
from lmjax.infer.chat_session import run_chat
from lmjax.infer.load import LoadedModel
from lmjax.model import ModelConfig, Transformer
from tests.conftest import REPO, tiny_config

QUICKSTART = str(REPO / "configs" / "quickstart.py")


def fails(argv: list[str], capsys) -> str:
  """The one line `lmjax ARGV` prints as it exits with code 2."""
  with pytest.raises(SystemExit) as exited:
    cli.main(argv)
  err = capsys.readouterr().err
  assert exited.value.code == 2 and "Traceback" not in err, err
  return err


def tiny_config_file(folder: pathlib.Path, tokens_workdir: pathlib.Path, tokens_dir: pathlib.Path) -> str:
  """A config file: the tests' tiny model with the session's tokenizer, reading tokens from `tokens_dir`."""
  path = folder / "tiny.py"
  path.write_text("from tests.conftest import tiny_config\n\ndef get_config():\n  config = tiny_config()\n"
                  f"  config.data.tokenizer = {str(tokens_workdir / 'tokenizer.model')!r}\n"
                  f"  config.data.tokens_dir = {str(tokens_dir)!r}\n  return config\n")
  return str(path)


@pytest.mark.parametrize("override, field", [("train.seq_len=0", "config.train.seq_len=0"),
                                             ("train.batch_size=0", "config.train.batch_size=0"),
                                             ("optim.lr=-0.001", "config.optim.lr=-0.001")])
def test_a_non_positive_size_or_learning_rate_names_the_field(override, field, tmp_path, capsys):
  err = fails(["pretrain", "--config", QUICKSTART, "--workdir", str(tmp_path), f"--config.{override}"], capsys)
  assert field in err and "must be positive" in err


def test_the_tokenizer_on_an_empty_corpus_or_one_giant_line_names_the_documents(tmp_path, capsys):
  (tmp_path / "empty.jsonl").write_text("")
  (tmp_path / "giant.txt").write_text("word " * 5000)
  argv = ["tokenizer", "--config", QUICKSTART, "--workdir", str(tmp_path / "run"), "--config.data.val_fraction=0"]
  err = fails(argv + [f"--config.data.documents={tmp_path / 'empty.jsonl'}"], capsys)
  assert "empty.jsonl" in err and "holds no text" in err
  err = fails(argv + [f"--config.data.documents={tmp_path / 'giant.txt'}"], capsys)
  assert "giant.txt" in err and "config.tokenizer.max_sentence_length=16,384" in err


def test_tokenize_of_an_empty_corpus_fails_and_leaves_no_shards(tokens_workdir, tmp_path, capsys):
  (tmp_path / "empty.jsonl").write_text("\n")
  config = tiny_config_file(tmp_path, tokens_workdir, tmp_path / "tokens")
  err = fails(["tokenize", "--config", config, "--workdir", str(tmp_path), "--config.data.workers=1",
               f"--config.data.documents={tmp_path / 'empty.jsonl'}"], capsys)
  assert "config.data.documents" in err and not list((tmp_path / "tokens").rglob("*.array_record*"))


def test_pretraining_on_shards_without_documents_names_the_folder(tokens_workdir, tmp_path, capsys):
  for split in shards.SPLITS:
    (tmp_path / "tokens" / split).mkdir(parents=True)
    ArrayRecordWriter(str(tmp_path / "tokens" / split / "00000.array_record"), "group_size:1").close()
  config = tiny_config_file(tmp_path, tokens_workdir, tmp_path / "tokens")
  err = fails(["pretrain", "--config", config, "--workdir", str(tmp_path / "run")], capsys)
  assert f"{tmp_path / 'tokens' / 'train'} hold no documents" in err


def test_a_truncated_token_shard_is_named(tokens_workdir, tmp_path, capsys):
  shutil.copytree(tokens_workdir / "tokens", tmp_path / "tokens")
  shard = tmp_path / "tokens" / "train" / "00001.array_record"
  shard.write_bytes(shard.read_bytes()[:shard.stat().st_size // 2])
  config = tiny_config_file(tmp_path, tokens_workdir, tmp_path / "tokens")
  err = fails(["pretrain", "--config", config, "--workdir", str(tmp_path / "run")], capsys)
  assert f"token shard {shard} cannot be read" in err and "rerun `lmjax tokenize`" in err


def test_a_corrupted_record_names_its_shard_and_index(tmp_path):
  path = str(tmp_path / "00000.array_record")
  writer = ArrayRecordWriter(path, "group_size:1")
  for n in range(200):
    writer.write(shards.encode_record(list(range(n + 50))))
  writer.close()
  data = pathlib.Path(path).read_bytes()
  pathlib.Path(path).write_bytes(data[:60_000] + bytes(200) + data[60_200:])
  source = shards.ShardSource([path])
  with pytest.raises(UserError, match=f"token shard {path} is corrupted at record \\d+ "):
    for i in range(len(source)):
      source[i]


def test_an_empty_prompts_file_or_a_bad_jsonl_line_is_named(tmp_path, capsys):
  (tmp_path / "blank.txt").write_text("\n  \n")
  (tmp_path / "prompts.jsonl").write_text('{"prompt": "fine"}\n{"text": "no prompt"}\n')
  argv = ["sample", "--workdir", str(tmp_path), "--prompts"]
  assert f"--prompts {tmp_path / 'blank.txt'} holds no prompts" in fails(argv + [str(tmp_path / "blank.txt")], capsys)
  assert f"{tmp_path / 'prompts.jsonl'}:2: not a" in fails(argv + [str(tmp_path / "prompts.jsonl")], capsys)


def test_an_empty_prompt_samples_from_bos_alone(tokens_workdir, tmp_path, monkeypatch, capsys):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  cfg = ModelConfig(vocab_size=1024, num_layers=1, embed_dim=32, num_heads=2, num_kv_heads=1, mlp_dim=64)
  graphdef, params = nnx.split(Transformer(cfg, rngs=nnx.Rngs(0)))
  monkeypatch.setattr(sample, "load_model", lambda config, workdir: LoadedModel(graphdef, params, tok, 0, 64))
  cli.main(["sample", "--workdir", str(tmp_path), "--config", QUICKSTART, "--prompt", "",
            "--config.sample.max_new_tokens=4"])
  assert capsys.readouterr().out.strip()


def test_chat_search_documents_with_bad_utf8_or_no_match_are_named(tmp_path, capsys):
  (tmp_path / "docs.jsonl").write_bytes(b'{"text": "fine"}\n{"text": "caf\xe9"}\n')
  argv = ["chat", "--workdir", str(tmp_path), "--config", QUICKSTART, "--search"]
  err = fails(argv + [str(tmp_path / "docs.jsonl")], capsys)
  assert f"{tmp_path / 'docs.jsonl'}:2: not UTF-8 text (byte 0xe9" in err
  err = fails(argv + [str(tmp_path / "nothing*.jsonl")], capsys)
  assert "nothing*.jsonl" in err and "--search" in err and "config.data.documents" not in err


NOT_UTF8 = b"fine\ncaf\xe9 au lait\n"  # latin-1's e-acute on line 2, column 4


def _not_utf8_case(case: str, tmp_path: pathlib.Path) -> tuple[pathlib.Path, list[str]]:
  """(the file that is not UTF-8, the argv of a command that reads it)."""
  if case == "sample_prompts_file":
    bad = tmp_path / "prompts.txt"
    argv = ["sample", "--workdir", str(tmp_path), "--prompts", str(bad)]
  elif case == "txt_document":
    bad = tmp_path / "doc.txt"
    argv = ["tokenizer", "--config", QUICKSTART, "--workdir", str(tmp_path / "run"),
            f"--config.data.documents={bad}"]
  elif case == "hf_config_json":
    bad = tmp_path / "hf" / "config.json"
    argv = ["convert", "--from-hf", str(bad.parent), "--workdir", str(tmp_path / "run")]
  else:  # a URL blocklist of `lmjax clean`, read inside its filter task
    bad = tmp_path / "domains.txt"
    (tmp_path / "in.jsonl").write_text('{"text": "some words", "url": "http://a.org/x"}\n')
    argv = ["clean", "--input", str(tmp_path / "in.jsonl"), "--workdir", str(tmp_path / "clean"),
            f"--config.url_filter.extra_domain_files=('{bad}',)"]
  bad.parent.mkdir(parents=True, exist_ok=True)
  bad.write_bytes(NOT_UTF8)
  return bad, argv


@pytest.mark.parametrize("case", ["sample_prompts_file", "txt_document", "hf_config_json", "clean_url_blocklist"])
def test_a_file_that_is_not_utf8_is_named_with_its_line_and_the_fix(case, tmp_path, capsys):
  bad, argv = _not_utf8_case(case, tmp_path)
  err = fails(argv, capsys)
  assert f"{bad}:2: not UTF-8 text (byte 0xe9 at column 4)" in err and "re-encode the file as UTF-8" in err


def test_command_line_text_that_is_not_utf8_is_named(tmp_path, capsys):
  text = b"caf\xe9".decode("utf-8", "surrogateescape")  # what Python makes of such argv bytes
  err = fails(["tokens", "--tokenizer", str(tmp_path / "tok.model"), text], capsys)
  assert "TEXT is not UTF-8 text (byte 0xe9 at character 4)" in err
  err = fails(["sample", "--workdir", str(tmp_path), "--prompt", text], capsys)
  assert "the prompt is not UTF-8 text" in err


def test_chat_says_a_typed_line_that_is_not_utf8_and_goes_on(tokens_workdir, tmp_path, monkeypatch, capsys):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  cfg = ModelConfig(vocab_size=1024, num_layers=1, embed_dim=32, num_heads=2, num_kv_heads=1, mlp_dim=64)
  graphdef, params = nnx.split(Transformer(cfg, rngs=nnx.Rngs(0)))
  monkeypatch.setattr(load, "load_model", lambda config, workdir: LoadedModel(graphdef, params, tok, 0, 64))
  lines = iter([b"caf\xe9".decode("utf-8", "surrogateescape"), "hello", ""])
  config = tiny_config()
  config.sample.max_new_tokens = 4
  messages = run_chat(config, str(tmp_path), system=None, search=None, read_line=lambda _: next(lines))
  assert "that line is not UTF-8 text" in capsys.readouterr().out
  assert [m["role"] for m in messages] == ["user", "assistant"] and messages[0]["content"] == "hello"


def test_the_command_line_exits_2_without_a_traceback_unless_debug(tmp_path):
  argv = [sys.executable, "-m", "lmjax.cli", "pretrain", "--config", QUICKSTART, "--workdir", str(tmp_path),
          "--config.train.batch_size=0"]
  env = dict(os.environ, PYTHONPATH=str(REPO), JAX_PLATFORMS="cpu")
  plain = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
  assert plain.returncode == 2 and "config.train.batch_size=0" in plain.stderr
  assert "Traceback" not in plain.stderr and len(plain.stderr.strip().splitlines()) == 1
  debug = subprocess.run(argv[:3] + ["--debug"] + argv[3:], env=env, capture_output=True, text=True, timeout=120)
  assert debug.returncode == 1 and "Traceback" in debug.stderr
