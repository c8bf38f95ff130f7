"""The tools: the calculator computes arithmetic and refuses or cuts off anything else within bounded time;
search finds a planted passage among the shipped corpus from a paraphrase, with BM25 scores and a fixed
order."""
import concurrent.futures
import json
import math
import os
import pathlib
import signal
import subprocess
import sys
import time

import pytest

from lmjax.infer import tools
from lmjax.infer.tools import calculator as calc
from lmjax.infer.tools.search import SearchIndex, make_search_tool, passages
from tests.conftest import CORPUS


@pytest.mark.parametrize("expression, expected", [
    ("(3*4+2)/7", "2.0"), ("2**10", "1024"), ("sqrt(16)", "4.0"), ("17 // 5", "3"), ("round(2.5)", "2"),
    ("1e3 * 2", "2000.0"), ("-7 % 3", "2"), ("max(1, 2.5, -3) <= 2.5 < 3", "True"),
    ("floor(pi * 100)", "314"),
    ("round(e, 3)", "2.718"), (" 2 ** -1 \n", "0.5"), ("abs(-2**62)", str(2**62)),
])
def test_calculator_computes_arithmetic(expression, expected):
  assert tools.TOOLS["calculator"](expression) == expected


@pytest.mark.parametrize("expression, error", [
    ("__import__('os')", "error: names are not allowed: __import__"),
    ("__import__('os').system('echo pwned')", "error: "),
    ("().__class__.__bases__", "error: attribute access is not allowed: .__bases__"),
    ("open('/etc/passwd')", "error: names are not allowed: open"),
    ("9**9**9**9", "error: result too large: about 3.7e+08 digits"),
    ("10**1000000000", "error: result too large: about 1e+09 digits"),
    ("(10**9999) * (10**9999)", "error: result too large: over 10,000 digits"),
    ("round(5, -10**9)", "error: round() ndigits must be an integer between -1000 and 1000"),
    ("9" * 5000, "error: expression too long: 5,000 characters"),
    ("(" * 300 + "1" + ")" * 300, "error: not a valid expression"),
    ("'a' * 10**9", "error: only numbers are allowed, not str"),
    ("[9] * 10**9", "error: not allowed in an arithmetic expression: List"),
    ("lambda: 1", "error: not allowed in an arithmetic expression: Lambda"),
    ("[x for x in range(10**9)]", "error: not allowed in an arithmetic expression: ListComp"),
    ("sqrt(4)(2)", "error: only named functions can be called"),
    ("1 if 1 else 2", "error: not allowed in an arithmetic expression: IfExp"),
    ("1 << 10**9", "error: operator not allowed: LShift"),
    ("1/0", "error: division by zero"), ("10.0**400", "error: overflow"),
    ("(-8)**0.5", "error: the result is not a real number"), ("sqrt(-1)", "error: math domain error"),
    ("import os", "error: not a valid expression"), ("x = 1", "error: not a valid expression"),
])
def test_calculator_refuses_or_cuts_off_with_an_error_string_in_bounded_time(expression, error):
  start = time.perf_counter()
  answer = tools.TOOLS["calculator"](expression)
  assert time.perf_counter() - start < 5
  assert answer.startswith(error), answer


def test_static_refusals_never_reach_a_worker(monkeypatch):
  monkeypatch.setattr(calc, "shared_pool", lambda: pytest.fail("a refusal asked for a worker"))
  assert calc.calculator("__import__('os')").startswith("error: names are not allowed: __import__")


SLOW = "10**10**7 % 7"  # ~10 s of CPU once the digit bound is loosened: a stand-in for a call that runs away


def loose_pool(cpu_seconds: int) -> calc.Pool:
  """One worker that lets SLOW through the digit bound, so the CPU bound and the backstop get tested."""
  return calc.Pool(size=1, cpu_seconds=cpu_seconds, max_digits=10**8)


def test_a_call_over_its_cpu_bound_answers_an_error_and_the_pool_goes_on():
  pool = loose_pool(cpu_seconds=1)
  try:
    assert pool.call(SLOW).startswith("error: the calculator stopped (killed by SIGXCPU; over its CPU")
    assert pool.call("2**10") == "1024"
  finally:
    pool.close()


def test_the_cpu_bound_is_per_call_not_per_worker():
  pool = loose_pool(cpu_seconds=1)
  try:
    answers = [pool.call("10**10**6 % 7") for _ in range(10)]  # ~0.25 s of CPU each, 2.5 s in all
    assert answers == [str(pow(10, 10**6, 7))] * 10 and len(pool.pids()) == 1
  finally:
    pool.close()


def test_a_call_past_the_wall_clock_backstop_is_cut_off_and_its_worker_replaced():
  pool = loose_pool(cpu_seconds=30)
  try:
    start = time.perf_counter()
    assert pool.call("2+2") == "4"
    first = pool.pids()
    assert pool.call(SLOW, timeout=0.5) == "error: timed out after 0.5 seconds"
    assert time.perf_counter() - start < 5 and pool.pids() == []
    assert pool.call("2+2") == "4" and pool.pids() != first
  finally:
    pool.close()


def test_a_killed_worker_is_replaced_and_only_its_call_answers_an_error():
  pool = loose_pool(cpu_seconds=30)
  try:
    with concurrent.futures.ThreadPoolExecutor(1) as threads:
      slow = threads.submit(pool.call, SLOW)
      while not pool.pids():
        time.sleep(0.01)
      [killed] = pool.pids()
      time.sleep(0.2)
      os.kill(killed, signal.SIGKILL)
      assert slow.result(timeout=10).startswith("error: the calculator stopped (killed by SIGKILL")
    assert pool.call("6*7") == "42" and pool.pids() != [killed]
  finally:
    pool.close()


def test_a_worker_that_died_while_idle_is_replaced_without_an_error():
  pool = calc.Pool(size=1)
  try:
    assert pool.call("1+1") == "2"
    [idle] = pool.pids()
    os.kill(idle, signal.SIGKILL)
    time.sleep(0.2)
    assert pool.call("1+2") == "3" and pool.pids() != [idle]
  finally:
    pool.close()


def test_concurrent_calls_from_eight_threads_get_their_own_answers():
  expressions = [f"{i} * {i} + 1" for i in range(64)]
  with concurrent.futures.ThreadPoolExecutor(8) as threads:
    assert list(threads.map(calc.calculator, expressions)) == [str(i * i + 1) for i in range(64)]
  assert 1 <= len(calc.shared_pool().pids()) <= calc.POOL_SIZE


def _alive(pid: int) -> bool:
  try:
    with open(f"/proc/{pid}/status") as f:
      return "\tZ" not in next(line for line in f if line.startswith("State:"))  # a zombie is gone
  except FileNotFoundError:
    return False


@pytest.mark.parametrize("ending", ["pass", "os.kill(os.getpid(), signal.SIGKILL)"])
def test_workers_end_with_their_parent(ending):
  script = ("import os, signal; from lmjax.infer.tools import calculator as c; c.calculator('1+1'); "
            f"print(c.shared_pool().pids(), flush=True); {ending}")
  done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                        cwd=pathlib.Path(__file__).parents[2])
  pids = json.loads(done.stdout)
  assert len(pids) == 1
  deadline = time.monotonic() + 10
  while any(map(_alive, pids)) and time.monotonic() < deadline:
    time.sleep(0.05)
  assert not any(map(_alive, pids))


def test_calculator_truncates_long_results_with_a_note():
  answer = calc.calculator("7**10000")  # 8,451 digits: under the digit limit, over the output limit
  digits = math.floor(10_000 * math.log10(7)) + 1
  assert answer.startswith(str(7**10000 // 10**(digits - 50)))
  assert answer.endswith(f"... (truncated: {digits:,} characters in all)")
  assert len(answer) < calc.MAX_OUTPUT_CHARS + 100


def test_calculator_works_off_the_main_thread():
  with concurrent.futures.ThreadPoolExecutor(2) as pool:
    assert list(pool.map(calc.calculator, ["2**10", "9**9**9**9"])) == [
        "1024", "error: result too large: about 3.7e+08 digits (the limit is 10,000)"]


def test_run_tool_never_raises_and_caps_output():
  def broken(_):
    raise RuntimeError("bug")
  table = tools.make_tools(broken=broken, loud=lambda text: text * 10_000, silent=lambda text: None)
  assert tools.run_tool(table, "nope", "1").startswith("error: unknown tool 'nope'; the tools are broken,")
  assert tools.run_tool(table, "broken", "1") == "error: the broken tool failed: RuntimeError: bug"
  assert tools.run_tool(table, "silent", "1") == "error: the silent tool returned NoneType, not text"
  assert tools.run_tool(table, "loud", "ab").endswith("(truncated: 20,000 characters in all)")
  assert tools.run_tool(table, "calculator", "2+2") == "4"
  assert set(tools.TOOLS) == {"calculator"}  # make_tools made a new table


PLANTED = ("The keeper of the Skerryvore lighthouse paints his spiral staircase violet on every autumn "
           "equinox, using exactly forty-two tins of paint.")


@pytest.fixture(scope="module")
def corpus_index():
  """The whole shipped corpus plus one document with the planted sentence in the middle of real text."""
  filler = "Once upon a time there was a quiet harbour town where the fishermen mended their nets. " * 30
  planted = {"id": "planted/0", "title": "Harbour notes", "text": f"{filler}\n{PLANTED}\n{filler}"}
  return SearchIndex.build([str(CORPUS / "bible_kjv.jsonl.gz"), str(CORPUS / "botchan.jsonl.gz"), planted,
                            str(CORPUS / "fortunes.jsonl.gz"), str(CORPUS / "python_docs.jsonl.gz"),
                            str(CORPUS / "fortunes_de_es.jsonl.gz")])


@pytest.mark.parametrize("query", [
    "What colour does the lighthouse keeper paint the stairs each autumn?",
    "how many tins of paint for the spiral staircase",
])
def test_search_finds_the_planted_passage_from_a_paraphrase(corpus_index, query):
  score, passage, source = corpus_index.search(query, k=3)[0]
  assert source == "planted/0" and PLANTED in passage and score > 0
  text = make_search_tool(corpus_index)(query)
  assert text.startswith("[1] Harbour notes — planted/0\n") and "violet" in text and "\n\n[2] " in text


def test_search_scores_are_bm25(corpus_index):
  docs = [{"id": "a", "text": "the cat sat on the mat"}, {"id": "b", "text": "the dog sat"},
          {"id": "c", "text": "a cat and a cat and a dog"}]
  index = SearchIndex.build(docs)
  lengths = [6, 3, 8]
  avg = sum(lengths) / 3

  def bm25(tf, df, length):
    return math.log(1 + (3 - df + 0.5) / (df + 0.5)) * tf * 2.5 / (tf + 1.5 * (0.25 + 0.75 * length / avg))

  expected = {"c": bm25(2, 2, 8) + bm25(1, 2, 8), "a": bm25(1, 2, 6), "b": bm25(1, 2, 3)}
  hits = index.search("cat dog cat", k=5)
  assert [source for _, _, source in hits] == sorted(expected, key=lambda s: -expected[s])
  for score, _, source in hits:
    assert score == pytest.approx(expected[source], rel=1e-12)


def test_search_order_is_deterministic_with_ties_to_the_earlier_passage(corpus_index):
  same = [{"id": f"copy{k}", "text": "identical words in every copy"} for k in range(5)]
  index = SearchIndex.build(same + [{"id": "other", "text": "words"}])
  assert [source for _, _, source in index.search("identical copy", k=4)] == [
      "copy0", "copy1", "copy2", "copy3"]
  query = "the lord said unto moses"
  assert corpus_index.search(query, k=10) == corpus_index.search(query, k=10)
  scores = [score for score, _, _ in corpus_index.search(query, k=10)]
  assert scores == sorted(scores, reverse=True)


def test_search_tool_answers_empty_and_unmatched_queries_with_text():
  tool = make_search_tool(SearchIndex.build([{"text": "some words"}]))
  assert tool("   ") == "error: empty search query; write the words to look for"
  assert tool("zzyzx") == "no passages match 'zzyzx'"
  assert tool("x" * 600).startswith("error: search query too long")
  assert tool("WORDS!") == "[1] doc0\nsome words"


def test_passages_are_overlapping_windows_of_the_original_text():
  words = [f"w{i}" for i in range(250)]
  chunks = passages(" ".join(words[:125]) + "\n\n" + " ".join(words[125:]))
  assert [c.split() for c in chunks] == [words[0:100], words[80:180], words[160:250]]
  assert "w124\n\nw125" in chunks[1]
  assert passages("short text") == ["short text"] and passages("  \n") == []


def test_a_malicious_call_gets_an_error_output_and_the_reply_goes_on(tokens_workdir):
  """What the engine does between segments, without a model: pending call → tool → output tokens → parse."""
  from lmjax import chat
  from lmjax.data.tokenizer import Tokenizer
  tok = Tokenizer(str(tokens_workdir / "tokenizer.model"))
  t = chat.chat_tokens(tok)
  generated = [*tok.encode("Let me check."), t.tool_call_start, *tok.encode("calculator\n__import__('os')"),
               t.tool_call_end]
  assert generated[-1] in t.stops
  name, tool_input = chat.tool_call_pending(generated, tok)
  start = time.perf_counter()
  output = tools.run_tool(tools.make_tools(), name, tool_input)
  assert time.perf_counter() - start < 5 and output.startswith("error: names are not allowed: __import__")
  generated += chat.render_tool_output(output, tok) + tok.encode("I cannot do that.") + [t.assistant_end]
  assert chat.tool_call_pending(generated, tok) is None
  assert chat.parse_reply(generated, tok)["content"] == [
      {"type": "text", "text": "Let me check."},
      {"type": "tool_call", "tool": "calculator", "input": "__import__('os')"},
      {"type": "tool_output", "output": output},
      {"type": "text", "text": "I cannot do that."}]
