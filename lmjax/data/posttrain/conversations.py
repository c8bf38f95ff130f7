"""SFT conversations that need no model: chatterbot-corpus dialogues, identity answers, and "I don't know".

    load_chatterbot()                                  # ~2,000 real English exchanges (BSD, chatterbot-corpus)
    identity_conversations("lmjax", "the lmjax authors", n=200, seed=0)
    refusal_conversation("Who wrote Botchan?")         # user question, assistant abstains

All three return protocol conversations (`lmjax.chat`). Which questions to refuse is decided by knowledge
probing with the model (the SFT stage); `qa_pairs` in `qa_facts` supplies questions with known answers.
"""
import glob
import os
import random

import yaml

from lmjax import chat

DONT_KNOW = "I don't know the answer to that."
_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)  # libyaml's C loader if built: ~10x faster


def chatterbot_dir() -> str:
  """The installed chatterbot-corpus data directory (one folder of YAML files per language)."""
  try:
    import chatterbot_corpus
  except ImportError as e:
    raise ImportError("chatterbot-corpus is not installed; `pip install chatterbot-corpus` "
                      "(it is in lmjax's CORE_REQUIRES)") from e
  return os.path.join(os.path.dirname(chatterbot_corpus.__file__), "data")


def dialogue_to_messages(lines) -> list[dict] | None:
  """A chatterbot dialogue (a list of alternating utterances, user first) as messages, or None if malformed.

  Malformed: not a list, fewer than two utterances, or an utterance that is not a non-empty string. A final
  utterance with no reply is dropped, since SFT learns only from assistant turns.
  """
  if not isinstance(lines, list) or len(lines) < 2:
    return None
  if not all(isinstance(line, str) and line.strip() for line in lines):
    return None
  lines = [line.strip() for line in lines[:len(lines) // 2 * 2]]
  return [{"role": "user" if i % 2 == 0 else "assistant", "content": line} for i, line in enumerate(lines)]


def load_chatterbot(languages=("english",), data_dir: str | None = None,
                    counts: dict | None = None) -> list[list[dict]]:
  """All well-formed conversations of chatterbot-corpus in `languages`, in file order.

  YAML is read with the base loader so every utterance stays a string ("Yes" is not turned into True, "3.0"
  not into a float). Pass a dict as `counts` to receive {"files", "conversations", "malformed"}.
  """
  data_dir = data_dir or chatterbot_dir()
  counts = counts if counts is not None else {}
  counts.update(files=0, conversations=0, malformed=0)
  out = []
  for language in languages:
    files = sorted(glob.glob(os.path.join(data_dir, language, "*.yml")))
    if not files:
      raise FileNotFoundError(f"no chatterbot-corpus files for language {language!r} under {data_dir}; "
                              f"the languages are {', '.join(sorted(os.listdir(data_dir)))}")
    for path in files:
      with open(path, encoding="utf-8") as f:
        doc = yaml.load(f, Loader=_LOADER) or {}
      counts["files"] += 1
      for lines in doc.get("conversations", []) if isinstance(doc, dict) else []:
        messages = dialogue_to_messages(lines)
        if messages is None:
          counts["malformed"] += 1
          continue
        out.append(messages)
  counts["conversations"] = len(out)
  return out


IDENTITY_QUESTIONS = (
    "Who are you?", "What is your name?", "What are you?", "Who made you?", "Who created you?",
    "Tell me about yourself.", "Are you a person?", "What should I call you?", "Who built you?",
    "Introduce yourself.", "are you human?", "whats your name",
)
IDENTITY_ANSWERS = (
    "I am {name}, a small language model made by {creator}.",
    "My name is {name}. I was trained by {creator}.",
    "I'm {name}, an assistant built by {creator}. I am a language model, not a person.",
    "You can call me {name}. {creator_cap} made me.",
    "I am {name}, a language model. {creator_cap} trained me from scratch.",
)


def identity_conversations(name: str, creator: str, n: int, seed: int = 0,
                           questions=IDENTITY_QUESTIONS, answers=IDENTITY_ANSWERS) -> list[list[dict]]:
  """`n` one-turn conversations pairing a question about the assistant with an answer naming it.

  Answers are format strings over {name}, {creator} and {creator_cap} (creator with a capital first letter);
  pass your own `questions`/`answers` from the config to change the persona.
  """
  rng = random.Random(seed)
  fields = {"name": name, "creator": creator, "creator_cap": creator[:1].upper() + creator[1:]}
  return [[{"role": "user", "content": rng.choice(questions)},
           {"role": "assistant", "content": rng.choice(answers).format(**fields)}] for _ in range(n)]


def refusal_conversation(question: str, abstention: str = DONT_KNOW, system: str | None = None) -> list[dict]:
  """[system?, user question, assistant abstention]: the "I don't know" example for a question the model
  gets wrong when probed."""
  messages = [{"role": "system", "content": system}] if system else []
  messages += [{"role": "user", "content": question}, {"role": "assistant", "content": abstention}]
  chat.validate(messages)
  return messages
