"""SFT conversations that teach where an answer may come from: the prompt, or nowhere.

    context_conversations(500, seed=0)[0]  # [user "Ana lives in Rome. Tom lives in Oslo. In which city does
                                           #  Ana live?", assistant "Rome."]
    unknown_conversations(500, seed=0)[0]  # [user "What is the capital of the kingdom of Brenlathor?",
                                           #  assistant DONT_KNOW]

The context window is working memory: a fact stated in the prompt is answered from it, with distractor facts
about other people beside it. A question about an entity no one could know (an invented name) gets "I don't
know". The names here are disjoint from `lmjax.eval.abstention`'s (other first names, other syllables), so
the evaluation's questions are never trained on.
"""
import random

from lmjax import chat
from lmjax.data.posttrain.conversations import DONT_KNOW

NAMES = ("Ana", "Tom", "Kofi", "Lena", "Ravi", "Mei", "Jonas", "Elif", "Diego", "Hana", "Ivan", "Nadia", "Sam",
         "Yuki", "Femi", "Clara", "Arjun", "Ines", "Marek", "Leila", "Owen", "Sara", "Tariq", "Vera")
SYLLABLES = ("bren", "lath", "or", "cus", "mir", "tov", "ela", "gund", "ris", "pav", "sel", "ume", "dax",
             "hol", "wen", "tra")
# (fact about NAME with {value}, the question, the values to draw from)
FACTS = (
    ("{name} lives in {value}.", "In which city does {name} live?",
     ("Rome", "Oslo", "Lagos", "Seoul", "Madrid", "Boston", "Delhi", "Berlin", "Lisbon", "Sydney")),
    ("{name} has a {pet} called {value}.", "What is the name of {name}'s {pet}?",
     ("Biscuit", "Pepper", "Shadow", "Ginger", "Coco", "Bruno", "Nala", "Ziggy", "Pip", "Hazel")),
    ("{name}'s favourite colour is {value}.", "What is {name}'s favourite colour?",
     ("pink", "grey", "brown", "silver", "gold", "violet", "teal", "red", "blue", "green")),
    ("{name} works as a {value}.", "What does {name} work as?",
     ("baker", "nurse", "pilot", "teacher", "farmer", "painter", "doctor", "chef", "lawyer", "builder")),
    ("{name} is {value} years old.", "How old is {name}?", tuple(str(n) for n in range(7, 90, 7))),
    ("{name}'s favourite food is {value}.", "What is {name}'s favourite food?",
     ("rice", "soup", "pizza", "bread", "curry", "noodles", "salad", "pie", "cheese", "fish")),
)
PETS = ("dog", "cat", "hamster", "turtle", "pony", "canary")
UNKNOWN_QUESTIONS = (
    "What is the capital of the kingdom of {name}?",
    "In the King James Bible, which book comes right after {name}?",
    "How many verses are in chapter {n} of {name} in the Bible?",
    "Who wrote the novel \"The Silent River of {name}\"?",
    "In what year did {first} {name} win the {other} Medal?",
    "How many people live in the town of {name}?",
    "Who founded the company {name}?",
    "What is the tallest mountain in {name}?",
    "Which language is spoken in {name}?",
    "What did {first} {name} invent?",
)


def invented_name(rng: random.Random, syllables: tuple[str, ...] = SYLLABLES) -> str:
  """A made-up name of three syllables ("Brenlathor"): no model can know facts about it. The default
  syllables are the training data's; the evaluation (lmjax.eval.abstention) passes its own."""
  return "".join(rng.choice(syllables) for _ in range(3)).capitalize()


def _fact(rng: random.Random, name: str, fact) -> tuple[str, str, str]:
  template, question, values = fact
  pet, value = rng.choice(PETS), rng.choice(values)
  return template.format(name=name, value=value, pet=pet), question.format(name=name, pet=pet), value


def context_conversation(rng: random.Random) -> list[dict]:
  """[user: one to three facts about different people, then a question about one of them, assistant: the
  answer], the facts in random order so the answer's position varies."""
  people = rng.sample(NAMES, rng.randint(1, 3))
  facts = [_fact(rng, name, rng.choice(FACTS)) for name in people]
  statement, question, answer = facts[0]
  rng.shuffle(facts)
  prompt = " ".join(f[0] for f in facts) + " " + question
  return [{"role": "user", "content": prompt}, {"role": "assistant", "content": f"{answer[0].upper()}{answer[1:]}."}]


def unknown_conversation(rng: random.Random) -> list[dict]:
  """[user: a question about an invented entity, assistant: DONT_KNOW]."""
  question = rng.choice(UNKNOWN_QUESTIONS).format(name=invented_name(rng), other=invented_name(rng),
                                                  first=rng.choice(NAMES), n=rng.randint(2, 40))
  return [{"role": "user", "content": question}, {"role": "assistant", "content": DONT_KNOW}]


def distinct(make, n: int, seed: int, key) -> list:
  """Up to `n` items `make(rng)` with distinct `key(item)`, in order, from one rng seeded by `seed`."""
  rng, out = random.Random(seed), {}
  for _ in range(100 * n):
    if len(out) == n:
      break
    item = make(rng)
    out.setdefault(key(item), item)
  return list(out.values())


def _conversations(make, n: int, seed: int) -> list[list[dict]]:
  conversations = distinct(make, n, seed, key=lambda conversation: conversation[0]["content"])
  for conversation in conversations:
    chat.validate(conversation)
  return conversations


def context_conversations(n: int, seed: int = 0) -> list[list[dict]]:
  """`n` distinct answer-from-the-prompt conversations, fixed by the seed."""
  return _conversations(context_conversation, n, seed)


def unknown_conversations(n: int, seed: int = 0) -> list[list[dict]]:
  """`n` distinct "I don't know" conversations about invented entities, fixed by the seed."""
  return _conversations(unknown_conversation, n, seed)
