"""HTTP codings of WARC response bodies: chunked framing, gzip/deflate/br, and the errors for bad bodies."""
import gzip
import io

import pytest
from fastwarc.stream_io import BrotliWriter

from lmjax.data.web import http_body
from lmjax.data.web.http_body import BodyError, decode_body

HTML = b"<html><body><p>" + b"The mill wheel turns slowly. " * 40 + b"</p></body></html>"


def brotli(data: bytes) -> bytes:
  sink = io.BytesIO()
  writer = BrotliWriter(sink)
  writer.write(data)
  writer.close()
  return sink.getvalue()


def test_codings_are_undone_last_applied_first():
  body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(gzip.compress(HTML)), gzip.compress(HTML))
  assert decode_body(body, "chunked", "gzip") == HTML
  assert decode_body(gzip.compress(brotli(HTML)), None, "br, gzip") == HTML
  assert decode_body(HTML, None, "identity") == HTML


def test_chunk_extensions_are_ignored_and_an_unchunked_body_is_kept():
  assert decode_body(b"5;name=value\r\n<html\r\n1\n>\n0\r\n\r\n", "chunked", None) == b"<html>"
  assert decode_body(HTML, "chunked", None) == HTML  # de-chunked by the WARC writer, header left behind


@pytest.mark.parametrize("body, transfer, content, message", [
    (b"ff\r\n<html>short</html>", "chunked", None, "truncated"),
    (b"6\r\n<html>\r\n", "chunked", None, "final 0-size chunk"),
    (b"6\r\n<html>\r\nzz\r\n", "chunked", None, "bad chunk header"),
    (gzip.compress(HTML)[:-8], None, "gzip", "truncated"),
    (b"<html>plain text</html>", None, "deflate", "deflate"),
    (HTML, None, "compress", "unsupported coding 'compress'"),
])
def test_bad_bodies_raise_a_named_error(body, transfer, content, message):
  with pytest.raises(BodyError, match=message):
    decode_body(body, transfer, content)


def test_decompression_bomb_is_refused(monkeypatch):
  monkeypatch.setattr(http_body, "MAX_DECODED_BYTES", 1000)
  with pytest.raises(BodyError, match="more than 1000 bytes"):
    decode_body(gzip.compress(b"x" * 5000), None, "gzip")
