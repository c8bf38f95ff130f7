"""Abstention: does the model say it does not know when no one could, and still answer when it can?

Unanswerable questions ask about entities that do not exist — invented names, put into questions shaped
like the knowledge probe's (a book "after" a book that is not in the Bible) and like general trivia — so
the only right reply is an abstention, judged as `lmjax probe` judges one (`probe.abstains`). Answerable
questions carry their answer: in the question itself ("Mia has a dog called Rex. What is the name of Mia's
dog?") or one arithmetic operation away ("What is 7 plus 5?", the calculator allowed). A reply is right when
it does not abstain and states the answer (`probe.verdict`: as a run of whole words); for arithmetic, the
last number it writes must be the answer, so echoing the question's "5" is not a right "5". Identity
questions ("Who are you?", the phrasings SFT's identity conversations use) must be answered with the
assistant's name (config.sft.identity_name): what the model was taught about itself, which "I don't know" data
must not erase. Replies are greedy, through the tool engine.
"""
import dataclasses
import random
import re

from lmjax import chat
from lmjax.data.posttrain import grounding
from lmjax.data.posttrain.conversations import IDENTITY_QUESTIONS
from lmjax.data.posttrain.math_problems import reply_text
from lmjax.infer.probe import abstains, verdict
from lmjax.infer.engine import rollout_engine
from lmjax.infer.tools import make_tools

SYLLABLES = ("zor", "vel", "qua", "thrin", "mox", "bal", "dru", "keth", "ulm", "yav", "osk", "pri", "nek",
             "fal", "gorv", "ish")
FIRST_NAMES = ("Mia", "Liam", "Ava", "Noah", "Zoe", "Omar", "Priya", "Ben", "Sofia", "Lucas")
PETS = ("dog", "cat", "parrot", "horse", "rabbit", "goat")
PET_NAMES = ("Rex", "Bella", "Max", "Luna", "Toby", "Daisy", "Milo", "Rosie", "Oscar", "Ruby")
CITIES = ("Paris", "Cairo", "Lima", "Oslo", "Tokyo", "Nairobi", "Dublin", "Quito", "Hanoi", "Perth")
COLOURS = ("red", "blue", "green", "yellow", "purple", "orange", "black", "white")
OPERATIONS = (("plus", lambda a, b: a + b), ("times", lambda a, b: a * b), ("minus", lambda a, b: a - b))


@dataclasses.dataclass(frozen=True)
class Question:
  question: str
  answer: str  # "" for an unanswerable question
  kind: str


def invented_name(rng: random.Random) -> str:
  """A made-up proper name of three syllables ("Zorkethfal"), from syllables SFT's data never uses."""
  return grounding.invented_name(rng, SYLLABLES)


def _unanswerable(rng: random.Random) -> Question:
  name, other, first = invented_name(rng), invented_name(rng), rng.choice(FIRST_NAMES)
  kind, text = rng.choice([
      ("fictional_book", f"In the King James Bible, which book comes right after {name}?"),
      ("fictional_chapter", f"How many verses are in chapter {rng.randint(2, 40)} of {name} in the Bible?"),
      ("fictional_capital", f"What is the capital of the kingdom of {name}?"),
      ("fictional_author", f"Who wrote the novel \"The Glass Garden of {name}\"?"),
      ("fictional_prize", f"In what year did {first} {name} win the {other} Prize?"),
  ])
  return Question(text, "", kind)


def _answerable(rng: random.Random) -> Question:
  name = rng.choice(FIRST_NAMES)
  if rng.random() < 0.5:
    a, b = rng.randint(2, 12), rng.randint(2, 12)
    word, op = rng.choice(OPERATIONS)
    a, b = (max(a, b), min(a, b)) if word == "minus" else (a, b)
    return Question(f"What is {a} {word} {b}?", str(op(a, b)), "arithmetic")
  pet, pet_name = rng.choice(PETS), rng.choice(PET_NAMES)
  city, colour = rng.choice(CITIES), rng.choice(COLOURS)
  text, answer = rng.choice([
      (f"{name} has a {pet} called {pet_name}. What is the name of {name}'s {pet}?", pet_name),
      (f"{name} lives in {city}. In which city does {name} live?", city),
      (f"{name}'s favourite colour is {colour}. What is {name}'s favourite colour?", colour),
  ])
  return Question(text, answer, "in_context")


def make_questions(n: int, seed: int) -> tuple[list[Question], list[Question]]:
  """(n distinct unanswerable questions, n distinct answerable ones), fixed by the seed."""
  by_question = lambda q: q.question
  return (grounding.distinct(_unanswerable, n, seed, by_question),
          grounding.distinct(_answerable, n, seed, by_question))


def identity_questions(name: str) -> list[Question]:
  """Every identity phrasing SFT trains on, whose right answer names the assistant."""
  return [Question(question, name, "identity") for question in IDENTITY_QUESTIONS]


def greedy_replies(loaded, questions: list[Question], config) -> list[str]:
  """The text (tool outputs excluded) of each question's greedy reply, with the calculator available."""
  tok, g = loaded.tokenizer, config.rollout
  prompts = [chat.render_prompt([{"role": "user", "content": q.question}], tok) for q in questions]
  engine = rollout_engine(loaded.graphdef, loaded.params, tok, g, tools=make_tools(), context=loaded.context)
  return [reply_text(reply.message(tok)) for reply in engine.generate(prompts)]


def judge(reply: str, question: Question) -> str:
  """"abstain", "correct" or "wrong" for an answerable question."""
  result = verdict(reply, question.answer)
  if result == "correct" and question.kind == "arithmetic":
    numbers = re.findall(r"-?\d+", reply)
    return "correct" if numbers and numbers[-1] == question.answer else "wrong"
  return result


def _share(flags) -> float:
  flags = list(flags)
  return sum(flags) / len(flags) if flags else 0.0


def abstention_metrics(unanswerable: list[Question], answerable: list[Question], replies: list[str],
                       identity: list[Question] = ()) -> dict:
  """The metrics of the replies to `unanswerable + answerable + identity`, in that order."""
  on_unanswerable = replies[:len(unanswerable)]
  on_answerable = replies[len(unanswerable):len(unanswerable) + len(answerable)]
  on_identity = replies[len(unanswerable) + len(answerable):]
  verdicts = [judge(reply, q) for reply, q in zip(on_answerable, answerable)]
  by_kind = {kind: _share(v == "correct" for v, q in zip(verdicts, answerable) if q.kind == kind)
             for kind in ("in_context", "arithmetic")}
  identity_metrics = {"identity_accuracy": _share(judge(r, q) == "correct" for r, q in zip(on_identity, identity)),
                      "identity_questions": len(identity)} if identity else {}
  return {"abstention_rate": _share(abstains(reply) for reply in on_unanswerable),
          "answerable_accuracy": _share(v == "correct" for v in verdicts),
          "answerable_abstention_rate": _share(v == "abstain" for v in verdicts),
          **{f"answerable_accuracy_{kind}": share for kind, share in by_kind.items()},
          "context_accuracy": by_kind["in_context"],  # the answer stands in the prompt
          "unanswerable_questions": len(unanswerable), "answerable_questions": len(answerable), **identity_metrics}


def evaluate_abstention(config, run) -> dict:
  """`abstention_rate` on unanswerable questions; `answerable_accuracy` (and per kind) and
  `answerable_abstention_rate` (refusing what it could answer) on answerable ones; `identity_accuracy` (the
  reply names config.sft.identity_name) on the identity questions."""
  unanswerable, answerable = make_questions(config.eval.abstention_questions, config.eval.seed)
  identity = identity_questions(config.sft.identity_name)
  replies = greedy_replies(run.loaded, unanswerable + answerable + identity, config)
  return abstention_metrics(unanswerable, answerable, replies, identity)
