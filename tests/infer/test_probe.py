"""Knowledge probing: replies judged correct / abstained / wrong, the consistently wrong questions turned into
"I don't know" conversations that SFT reads back, and the whole probe on a tiny model trained in-process to
answer one question, abstain on another and get a third wrong."""
import json

import pytest

from configs import base
from lmjax import chat, cli
from lmjax.config import ConfigError
from lmjax.data.chat_pipeline import read_conversations
from lmjax.data.posttrain.conversations import DONT_KNOW
from lmjax.data.posttrain.qa_facts import QA
from lmjax.data.posttrain.sources import load_sources
from lmjax.data.tokenizer import Tokenizer
from lmjax.infer import probe
from lmjax.infer.engine import Reply
from lmjax.infer.load import LoadedModel
from tests.conftest import cli_error, tiny_config
from tests.recite import recite


@pytest.mark.parametrize("reply, answer, expected", [
    ("It is light.", "light", "correct"),
    ("I know this one: Genesis!", "Genesis", "correct"),
    ("Song of Solomon", "song of solomon", "correct"),
    (DONT_KNOW, "that", "abstain"),  # the answer is a word of the abstention: still no answer
    ("I do not know.", "Exodus", "abstain"),
    ("Hmm, I'm not sure. Maybe Exodus?", "Exodus", "abstain"),
    ("I have no idea", "31", "abstain"),
    ("Leviticus.", "Exodus", "wrong"),
    ("Genesisx", "Genesis", "wrong"),  # whole words only
    ("I knowingly say 31", "13", "wrong"),
    ("", "light", "wrong"),
])
def test_verdict_tells_correct_abstained_and_wrong_replies_apart(reply, answer, expected):
  assert probe.verdict(reply, answer) == expected


def _probed(question: str, kind: str, replies_and_verdicts) -> probe.Probed:
  replies, verdicts = zip(*replies_and_verdicts)
  return probe.Probed(QA(question, "x", kind, "doc"), replies, verdicts)


PROBED = [
    _probed("Q wrong?", "a", [("no", "wrong")] * 4),
    _probed("Q once?", "a", [("x is it", "correct"), ("no", "wrong"), ("no", "wrong"), ("no", "wrong")]),
    _probed("Q declined?", "b", [(DONT_KNOW, "abstain")] * 4),
    _probed("Q known?", "b", [("it is x, surely", "correct"), ("x", "correct"), ("x!", "correct"),
                              ("y", "wrong")]),
]


def test_consistently_wrong_means_at_most_the_threshold_share_correct():
  assert [probe.consistently_wrong(p, 0.0) for p in PROBED] == [True, False, True, False]
  assert [probe.consistently_wrong(p, 0.25) for p in PROBED] == [True, True, True, False]


def test_summary_counts_add_up_overall_and_per_kind():
  summary = probe.summarize(PROBED, threshold=0.0)
  assert (summary["questions"], summary["samples"]) == (4, 16)
  assert (summary["correct"], summary["abstain"], summary["wrong"]) == (4, 4, 8)
  assert summary["accuracy"] == 4 / 16 and summary["abstention_rate"] == 4 / 16
  assert (summary["consistently_wrong"], summary["consistently_wrong_rate"]) == (2, 0.5)
  by_kind = summary["by_kind"]
  assert set(by_kind) == {"a", "b"}
  for key in ("questions", "samples", "correct", "abstain", "wrong", "consistently_wrong"):
    assert by_kind["a"][key] + by_kind["b"][key] == summary[key]
  assert by_kind["b"]["accuracy"] == 3 / 8
  assert probe.summarize([], 0.0)["accuracy"] == 0.0


def test_conversations_abstain_on_the_wrong_answer_the_known_and_round_trip_to_sft(tmp_path):
  dont_know = probe.dont_know_conversations(PROBED, 0.0, system="Be brief.")
  known = probe.known_conversations(PROBED, 0.5)
  assert [c[1]["content"] for c in dont_know] == ["Q wrong?", "Q declined?"]
  assert all(c[0] == {"role": "system", "content": "Be brief."} for c in dont_know)
  assert all(c[-1] == {"role": "assistant", "content": DONT_KNOW} for c in dont_know)
  # the shortest of the model's correct replies
  assert known == [[{"role": "user", "content": "Q known?"}, {"role": "assistant", "content": "x"}]]
  for conversation in dont_know + known:
    chat.validate(conversation)
  path = tmp_path / "idk_conversations.jsonl"
  path.write_text("".join(json.dumps({"messages": c}) + "\n" for c in dont_know + known))
  assert read_conversations(str(path)) == dont_know + known
  sft = base.get_config().sft
  sft.mixture.update(file=0.0, idk=1.0)
  sft.idk_conversations = str(path)
  assert load_sources(sft) == {"idk": dont_know + known}
  sft.idk_conversations = ""
  with pytest.raises(ConfigError, match="config.sft.idk_conversations is empty"):
    load_sources(sft)


def test_probe_and_heldout_questions_are_disjoint_and_fixed_by_the_config(tmp_path):
  c = base.get_config().probe
  c.update(questions=40, heldout_questions=30)
  asked, heldout = probe.probe_questions(c)
  assert (len(asked), len(heldout)) == (40, 30)
  assert not {q.question for q in asked} & {q.question for q in heldout}
  assert (asked, heldout) == probe.probe_questions(c)
  c.heldout_seed = c.seed  # even with one seed the two sets do not share a question
  assert not {q.question for q in asked} & {q.question for q in probe.probe_questions(c)[1]}
  qa_file = tmp_path / "qa.jsonl"
  lines = [json.dumps({"question": f"Q{i % 5}?", "answer": str(i)}) for i in range(9)]
  qa_file.write_text("\n".join(lines) + "\n")
  c.update(qa_file=str(qa_file), questions=3, heldout_questions=2)
  asked, heldout = probe.probe_questions(c)
  assert sorted(q.question for q in asked + heldout) == [f"Q{i}?" for i in range(5)]  # deduplicated by text
  c.heldout_questions = 3
  with pytest.raises(ConfigError, match="5 distinct questions"):
    probe.probe_questions(c)


def test_cli_probe_names_the_missing_model_workdir(tmp_path, capsys):
  error = cli_error(capsys, cli.main, ["probe", "--config", str(base.__file__), "--workdir", str(tmp_path)])
  assert "config.probe.model_workdir is empty" in error


# A model that answers the first question, declines the second and gets the third wrong.
TAUGHT = [({"question": "Which book comes first?", "answer": "Genesis"}, "Genesis."),
          ({"question": "What came on day one?", "answer": "light"}, DONT_KNOW),
          ({"question": "Which book comes after Genesis?", "answer": "Exodus"}, "Leviticus.")]
EXPECTED = ["correct", "abstain", "wrong"]


@pytest.fixture(scope="module")
def taught_model(tokens_workdir):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  config = tiny_config()
  config.train.update(steps=40, batch_size=4, seq_len=32)
  config.optim.update(lr=1e-2, weight_decay=0.0)
  conversations = [probe.messages_for(qa["question"]) + [{"role": "assistant", "content": reply}]
                   for qa, reply in TAUGHT]
  setup, state = recite(config, tok, conversations, max_loss=0.02)
  return LoadedModel(setup.graphdef, state.params, tok, config.train.steps)


def test_probe_on_a_tiny_model_writes_conversations_answers_and_a_report_that_add_up(taught_model, tmp_path):
  qa_file = tmp_path / "qa.jsonl"
  qa_file.write_text("".join(json.dumps(qa) + "\n" for qa, _ in TAUGHT))
  c = base.get_config().probe
  c.update(qa_file=str(qa_file), questions=2, heldout_questions=1, samples_per_question=3, batch_size=4,
           temperature=0.0, max_new_tokens=12)
  report = probe.run_probe(taught_model, c, str(tmp_path / "out"), model_workdir="tiny")

  answers = [json.loads(line) for line in open(tmp_path / "out" / "probe_answers.jsonl")]
  assert sorted(a["question"] for a in answers) == sorted(qa["question"] for qa, _ in TAUGHT)
  for qa, expected in zip((qa for qa, _ in TAUGHT), EXPECTED):
    [answer] = [a for a in answers if a["question"] == qa["question"]]
    assert answer["verdicts"] == [expected] * 3, answer["replies"]
  assert set(report) >= {"probe", "heldout", "dont_know_conversations", "known_conversations", "step"}
  for name, questions in (("probe", 2), ("heldout", 1)):
    s = report[name]
    assert (s["questions"], s["samples"]) == (questions, 3 * questions)
    assert s["correct"] + s["abstain"] + s["wrong"] == s["samples"]
    assert s["accuracy"] == s["correct"] / s["samples"]
    assert s["abstention_rate"] == s["abstain"] / s["samples"]
    assert sum(k["samples"] for k in s["by_kind"].values()) == s["samples"]

  asked = [a for a in answers if a["set"] == "probe"]
  written = read_conversations(str(tmp_path / "out" / "idk_conversations.jsonl"))
  wrong = [a["question"] for a in asked if "correct" not in a["verdicts"]]
  known = [a["question"] for a in asked if "correct" in a["verdicts"]]
  assert [c[0]["content"] for c in written] == wrong + known
  assert (report["dont_know_conversations"], report["known_conversations"]) == (len(wrong), len(known))
  assert all(c[-1]["content"] == DONT_KNOW for c in written[:len(wrong)])
  assert all(c[-1]["content"] == "Genesis." for c in written[len(wrong):])
  assert json.load(open(tmp_path / "out" / "probe_report.json")) == json.loads(json.dumps(report))


def test_a_base_model_is_asked_few_shot_and_its_answer_is_the_continuations_first_line(tokens_workdir):
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  prompt = probe.prompt_ids("Which book comes right after Exodus?", tok, "few_shot")
  assert prompt[0] == tok.bos_id
  text = tok.decode(prompt[1:])
  assert text.count("Question: ") == len(probe.FEW_SHOT) + 1 and text.endswith("Question: Which book comes "
                                                                                 "right after Exodus?\nAnswer:")
  assert chat.chat_tokens(tok).assistant_start not in prompt  # no chat protocol for a base model
  continuation = tok.encode(" Leviticus\n\nQuestion: Which book")
  reply = Reply(tuple(prompt), tuple(continuation), (True,) * len(continuation), 0)
  assert probe._reply_text(reply, tok, "few_shot") == "Leviticus"
  ended = tok.encode(" Numbers") + [tok.eos_id]
  assert probe._reply_text(Reply(tuple(prompt), tuple(ended), (True,) * len(ended), 0), tok, "few_shot") == "Numbers"
  with pytest.raises(ConfigError, match=r"config.probe.prompt='plain' .* \"few_shot\""):
    probe.prompt_ids("Q?", tok, "plain")
