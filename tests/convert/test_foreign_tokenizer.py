"""A foreign (Llama-style) sentencepiece model loads as an lmjax Tokenizer: encode, decode and padding work,
and the chat protocol refuses it with a clear error instead of a bare KeyError."""
import pathlib

import pytest

from lmjax.chat import ChatTokens
from lmjax.config import UserError
from lmjax.data.tokenizer import Tokenizer

LLAMA_TOKENIZER = pathlib.Path(__file__).parent / "data" / "mistral_tokenizer.model.v1"


@pytest.fixture(scope="module")
def tok():
  return Tokenizer(str(LLAMA_TOKENIZER))


def test_llama_tokenizer_has_its_own_special_ids_and_a_valid_pad_id(tok):
  assert tok.vocab_size == 32_000
  assert (tok.sp.id_to_piece(tok.bos_id), tok.sp.id_to_piece(tok.eos_id)) == ("<s>", "</s>")
  assert tok.sp.pad_id() == -1 and tok.pad_id == tok.sp.unk_id() == 0  # padding needs a real row


def test_decode_keeps_the_space_the_llama_encoder_prepends(tok):
  text = "Grüße aus Köln, 東京 🎉\n\tindented  twice"
  ids = tok.encode(text)
  assert tok.decode(ids) == " " + text  # sentencepiece itself would drop it: decode(encode(x)) == x
  assert tok.sp.decode(ids) == text


def test_a_continuation_decoded_alone_keeps_its_leading_space(tok):
  ids = tok.encode("Once upon a time there was")
  assert "".join(tok.decode([i]) for i in ids) == tok.decode(ids) == " Once upon a time there was"
  assert tok.decode(ids[:3]) + tok.decode(ids[3:]) == tok.decode(ids)


def test_decode_shows_bos_and_eos_and_drops_nothing_else(tok):
  ids = [tok.bos_id, *tok.encode("hi there"), tok.eos_id]
  assert tok.decode(ids) == "<s> hi there</s>"


def test_chat_protocol_names_the_missing_chat_token_and_the_fix(tok):
  with pytest.raises(KeyError) as raised:
    ChatTokens.from_tokenizer(tok)
  assert isinstance(raised.value, UserError)  # the CLI prints it without a traceback
  assert "'<|system_start|>' is not a special token" in str(raised.value)
  assert "lmjax tokenizer" in str(raised.value)
