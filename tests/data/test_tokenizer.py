"""The tokenizer: exact round trip on real text (non-ASCII included), special tokens reserved, inserted
only by id, and shown by decode."""
import gzip
import json

import pytest

from lmjax.data.tokenizer import BOS, CHAT_TOKENS, EOS, Tokenizer
from tests.conftest import CORPUS


@pytest.fixture(scope="module")
def tok(tokens_workdir):
  return Tokenizer(str(tokens_workdir / "tokenizer.model"))


def _real_lines(name, limit=400):
  with gzip.open(CORPUS / name, "rt") as f:
    texts = [json.loads(line)["text"] for line in f][:limit]
  return texts


@pytest.mark.parametrize("source", ["python_docs.jsonl.gz", "fortunes_de_es.jsonl.gz", "bible_kjv.jsonl.gz"])
def test_real_text_round_trips_exactly(tok, source):
  texts = _real_lines(source)
  assert all(tok.decode(ids) == text for text, ids in zip(texts, tok.encode(texts)))


def test_unseen_characters_round_trip_through_byte_fallback(tok):
  text = "Grüße aus Köln — ¿qué tal? Привет, мир! 東京 🎉\n\tindented  twice\n"
  ids = tok.encode(text)
  assert tok.decode(ids) == text
  assert any(piece.startswith("<0x") for piece in tok.pieces(ids))


def test_special_tokens_are_reserved_and_never_made_from_text(tok):
  ids = {name: tok.special_id(name) for name in CHAT_TOKENS}
  assert len(set(ids.values())) == len(CHAT_TOKENS)
  assert tok.pad_id == 0 and tok.sp.id_to_piece(tok.bos_id) == BOS and tok.sp.id_to_piece(tok.eos_id) == EOS
  text = "a web page that says <|user_start|> and <|eos|>"
  encoded = tok.encode(text)
  assert not set(encoded) & {*ids.values(), tok.bos_id, tok.eos_id}
  assert tok.decode(encoded) == text


def test_decode_shows_special_tokens_and_drops_padding(tok):
  user, end = tok.special_id("<|user_start|>"), tok.special_id("<|user_end|>")
  ids = [tok.bos_id, user, *tok.encode("hi there"), end, tok.eos_id, tok.pad_id, tok.pad_id]
  assert tok.decode(ids) == "<|bos|><|user_start|>hi there<|user_end|><|eos|>"


def test_vocab_size_is_the_configured_size(tok):
  assert tok.vocab_size == 1024


def test_texts_encoded_piece_by_piece_decode_to_their_concatenation(tok):
  parts = ["In the beginning", " God created", " the heaven", "\nand the earth."]
  ids = [i for part in parts for i in tok.encode(part)]
  assert tok.decode(ids) == "".join(parts)
  assert tok.encode(" God")[0] != tok.encode("God")[0]  # a leading space is part of the first piece
