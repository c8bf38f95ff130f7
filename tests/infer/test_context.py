"""Bounded prompts: a prompt past the model's context keeps BOS and its end, says so, and nothing allocates
beyond the context; chat goes on after a 100 KB message, and sample and next answer one."""
import numpy as np
import pytest
from flax import nnx

from lmjax.data.tokenizer import Tokenizer
from lmjax.infer import context, engine, load, sample, slots, viewers
from lmjax.infer.chat_session import run_chat
from lmjax.infer.load import LoadedModel
from lmjax.model import ModelConfig, Transformer
from tests.conftest import tiny_config

CONTEXT = 64
HUGE = "the quick brown fox jumps over the lazy dog. " * 2300  # ~100 KB


def test_a_long_prompt_keeps_bos_and_its_end_and_the_reply_keeps_its_budget():
  ids = list(range(1000))
  fitted = context.fit_prompt(ids, CONTEXT, max_reply_tokens=16)
  assert fitted.ids == [0, *ids[-(CONTEXT - 16 - 1):]] and fitted.dropped == 1000 - (CONTEXT - 16)
  assert fitted.reply_tokens == 16


def test_a_short_prompt_is_whole_and_a_reply_budget_past_the_context_shrinks_to_fit():
  assert context.fit_prompt([1, 2, 3], CONTEXT, 512) == context.Fitted([1, 2, 3], CONTEXT - 3, 0)
  long = context.fit_prompt(list(range(500)), CONTEXT, 512)  # a prompt always keeps half the context
  assert len(long.ids) == long.reply_tokens == CONTEXT // 2 and long.ids[0] == 0


@pytest.fixture(scope="module")
def loaded(tokens_workdir):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  cfg = ModelConfig(vocab_size=1024, num_layers=1, embed_dim=32, num_heads=2, num_kv_heads=1, mlp_dim=64)
  graphdef, params = nnx.split(Transformer(cfg, rngs=nnx.Rngs(0)))
  return LoadedModel(graphdef, params, tok, 0, context=CONTEXT)


@pytest.fixture
def cache_lengths(loaded, monkeypatch):
  """Every KV-cache length the engine allocates while the test runs; load_model returns the tiny model."""
  lengths, real = [], slots.init_state
  def recording(graphdef, params, n, length):
    lengths.append(length)
    return real(graphdef, params, n, length)
  monkeypatch.setattr(slots, "init_state", recording)
  monkeypatch.setattr(load, "load_model", lambda config, workdir: loaded)
  monkeypatch.setattr(sample, "load_model", lambda config, workdir: loaded)
  return lengths


def bounded(lengths) -> bool:
  return lengths and max(lengths) <= engine.cache_length(CONTEXT, 0)


def test_chat_cuts_a_100kb_message_says_so_and_goes_on(cache_lengths, capsys, tmp_path):
  lines = iter([HUGE, "and now a short one", ""])
  config = tiny_config()
  config.sample.max_new_tokens = 8
  messages = run_chat(config, str(tmp_path), system="be brief", search=None, read_line=lambda _: next(lines))
  out = capsys.readouterr().out
  assert [m["role"] for m in messages] == ["system", "user", "assistant", "user", "assistant"]
  assert out.count("note: the conversation is longer than the model's 64-token context") == 2
  assert out.count("assistant> ") == 2 and bounded(cache_lengths)


def test_sample_cuts_a_100kb_prompt_says_so_and_continues_it(cache_lengths, capsys, tmp_path):
  config = tiny_config()
  config.sample.max_new_tokens = 8
  [text] = sample.run(config, str(tmp_path), [HUGE])
  captured = capsys.readouterr()
  assert "note: prompt 1 is longer than the model's 64-token context" in captured.err
  assert captured.out.startswith(HUGE) and text and bounded(cache_lengths)


def test_next_cuts_a_100kb_prompt_says_so_and_shows_the_distribution(loaded, cache_lengths, capsys, tmp_path):
  out = viewers.run_next(tiny_config(), str(tmp_path), HUGE, top_k=5, continuation=" over the dog")
  assert "note: the prompt is longer than the model's 64-token context" in capsys.readouterr().out
  assert len(out["distribution"]) == 5 and (tmp_path / "next_token_heatmap.png").exists()
  ids, dropped = viewers.prompt_ids(loaded.tokenizer, HUGE, CONTEXT, 0)
  assert len(ids) == CONTEXT and dropped > 0 and ids[0] == loaded.tokenizer.bos_id
  probs = np.array([row.probability for row in out["distribution"]])
  assert np.all(np.diff(probs) <= 0)


def test_next_refuses_a_continuation_that_cannot_fit(loaded):
  with pytest.raises(context.UserError, match="--continuation is .* tokens"):
    viewers.prompt_ids(loaded.tokenizer, "hi", CONTEXT, reserve=CONTEXT)
