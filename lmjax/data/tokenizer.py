"""The sentencepiece BPE tokenizer, with byte fallback and the chat protocol's special tokens reserved.

Special tokens are sentencepiece control symbols: ordinary text never encodes to them (a web page that
contains "<|user_start|>" stays plain text), code inserts them by id, and `decode` shows them.

`Tokenizer` also loads a foreign sentencepiece model (Llama's or Mistral's `tokenizer.model`, imported by
`lmjax convert`) for encoding, decoding and sampling; only the chat protocol needs lmjax's chat tokens.
"""
import collections
import dataclasses
import functools
import io
import json
import os
import time

import sentencepiece as spm
from sentencepiece import sentencepiece_model_pb2

from lmjax import fs
from lmjax.config import UserError
from lmjax.data.documents import is_validation, read_documents

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<|bos|>", "<|eos|>"
CHAT_TOKENS = (
    "<|system_start|>", "<|system_end|>",
    "<|user_start|>", "<|user_end|>",
    "<|assistant_start|>", "<|assistant_end|>",
    "<|tool_call_start|>", "<|tool_call_end|>",
    "<|tool_output_start|>", "<|tool_output_end|>",
)


def train_tokenizer(lines, model_path: str, *, vocab_size: int, tokenizer_config) -> None:
  """Trains BPE on an iterable of text lines and writes `model_path` (.model).

  Identity normalization, no whitespace folding and no dummy prefix, so decode(encode(text)) == text
  exactly and encode(a) + encode(b) decodes to a + b (texts can be tokenized piece by piece).
  """
  model = io.BytesIO()
  spm.SentencePieceTrainer.train(
      sentence_iterator=iter(lines), model_writer=model, vocab_size=vocab_size,
      model_type=tokenizer_config.model_type, byte_fallback=True,
      normalization_rule_name="identity", remove_extra_whitespaces=False, add_dummy_prefix=False,
      split_digits=True, allow_whitespace_only_pieces=True,
      character_coverage=tokenizer_config.character_coverage,
      input_sentence_size=tokenizer_config.input_sentence_size, shuffle_input_sentence=True,
      max_sentence_length=tokenizer_config.max_sentence_length, num_threads=tokenizer_config.num_threads,
      pad_id=0, pad_piece=PAD, unk_id=1, unk_piece=UNK, bos_id=2, bos_piece=BOS, eos_id=3, eos_piece=EOS,
      control_symbols=list(CHAT_TOKENS), minloglevel=2)
  with fs.open(model_path, "wb") as f:
    f.write(model.getvalue())


class MissingSpecialToken(UserError, KeyError):
  """A special token the tokenizer lacks, e.g. a chat token in an imported Llama tokenizer."""

  def __str__(self) -> str:
    return str(self.args[0])


@dataclasses.dataclass(frozen=True)
class Tokenizer:
  """A loaded sentencepiece model with the special-token ids as attributes."""
  path: str  # a local path, file:// or gs:// URL: the model is read as bytes, so it need not be local

  @functools.cached_property
  def sp(self) -> spm.SentencePieceProcessor:
    with fs.open(self.path, "rb") as f:
      return spm.SentencePieceProcessor(model_proto=f.read())

  @property
  def vocab_size(self) -> int:
    return self.sp.get_piece_size()

  @functools.cached_property
  def decoder(self) -> spm.SentencePieceProcessor:
    """`sp` without the dummy-prefix rule, so decoding never drops the first piece's leading space.

    Llama-style models prepend a space to every text they encode ("Hi" -> "▁Hi") and strip it from the
    start of every text they decode, so a continuation decoded alone would lose its leading space. lmjax's
    own models add no prefix; for them this is `sp` itself.
    """
    proto = sentencepiece_model_pb2.ModelProto.FromString(self.sp.serialized_model_proto())
    spec = proto.normalizer_spec
    if not (spec.add_dummy_prefix or spec.remove_extra_whitespaces):
      return self.sp
    spec.add_dummy_prefix, spec.remove_extra_whitespaces = False, False
    return spm.SentencePieceProcessor(model_proto=proto.SerializeToString())

  @property
  def pad_id(self) -> int:
    """The pad piece's id; a tokenizer without one (Llama's) pads with its unk id, like HF Llama fine-tunes.

    Padding is always masked out, so any valid id serves; -1 (sentencepiece's "none") would not.
    """
    return self.sp.pad_id() if self.sp.pad_id() >= 0 else self.sp.unk_id()

  @property
  def bos_id(self) -> int:
    return self.sp.bos_id()

  @property
  def eos_id(self) -> int:
    return self.sp.eos_id()

  def special_id(self, token: str) -> int:
    """Id of a special token such as '<|user_start|>'."""
    token_id = self.sp.piece_to_id(token)
    if token_id == self.sp.unk_id() or not self.sp.is_control(token_id):
      raise MissingSpecialToken(f"{token!r} is not a special token of {self.path}; the chat protocol needs a "
                                "tokenizer trained by `lmjax tokenizer` (an imported one lacks chat tokens)")
    return token_id

  def encode(self, text: str | list[str]) -> list[int] | list[list[int]]:
    """Token ids of ordinary text (never special tokens); a list of texts encodes in sentencepiece's threads."""
    return self.sp.encode(text, out_type=int)

  def decode(self, ids) -> str:
    """Text of ids; special tokens appear as their names, padding disappears.

    The text the pieces spell, so decode(a + b) == decode(a) + decode(b) (up to a character split across
    byte pieces). With a Llama-style tokenizer that means decode(encode(text)) == " " + text: the space
    its encoder prepended is kept, as a continuation's must be.
    """
    out, run = [], []
    for i in map(int, ids):
      if self.sp.is_control(i):
        out.append(self.decoder.decode(run))
        run = []
        if i != self.pad_id:
          out.append(self.sp.id_to_piece(i))
      else:
        run.append(i)
    out.append(self.decoder.decode(run))
    return "".join(out)

  def pieces(self, ids) -> list[str]:
    return [self.sp.id_to_piece(int(i)) for i in ids]


def training_lines(docs, max_bytes: int, counts: collections.Counter):
  """The non-blank lines of the documents that sentencepiece trains on (it skips those over `max_bytes`);
  counts["kept"] and counts["too_long"] say how many were given and skipped."""
  for doc in docs:
    for line in doc["text"].splitlines():
      if line.strip():
        too_long = len(line.encode()) > max_bytes
        counts["too_long" if too_long else "kept"] += 1
        if not too_long:
          yield line


def untrainable(config, counts: collections.Counter, error: Exception) -> str:
  """Why the tokenizer could not train, naming the field to change."""
  where = f"config.data.documents={config.data.documents!r}"
  if not counts["kept"] and counts["too_long"]:
    return (f"every line of {where} ({counts['too_long']:,}) is longer than config.tokenizer.max_sentence_length="
            f"{config.tokenizer.max_sentence_length:,} bytes, which sentencepiece skips; split the text into "
            "lines or raise the limit")
  if not counts["kept"]:
    return f"{where} holds no text for the tokenizer's train split; point it at a corpus"
  return (f"sentencepiece could not train on the {counts['kept']:,} lines of {where} ({error}); with this little "
          "text lower config.model.vocab_size or give more text")


def run(config, workdir: str) -> dict:
  """`lmjax tokenizer`: trains on the training split of config.data.documents, writes WORKDIR/tokenizer.model.

  Reports bytes per token on the held-out split (the documents `lmjax tokenize` sends to validation).
  """
  fs.makedirs(workdir)
  path = config.data.tokenizer or os.path.join(workdir, "tokenizer.model")
  fraction = config.data.val_fraction
  docs = lambda held_out: (d for d in read_documents(config.data.documents, config.data.text_field)
                           if is_validation(d["id"], fraction) == held_out)
  start = time.time()
  counts = collections.Counter()
  lines = training_lines(docs(False), config.tokenizer.max_sentence_length, counts)
  try:
    train_tokenizer(lines, path, vocab_size=config.model.vocab_size, tokenizer_config=config.tokenizer)
  except RuntimeError as e:  # sentencepiece's INTERNAL errors: no lines, or a vocabulary too big for them
    raise UserError(untrainable(config, counts, e)) from None
  tok = Tokenizer(path)
  held_out = [d["text"] for d in docs(True)]
  num_tokens = sum(map(len, tok.encode(held_out)))
  summary = {"path": path, "vocab_size": tok.vocab_size, "train_seconds": round(time.time() - start, 1),
             "held_out_documents": len(held_out),
             "held_out_bytes_per_token": sum(len(t.encode()) for t in held_out) / max(num_tokens, 1),
             "special_tokens": [PAD, UNK, BOS, EOS, *CHAT_TOKENS]}
  fs.write_text(os.path.join(workdir, "tokenizer_summary.json"), json.dumps(summary, indent=2))
  print(f"tokenizer: {tok.vocab_size} tokens → {path}; held-out bytes/token "
        f"{summary['held_out_bytes_per_token']:.2f} over {len(held_out)} documents")
  return summary
