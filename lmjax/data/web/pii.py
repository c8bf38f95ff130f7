"""Step 9, PII: replace email addresses and public IP addresses (FineWeb's PIIFormatter).

Private, loopback and reserved IPs (192.168.x.x, 127.0.0.1, ...) are kept: they identify no one and
appear in documentation. Runs after dedup, on the final documents. Both searches start from a cheap
anchor ('@', a digit) rather than trying the full pattern at every position: ~2-3x datatrove's speed.
"""
from __future__ import annotations

import functools
import ipaddress
import re

from lmjax.data.web.document import Document, Drop

LOCAL_PART_CHARS = r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]"
LOCAL_PART_BEFORE_AT = re.compile(rf"\b{LOCAL_PART_CHARS}+(?:\.{LOCAL_PART_CHARS}+)*\Z")
DOMAIN_LABEL = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
DOMAIN_AFTER_AT = re.compile(rf"(?:{DOMAIN_LABEL}\.)+{DOMAIN_LABEL}\b")
MAX_LOCAL_PART = 64  # RFC 5321
IPV4_CANDIDATE = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")


def scrub_emails(text: str, replacement: str) -> str:
  """user.name+tag@example.co.uk -> replacement; each '@' is checked for a local part before and a domain after."""
  pieces, last = [], 0
  at = text.find("@")
  while at != -1:
    local = LOCAL_PART_BEFORE_AT.search(text, max(last, at - MAX_LOCAL_PART), at)
    domain = DOMAIN_AFTER_AT.match(text, at + 1)
    if local and domain:
      pieces += [text[last:local.start()], replacement]
      last = domain.end()
    at = text.find("@", max(at + 1, last))
  return "".join(pieces) + text[last:] if pieces else text


def _is_public_ipv4(text: str, match: re.Match) -> bool:
  before = text[match.start() - 1] if match.start() else " "
  after = text[match.end()] if match.end() < len(text) else " "
  if before.isdigit() or before == "." or after.isdigit() or after == ".":
    return False  # part of a longer number or version string such as 1.2.3.4.5
  try:
    ip = ipaddress.ip_address(match.group())
  except ValueError:  # an octet over 255
    return False
  return ip.is_global and not ip.is_multicast


def scrub_public_ips(text: str, replacement: str) -> str:
  return IPV4_CANDIDATE.sub(lambda match: replacement if _is_public_ipv4(text, match) else match.group(), text)


def replace_pii(doc: Document, *, replace_emails: bool, email_replacement: str, replace_ips: bool,
                ip_replacement: str) -> Document | Drop:
  text = doc.text
  if replace_emails and "@" in text:
    text = scrub_emails(text, email_replacement)
  if replace_ips:
    text = scrub_public_ips(text, ip_replacement)
  return doc if text == doc.text else doc.with_text(text)


def build(cfg):
  settings = {key: value for key, value in cfg.items() if key != "enabled"}
  return functools.partial(replace_pii, **settings)
