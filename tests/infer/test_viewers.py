"""The viewers: tokens shown with ids and counts; the next-token table is the model's softmax, sorted;
continuation probabilities are those of each token given its prefix; both plots are written as PNG."""
import numpy as np
import pytest
from flax import nnx

from lmjax.data.tokenizer import Tokenizer
from lmjax.infer import viewers
from lmjax.model import ModelConfig, Transformer


@pytest.fixture(scope="module")
def tok(tokens_workdir):
  return Tokenizer(str(tokens_workdir / "tokenizer.model"))


@pytest.fixture(scope="module")
def model():
  cfg = ModelConfig(vocab_size=1024, num_layers=1, embed_dim=32, num_heads=2, num_kv_heads=1, mlp_dim=64)
  return Transformer(cfg, rngs=nnx.Rngs(0))


def test_tokens_view_lists_every_token_with_its_id_and_the_counts(tok):
  text = "Grüße, Botchan!"
  shown = viewers.coloured_tokens(tok, text, colour=False)
  ids = tok.encode(text)
  assert f"{len(ids)} tokens, {len(text.encode())} bytes" in shown
  assert all(f"{i:>6}  " in shown for i in ids)
  assert shown.split("\n")[0] == "".join(f"[{tok.decode([i])}]" for i in ids)
  assert "\033[" in viewers.coloured_tokens(tok, text)


def test_next_token_table_is_the_sorted_softmax(tok, model):
  rows = viewers.next_token_distribution(model, tok, "In the beginning", top_k=5)
  ids = np.array([[tok.bos_id, *tok.encode("In the beginning")]])
  logits = np.asarray(model(ids, np.arange(ids.shape[1])[None], np.ones_like(ids)))[0, -1]
  probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
  assert [r.token_id for r in rows] == np.argsort(-probs)[:5].tolist()
  np.testing.assert_allclose([r.probability for r in rows], np.sort(probs)[::-1][:5], rtol=1e-4)


def test_continuation_probability_is_each_tokens_probability_given_its_prefix(tok, model):
  rows = viewers.continuation_probabilities(model, tok, "In the", " beginning God")
  cont = tok.encode(" beginning God")
  assert [r.token_id for r in rows] == cont
  prefix = [tok.bos_id, *tok.encode("In the"), *cont[:1]]
  expected = {r.token_id: r.probability for r in viewers.next_token_distribution(
      model, tok, "In the" + tok.decode(cont[:1]), top_k=1024)}[cont[1]]
  assert len(prefix) > 2
  assert rows[1].probability == pytest.approx(expected, rel=1e-4)


def test_plots_are_written_as_png(tok, model, tmp_path):
  rows = viewers.next_token_distribution(model, tok, "Hello", top_k=4)
  for path in (viewers.plot_distribution(rows, "Hello", str(tmp_path / "bar.png")),
               viewers.plot_heatmap(rows, str(tmp_path / "heat.png"))):
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"
