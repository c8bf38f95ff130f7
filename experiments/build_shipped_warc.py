"""Build the small real WARC shipped in lmjax/assets/web/ by crawling Python's docs with wget.

    apt-get install -y python3.11-doc wget
    python experiments/build_shipped_warc.py            # -> lmjax/assets/web/python-docs.warc.gz (~2 MB)

Copies a fixed selection of Debian's python3.11-doc HTML pages (PSF licence) into a temporary
site with an index page linking to them, serves it with `python3 -m http.server` on 127.0.0.1
and crawls it with `wget --warc-file -r -l 1`, so the WARC is written by an independent tool
(real response records, a robots.txt 404 and the index page included). Three pages are also
served under /mirror/ so the WARC holds exact duplicates for the dedup step. The server port is
random, so URLs (and WARC record ids and dates) differ from build to build; the pages do not.
"""
import argparse
import pathlib
import shutil
import socket
import subprocess
import sys
import tempfile
import time

DOCS_ROOT = pathlib.Path("/usr/share/doc/python3.11/html")
SECTIONS = ("tutorial", "howto", "faq", "library")  # first pages of each, sorted, small first
MAX_PAGE_BYTES = 60_000
MIRRORED = 3


def select_pages(count: int) -> list[pathlib.Path]:
  pages = []
  for section in SECTIONS:
    candidates = sorted(p for p in (DOCS_ROOT / section).glob("*.html") if p.stat().st_size <= MAX_PAGE_BYTES)
    pages.extend(candidates)
  return pages[:count]


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--pages", type=int, default=120)
  parser.add_argument("--out", default=str(pathlib.Path(__file__).parents[1] / "lmjax/assets/web/python-docs"))
  args = parser.parse_args()
  if not DOCS_ROOT.exists():
    sys.exit(f"{DOCS_ROOT} not found: install it with `apt-get install -y python3.11-doc`")
  if shutil.which("wget") is None:
    sys.exit("wget not found: install it with `apt-get install -y wget`")
  with tempfile.TemporaryDirectory() as tmp:
    site = pathlib.Path(tmp) / "site"
    links = []
    for page in select_pages(args.pages):
      rel = page.relative_to(DOCS_ROOT)
      (site / rel).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy(page, site / rel)
      links.append(str(rel))
    for rel in links[:MIRRORED]:
      (site / "mirror" / rel).parent.mkdir(parents=True, exist_ok=True)
      shutil.copy(site / rel, site / "mirror" / rel)
      links.append(f"mirror/{rel}")
    items = "\n".join(f'<li><a href="{link}">{link}</a></li>' for link in links)
    (site / "index.html").write_text(f"<html><body><h1>Pages</h1><ul>\n{items}\n</ul></body></html>\n")
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                              cwd=site, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
      time.sleep(1.0)
      crawl = pathlib.Path(tmp) / "crawl"
      crawl.mkdir()
      subprocess.run(["wget", f"--warc-file={args.out}", "--no-warc-keep-log", "-r", "-l", "1",
                      "--delete-after", "-q", f"http://127.0.0.1:{port}/index.html"],
                     cwd=crawl, check=False)
    finally:
      server.terminate()
      server.wait()
  out = pathlib.Path(args.out + ".warc.gz")
  print(f"wrote {out} ({out.stat().st_size / 1e6:.2f} MB, {len(links)} pages + index)")


if __name__ == "__main__":
  main()
