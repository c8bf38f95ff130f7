"""Questions with known short answers, generated from the shipped King James Bible, for knowledge probing.

The "I don't know" data (DESIGN §7) asks the model questions whose answers are known, and teaches it to
abstain where it is consistently wrong. The facts come from a corpus the model was pretrained on, so some are
knowable: the last word of a verse, which book a verse is from, how many verses a chapter has, which book
follows another. Each QA carries the document id it came from (pretraining holds documents out by id).

    qa_pairs(200, seed=0)[0]  # QA(question='Complete this verse from Genesis 1:3: "And God said, Let there
                              #    be light: and there was ..."', answer='light', kind='finish_verse', ...)
    answer_matches("It is light.", "light")  # True
"""
import dataclasses
import functools
import json
import os
import random
import re

from lmjax.data.documents import read_lines

BIBLE = os.path.join(os.path.dirname(__file__), "..", "..", "assets", "corpus", "bible_kjv.jsonl.gz")
KINDS = ("finish_verse", "verse_book", "verse_count", "next_book")


@dataclasses.dataclass(frozen=True)
class QA:
  """A question, its short answer, the kind of fact, and the corpus document it comes from."""
  question: str
  answer: str
  kind: str
  source: str


@dataclasses.dataclass(frozen=True)
class Chapter:
  doc_id: str
  book: str
  number: int
  verses: tuple[str, ...]


@functools.lru_cache(maxsize=2)
def bible_chapters(path: str = BIBLE) -> tuple[Chapter, ...]:
  """The chapters of the shipped Bible: heading "Genesis 1", a blank line, then "N verse text" lines."""
  chapters = []
  for _, line in read_lines(os.path.normpath(path)):
    doc = json.loads(line)
    heading, _, body = doc["text"].partition("\n\n")
    book, _, number = heading.rpartition(" ")
    verses = tuple(v.split(" ", 1)[1] for v in body.splitlines() if " " in v)
    chapters.append(Chapter(doc["id"], book, int(number), verses))
  return tuple(chapters)


def _finish_verse(rng, chapters, books):
  chapter = rng.choice(chapters)
  v = rng.randrange(len(chapter.verses))
  words = chapter.verses[v].split()
  last = re.sub(r"\W+$", "", words[-1])
  if len(words) < 6 or not last.isalpha() or len(last) < 3:
    return None
  text = " ".join(words[:-1])
  question = f'Complete this verse from {chapter.book} {chapter.number}:{v + 1}: "{text} ..."'
  return QA(question, last, "finish_verse", chapter.doc_id)


def _verse_book(rng, chapters, books):
  chapter = rng.choice(chapters)
  verse = rng.choice(chapter.verses)
  if len(verse) > 160:
    return None
  return QA(f'Which book of the King James Bible has the verse "{verse}"?', chapter.book, "verse_book",
            chapter.doc_id)


def _verse_count(rng, chapters, books):
  chapter = rng.choice(chapters)
  question = f"How many verses are in chapter {chapter.number} of {chapter.book} in the King James Bible?"
  return QA(question, str(len(chapter.verses)), "verse_count", chapter.doc_id)


def _next_book(rng, chapters, books):
  i = rng.randrange(len(books) - 1)
  question = f"In the King James Bible, which book comes right after {books[i][0]}?"
  return QA(question, books[i + 1][0], "next_book", books[i + 1][1])


FACTS = {"finish_verse": _finish_verse, "verse_book": _verse_book, "verse_count": _verse_count,
         "next_book": _next_book}


def qa_pairs(n: int = 200, seed: int = 0, kinds=KINDS, path: str = BIBLE) -> list[QA]:
  """`n` distinct questions with known answers, kinds drawn in turn; deterministic for (n, seed, kinds)."""
  unknown = set(kinds) - set(FACTS)
  if unknown:
    raise ValueError(f"unknown QA kinds {sorted(unknown)}; use some of {', '.join(FACTS)}")
  chapters = bible_chapters(path)
  books = list({c.book: c.doc_id for c in chapters}.items())  # in Bible order, each with its first chapter
  rng, out, seen = random.Random(seed), [], set()
  for attempt in range(100 * n):
    if len(out) == n:
      break
    qa = FACTS[kinds[attempt % len(kinds)]](rng, chapters, books)
    if qa is not None and qa.question not in seen:
      seen.add(qa.question)
      out.append(qa)
  if len(out) < n:
    raise ValueError(f"only {len(out)} distinct questions of kinds {kinds} exist; ask for fewer than n={n}")
  return out


def normalize(text: str) -> str:
  """Lowercase words separated by single spaces, punctuation dropped: what answers are compared on."""
  return " ".join(re.findall(r"\w+", text.lower()))


def answer_matches(reply: str, answer: str) -> bool:
  """Whether the reply states the answer: its normalized words appear as a whole-word run in the reply."""
  return f" {normalize(answer)} " in f" {normalize(reply)} "
