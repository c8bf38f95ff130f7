"""`lmjax probe`: knowledge probing, Llama 3's recipe for "I don't know" SFT data. Ask the model questions
whose answers are known, sample several replies to each, and where it is consistently wrong, write a
conversation in which the assistant says it does not know.

    lmjax probe --config configs/sft_quickstart.py --workdir runs/probe \
        --config.probe.model_workdir=runs/quickstart_sft

Writes WORKDIR/idk_conversations.jsonl (SFT reads it as config.sft.idk_conversations, source `idk`),
WORKDIR/probe_answers.jsonl (every reply with its verdict) and WORKDIR/probe_report.json: accuracy and
abstention rate on the probe questions and on disjoint held-out questions, overall and per kind. Probing the
fine-tuned model with the same config asks the same held-out questions: the "after" figures.
"""
import collections
import dataclasses
import json
import os
import random

from tqdm import tqdm

from lmjax import chat, fs
from lmjax.config import ConfigError
from lmjax.data.documents import read_jsonl
from lmjax.data.posttrain.conversations import DONT_KNOW, refusal_conversation
from lmjax.data.posttrain.qa_facts import QA, answer_matches, normalize, qa_pairs
from lmjax.infer.engine import Engine
from lmjax.infer.sampler import SamplingParams

VERDICTS = ("correct", "abstain", "wrong")
REPORT_FILE = "probe_report.json"  # in WORKDIR; the chain's report reads it
ABSTENTIONS = (DONT_KNOW, "I don't know", "I do not know", "I'm not sure", "I am not sure", "I have no idea",
               "I cannot answer", "I can't answer", "I'm not certain", "I am not certain")
_ABSTENTION_WORDS = tuple(f" {normalize(a)} " for a in ABSTENTIONS)


def abstains(reply: str) -> bool:
  """Whether a reply says it does not know: DONT_KNOW or a common phrasing, as a run of whole words."""
  words = f" {normalize(reply)} "
  return any(a in words for a in _ABSTENTION_WORDS)


def verdict(reply: str, answer: str) -> str:
  """"abstain", "correct" or "wrong". Abstention is checked first: "I don't know the answer to that" is no
  answer even when the answer happens to be one of its words."""
  if abstains(reply):
    return "abstain"
  return "correct" if answer_matches(reply, answer) else "wrong"


@dataclasses.dataclass(frozen=True)
class Probed:
  """One question with the model's sampled replies and their verdicts."""
  qa: QA
  replies: tuple[str, ...]
  verdicts: tuple[str, ...]

  @property
  def accuracy(self) -> float:
    return self.verdicts.count("correct") / len(self.verdicts)


def consistently_wrong(probed: Probed, threshold: float) -> bool:
  """At most `threshold` of the samples correct (0: none). Abstentions count as not correct, so a question the
  model already declines also gets an "I don't know" example, which reinforces what it does."""
  return probed.accuracy <= threshold


def messages_for(question: str, system: str = "") -> list[dict]:
  """The probe prompt as messages: [system?, user question]."""
  return ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": question}]


FEW_SHOT = (("In the King James Bible, which book comes right after Genesis?", "Exodus"),
            ("How many verses are in chapter 1 of Genesis in the King James Bible?", "31"),
            ('Complete this verse from John 11:35: "Jesus ..."', "wept"))


def few_shot_prompt(question: str, tokenizer) -> list[int]:
  """A base model's prompt: BOS, three "Question: ... Answer: ..." examples, then the question and "Answer:".
  A pretrained model has no chat protocol yet; it answers by continuing the pattern (Llama 3 probes so)."""
  shots = "".join(f"Question: {q}\nAnswer: {a}\n\n" for q, a in FEW_SHOT)
  return [tokenizer.bos_id, *tokenizer.encode(f"{shots}Question: {question}\nAnswer:")]


def prompt_ids(question: str, tokenizer, style: str, system: str = "") -> list[int]:
  """The probe prompt of `question` in `style`: "chat" (the chat protocol) or "few_shot" (a base model)."""
  if style == "chat":
    return chat.render_prompt(messages_for(question, system), tokenizer)
  if style == "few_shot":
    return few_shot_prompt(question, tokenizer)
  raise ConfigError(f"config.probe.prompt={style!r} is not a prompt style; use \"chat\" (a chat model) or "
                    "\"few_shot\" (a pretrained base model)")


def _reply_text(reply, tokenizer, style: str) -> str:
  """A chat reply's text, or a few-shot continuation up to its first line break (the answer line)."""
  if style == "chat":
    return chat.text_of(reply.message(tokenizer))
  ids = [i for i in reply.reply if i != tokenizer.eos_id]  # a stop the model sampled is not text
  return tokenizer.decode(ids).split("\n")[0].strip()


def sample_replies(loaded, prompts: list[list[int]], samples: int, sampling: SamplingParams, batch_size: int,
                   desc: str | None = None, style: str = "chat") -> list[list[str]]:
  """`samples` reply texts per prompt through the engine's `batch_size` slots, no tools (a reply that calls
  one ends there: no answer); row i (prompt × sample) samples with seed `sampling.seed + i`. A few-shot
  reply runs to its token budget and is cut at its first line break."""
  tok = loaded.tokenizer
  stops = chat.chat_tokens(tok).stops if style == "chat" else (tok.eos_id,)
  sampling = dataclasses.replace(sampling, stop_ids=stops)
  rows = [prompt for prompt in prompts for _ in range(samples)]
  engine = Engine(loaded.graphdef, loaded.params, slots=max(1, min(batch_size, len(rows))), sampling=sampling,
                  max_reply_tokens=sampling.max_new_tokens, context=loaded.context)
  with tqdm(total=len(rows), desc=desc, unit="reply", disable=desc is None) as bar:
    replies = engine.generate(rows, on_reply=lambda index, reply: bar.update())
  texts = [_reply_text(reply, tok, style) for reply in replies]
  return [texts[q * samples:(q + 1) * samples] for q in range(len(prompts))]


def probe(loaded, qas: list[QA], samples: int, sampling: SamplingParams, batch_size: int, system: str = "",
          desc: str | None = None, style: str = "chat") -> list[Probed]:
  """Each question asked `samples` times (as a chat turn or few-shot, `style`), every reply judged."""
  prompts = [prompt_ids(qa.question, loaded.tokenizer, style, system) for qa in qas]
  replies = sample_replies(loaded, prompts, samples, sampling, batch_size, desc, style)
  return [Probed(qa, tuple(r), tuple(verdict(text, qa.answer) for text in r)) for qa, r in zip(qas, replies)]


def _share(part: int, whole: int) -> float:
  return part / whole if whole else 0.0


def _stats(probed: list[Probed], threshold: float) -> dict:
  counts = collections.Counter(v for p in probed for v in p.verdicts)
  samples, wrong = sum(counts.values()), sum(consistently_wrong(p, threshold) for p in probed)
  return {"questions": len(probed), "samples": samples, **{v: counts[v] for v in VERDICTS},
          "accuracy": _share(counts["correct"], samples),
          "abstention_rate": _share(counts["abstain"], samples),
          "consistently_wrong": wrong, "consistently_wrong_rate": _share(wrong, len(probed))}


def summarize(probed: list[Probed], threshold: float) -> dict:
  """Accuracy and abstention rate (shares of samples), questions consistently wrong (count and share) and the
  verdict counts behind them, overall and under "by_kind" per QA kind."""
  kinds = sorted({p.qa.kind for p in probed})
  return {**_stats(probed, threshold),
          "by_kind": {k: _stats([p for p in probed if p.qa.kind == k], threshold) for k in kinds}}


def dont_know_conversations(probed: list[Probed], threshold: float, system: str = "") -> list[list[dict]]:
  """[system?, question, DONT_KNOW] for every question the model is consistently wrong on."""
  return [refusal_conversation(p.qa.question, system=system or None)
          for p in probed if consistently_wrong(p, threshold)]


def known_conversations(probed: list[Probed], min_accuracy: float, system: str = "") -> list[list[dict]]:
  """[system?, question, the model's shortest correct reply] for questions it gets right at least
  `min_accuracy` of the time: Llama 3 keeps these so SFT does not teach the model to refuse everything."""
  out = []
  for p in probed:
    if p.accuracy > 0 and p.accuracy >= min_accuracy:
      best = min((r for r, v in zip(p.replies, p.verdicts) if v == "correct"), key=len)
      out.append(messages_for(p.qa.question, system) + [{"role": "assistant", "content": best.strip()}])
      chat.validate(out[-1])
  return out


def read_qa_file(pattern: str) -> list[QA]:
  """QAs from JSONL, one {"question", "answer"[, "kind", "source"]} per line."""
  def qa(record, where):
    return QA(str(record["question"]), str(record["answer"]), record.get("kind", "file"),
              record.get("source", where))
  return list(read_jsonl(pattern, qa, 'a {"question", "answer"} record'))


def probe_questions(probe_config) -> tuple[list[QA], list[QA]]:
  """(probe questions, held-out questions), disjoint by question text and fixed by the config, so probing
  before and after SFT asks the same held-out questions. From config.probe.qa_file if set, else generated
  from the shipped Bible (probe questions with `seed`, held-out ones with `heldout_seed`)."""
  c = probe_config
  n, held = c.questions, c.heldout_questions
  if c.qa_file:
    qas = list({qa.question: qa for qa in read_qa_file(c.qa_file)}.values())
    random.Random(c.seed).shuffle(qas)
    if len(qas) < n + held:
      raise ConfigError(f"config.probe.qa_file has {len(qas)} distinct questions; questions={n} plus "
                        f"heldout_questions={held} need {n + held}")
    return qas[:n], qas[n:n + held]
  asked = qa_pairs(n, seed=c.seed, kinds=tuple(c.kinds))
  seen = {qa.question for qa in asked}
  extra = qa_pairs(n + held, seed=c.heldout_seed, kinds=tuple(c.kinds))  # n spare for the ones dropped
  heldout = [qa for qa in extra if qa.question not in seen]
  return asked, heldout[:held]


def _write_jsonl(path: str, records) -> None:
  with fs.open(path, "w") as f:
    for record in records:
      f.write(json.dumps(record, ensure_ascii=False) + "\n")


def format_report(report: dict) -> str:
  """The report as a table: accuracy, abstention rate and share consistently wrong, per set and per kind."""
  lines = [f"probe of {report['model_workdir']} (step {report['step']}), "
           f"{report['samples_per_question']} samples per question",
           f"{'':16}{'questions':>10}{'accuracy':>10}{'abstained':>11}{'consistently wrong':>20}"]
  row = lambda name, s: (f"{name:16}{s['questions']:>10}{s['accuracy']:>10.1%}{s['abstention_rate']:>11.1%}"
                         f"{s['consistently_wrong_rate']:>20.1%}")
  for name in ("probe", "heldout"):
    lines.append(row(name, report[name]))
    lines += [row(f"  {kind}", s) for kind, s in report[name]["by_kind"].items()]
  dont_know, known = report["dont_know_conversations"], report["known_conversations"]
  lines.append(f"wrote {dont_know} \"I don't know\" and {known} known-answer conversations to "
               f"{report['conversations_file']}")
  return "\n".join(lines)


def run_probe(loaded, probe_config, workdir: str, model_workdir: str = "") -> dict:
  """Probes `loaded` on the probe and held-out questions; writes the conversations, answers and report."""
  c = probe_config
  if c.samples_per_question < 1:
    raise ConfigError(f"config.probe.samples_per_question={c.samples_per_question} must be at least 1")
  asked, heldout = probe_questions(c)
  sampling = SamplingParams(max_new_tokens=c.max_new_tokens, temperature=c.temperature, top_k=c.top_k,
                            seed=c.seed)
  probed = probe(loaded, asked + heldout, c.samples_per_question, sampling, c.batch_size, c.system,
                 desc="probe", style=c.prompt)
  on_asked, on_heldout = probed[:len(asked)], probed[len(asked):]
  dont_know = dont_know_conversations(on_asked, c.wrong_threshold, c.system)
  known = known_conversations(on_asked, c.known_threshold, c.system) if c.keep_known else []
  fs.makedirs(workdir)
  conversations_file = os.path.join(workdir, "idk_conversations.jsonl")
  _write_jsonl(conversations_file, ({"messages": m} for m in dont_know + known))
  _write_jsonl(os.path.join(workdir, "probe_answers.jsonl"),
               ({"set": "probe" if i < len(asked) else "heldout", **dataclasses.asdict(p.qa),
                 "replies": p.replies, "verdicts": p.verdicts} for i, p in enumerate(probed)))
  report = {"model_workdir": model_workdir, "step": int(loaded.step),
            "samples_per_question": c.samples_per_question,
            "probe": summarize(on_asked, c.wrong_threshold),
            "heldout": summarize(on_heldout, c.wrong_threshold),
            "dont_know_conversations": len(dont_know), "known_conversations": len(known),
            "conversations_file": conversations_file, "config": c.to_dict()}
  fs.write_text(os.path.join(workdir, REPORT_FILE), json.dumps(report, indent=2))
  print(format_report(report))
  return report


def run(config, workdir: str) -> dict:
  """Probes the latest checkpoint of config.probe.model_workdir (with that run's own config and tokenizer)."""
  from lmjax.config import load_saved_config
  from lmjax.infer.load import load_model
  model_workdir = config.probe.model_workdir
  if not model_workdir:
    raise ConfigError("config.probe.model_workdir is empty; "
                      "set it to the run to probe, e.g. runs/quickstart_sft")
  loaded = load_model(load_saved_config(model_workdir), model_workdir)
  return run_probe(loaded, config.probe, workdir, model_workdir)
