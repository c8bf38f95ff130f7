"""python experiments/benchmarks/calculator_pool.py [--calls 400] [--threads 1 4]

Calculator calls/s through lmjax's persistent worker pool vs a fresh sandboxed interpreter per call (what
the tool did before the pool: the same `python -I -S calculator.py` with the same limits, started for one
expression and ended), both timed in this run on the same mixed expressions, serially and from a few
threads (RL rollouts run tool calls from a thread pool). The pool is warmed up first: its workers start
once per process. Answers of both must be equal (asserted).

Measured 2026-12 on the 2-core CI machine (AMD EPYC, shared, load ~1), Python 3.11.7, pool of 4 workers:

    1 thread(s): pool 4,454 calls/s, fresh process 15.4 calls/s, ratio 290x
    4 thread(s): pool 5,703 calls/s, fresh process 22.0 calls/s, ratio 259x
"""
import argparse
import concurrent.futures
import json
import os
import pathlib
import platform
import subprocess
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from lmjax.infer.tools import calculator as calc  # noqa: E402

EXPRESSIONS = ["(3*4+2)/7", "2**100", "sqrt(2) * pi", "17 // 5 + 3 % 2", "round(e, 3)", "7**1000 % 13",
               "max(1, 2.5, -3) <= 2.5 < 3", "1/0"]


def machine() -> str:
  model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if "model name" in line), "?")
  return f"{model}, {os.cpu_count()} cores, {platform.system()}, Python {platform.python_version()}"


def fresh_process(expression: str) -> str:
  """The reference: one sandboxed worker started for this expression alone, ended when its stdin closes."""
  argv = [sys.executable, "-I", "-S", calc.__file__, "--worker", str(calc.CPU_SECONDS), str(calc.MAX_DIGITS)]
  done = subprocess.run(argv, input=(json.dumps(expression) + "\n").encode(), capture_output=True,
                        timeout=calc.TIMEOUT_SECONDS, check=True)
  return json.loads(done.stdout)


def calls_per_second(call, expressions: list[str], threads: int) -> tuple[float, list[str]]:
  start = time.perf_counter()
  with concurrent.futures.ThreadPoolExecutor(threads) as pool:
    answers = list(pool.map(call, expressions))
  return len(expressions) / (time.perf_counter() - start), answers


def main():
  parser = argparse.ArgumentParser()
  parser.add_argument("--calls", type=int, default=400, help="calls through the pool per setting")
  parser.add_argument("--fresh-calls", type=int, default=40, help="calls with a fresh process per setting")
  parser.add_argument("--threads", type=int, nargs="+", default=[1, 4])
  args = parser.parse_args()
  print(f"machine: {machine()}; pool of {calc.POOL_SIZE} workers")
  pool = calc.shared_pool()
  calls_per_second(pool.call, EXPRESSIONS * calc.POOL_SIZE, calc.POOL_SIZE)  # start every worker
  for threads in args.threads:
    many = [EXPRESSIONS[i % len(EXPRESSIONS)] for i in range(args.calls)]
    few = many[:args.fresh_calls]
    pool_rate, pool_answers = calls_per_second(pool.call, many, threads)
    fresh_rate, fresh_answers = calls_per_second(fresh_process, few, threads)
    assert pool_answers[:len(few)] == fresh_answers, (pool_answers, fresh_answers)
    print(f"{threads} thread(s): pool {pool_rate:,.0f} calls/s, fresh process {fresh_rate:,.1f} calls/s, "
          f"ratio {pool_rate / fresh_rate:,.0f}x")
  print(f"load average {os.getloadavg()[0]:.2f} at end on {os.cpu_count()} cores")


if __name__ == "__main__":
  main()
