"""Step 9, PII: replace email addresses and public IP addresses (FineWeb's PIIFormatter).

Private, loopback and reserved IPs (192.168.x.x, 127.0.0.1, ...) are kept: they identify no one and
appear in documentation. Runs after dedup, on the final documents.
"""
from __future__ import annotations

import functools
import ipaddress
import re

from lmjax.data.web.document import Document, Drop

EMAIL = re.compile(r"\b[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
                   r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\.)+[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?\b")
IPV4 = re.compile(r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])")


def _is_public(address: str) -> bool:
  ip = ipaddress.ip_address(address)
  return ip.is_global and not ip.is_multicast


def replace_pii(doc: Document, *, replace_emails: bool, email_replacement: str, replace_ips: bool,
                ip_replacement: str) -> Document | Drop:
  text = doc.text
  if replace_emails:
    text = EMAIL.sub(email_replacement, text)
  if replace_ips:
    text = IPV4.sub(lambda match: ip_replacement if _is_public(match.group()) else match.group(), text)
  return doc if text == doc.text else doc.with_text(text)


def build(cfg):
  settings = {key: value for key, value in cfg.items() if key != "enabled"}
  return functools.partial(replace_pii, **settings)
