"""Undo the HTTP codings of a WARC response body: `Transfer-Encoding: chunked`, then gzip, deflate or br.

wget and other WARC writers store the bytes the server sent, so a body may be chunked and compressed.
fastwarc can decode while iterating (`auto_decode`), but there one corrupt body aborts the rest of the
file and a truncated gzip stream passes silently; decoding each body here makes a bad one fail alone.
"""
from __future__ import annotations

import io
import re
import zlib

from fastwarc.stream_io import BrotliReader

MAX_DECODED_BYTES = 256 << 20  # a decompression bomb is refused, not held in memory
CHUNK_HEADER = re.compile(rb"([0-9A-Fa-f]+)[ \t]*(?:;[^\r\n]*)?\r?\n")  # size in hex, optional extensions


class BodyError(ValueError):
  """A body that cannot be decoded; the message names the coding and what is wrong."""


def codings(header: str | None) -> list[str]:
  """'gzip, chunked' -> ['gzip', 'chunked']: lowercase, identity dropped, in the order they were applied."""
  names = (name.strip().lower() for name in (header or "").split(","))
  return [name for name in names if name and name != "identity"]


def dechunk(body: bytes) -> bytes:
  """Join the chunks of a chunked body; a body that does not start with a chunk header is kept as is."""
  if not CHUNK_HEADER.match(body):  # some writers de-chunk but keep the header (warcio reads these as is)
    return body
  parts, position = [], 0
  while match := CHUNK_HEADER.match(body, position):
    size = int(match.group(1), 16)
    if size == 0:
      return b"".join(parts)
    position = match.end() + size
    if position > len(body):
      raise BodyError(f"chunked: chunk of {size} bytes runs past the end of the body (truncated)")
    parts.append(body[match.end():position])
    if body.startswith(b"\r\n", position):
      position += 2
    elif body.startswith(b"\n", position):
      position += 1
  if position >= len(body):
    raise BodyError("chunked: body ends before the final 0-size chunk (truncated)")
  raise BodyError(f"chunked: bad chunk header {body[position:position + 20]!r} at byte {position}")


def inflate(body: bytes, wbits: int) -> bytes:
  """zlib/gzip/raw-deflate stream -> bytes; a truncated or oversized stream is an error, not a silent cut."""
  inflater = zlib.decompressobj(wbits)
  data = inflater.decompress(body, MAX_DECODED_BYTES)
  if inflater.unconsumed_tail:
    raise zlib.error(f"decodes to more than {MAX_DECODED_BYTES} bytes")
  if not inflater.eof:
    raise zlib.error("stream ends early (truncated)")
  return data


def undo_coding(body: bytes, coding: str) -> bytes:
  """Reverse one HTTP coding; raises BodyError for corrupt data or a coding we do not know."""
  try:
    if coding == "chunked":
      return dechunk(body)
    if coding in ("gzip", "x-gzip"):
      return inflate(body, 16 + zlib.MAX_WBITS)
    if coding == "deflate":  # RFC 9110 says zlib-wrapped; some servers send raw deflate (browsers accept it)
      try:
        return inflate(body, zlib.MAX_WBITS)
      except zlib.error:
        return inflate(body, -zlib.MAX_WBITS)
    if coding == "br":
      data = BrotliReader(io.BytesIO(body)).read(MAX_DECODED_BYTES + 1)
      if len(data) > MAX_DECODED_BYTES:
        raise zlib.error(f"decodes to more than {MAX_DECODED_BYTES} bytes")
      return data
  except (zlib.error, OSError) as error:
    raise BodyError(f"{coding}: {error}") from error
  raise BodyError(f"unsupported coding {coding!r} (known: chunked, gzip, deflate, br)")


def decode_body(body: bytes, transfer_encoding: str | None, content_encoding: str | None) -> bytes:
  """The payload as the server meant it: the codings undone last-applied first (transfer, then content)."""
  for coding in reversed(codings(content_encoding) + codings(transfer_encoding)):
    body = undo_coding(body, coding)
  return body
