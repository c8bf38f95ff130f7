"""The calculator tool: arithmetic on a whitelisted subset of Python expressions, always answering a string.

    calculator("(3*4+2)/7") == "2.0"
    calculator("__import__('os')").startswith("error: names are not allowed: __import__")

Nothing is ever passed to eval: the expression is parsed with `ast`, every node checked against a whitelist
(number literals, + - * / // % **, unary +/-, comparisons, a few math functions and constants), then walked by
a small evaluator that refuses a power before computing it when its result would pass MAX_DIGITS. As a second
wall, the evaluation runs in a small persistent pool of sandboxed workers (`python -I -S` of this file, with a
memory rlimit and a CPU-time rlimit renewed per call), so a call costs a pipe round trip, not an interpreter
start. A worker that passes its bounds, dies or misses the parent's wall-clock backstop (`timeout`) is killed,
its call answers an error and a fresh worker takes its slot; the pool works from any thread. Errors come back
as "error: ..." strings for the model to read; refusals found by the static check never reach a worker.
"""
import ast
import atexit
import json
import math
import operator
import os
import queue
import select
import signal
import subprocess
import sys
import threading
import time
import warnings

MAX_INPUT_CHARS = 1_000
MAX_OUTPUT_CHARS = 1_000
MAX_DIGITS = 10_000  # largest integer result, in decimal digits
CPU_SECONDS = 2  # CPU time a worker may spend on one call (to +1 s): what decides that it takes too long
TIMEOUT_SECONDS = 60.0  # the parent's wall-clock backstop, for a worker a loaded machine never runs
MEMORY_BYTES = 512 * 2**20  # a worker's address space
POOL_SIZE = 4  # workers per process: rollouts run tool calls from a few threads at once
MAX_REPLY_BYTES = 16 * MAX_OUTPUT_CHARS + 1_000  # a worker's reply line: the JSON-escaped, capped answer

BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
          ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}
UNARY = {ast.UAdd: operator.pos, ast.USub: operator.neg}
COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
           ast.Gt: operator.gt, ast.GtE: operator.ge}
CONSTANTS = {"pi": math.pi, "e": math.e}


def _round(x, ndigits=None):
  if ndigits is not None and (not isinstance(ndigits, int) or abs(ndigits) > 1000):
    raise ValueError("round() ndigits must be an integer between -1000 and 1000")
  return round(x, ndigits)


FUNCTIONS = {"abs": abs, "round": _round, "min": min, "max": max, "sqrt": math.sqrt, "floor": math.floor,
             "ceil": math.ceil, "exp": math.exp, "log": math.log, "log2": math.log2, "log10": math.log10,
             "sin": math.sin, "cos": math.cos, "tan": math.tan, "atan": math.atan}


class Refused(Exception):
  """An expression outside the whitelist or over a bound; its message is what the model reads."""


def check(tree: ast.AST) -> None:
  """Raises Refused at the first node outside the whitelist."""
  for node in ast.walk(tree):
    if isinstance(node, (ast.Expression, ast.Load, ast.BinOp, ast.UnaryOp, ast.Compare)):
      continue
    if isinstance(node, (ast.operator, ast.unaryop, ast.cmpop, ast.boolop)):
      if type(node) not in BINARY and type(node) not in UNARY and type(node) not in COMPARE:
        raise Refused(f"operator not allowed: {type(node).__name__}")
    elif isinstance(node, ast.Constant):
      if type(node.value) not in (int, float):
        raise Refused(f"only numbers are allowed, not {type(node.value).__name__} {node.value!r:.40}")
    elif isinstance(node, ast.Call):
      if not isinstance(node.func, ast.Name):
        if isinstance(node.func, ast.Attribute):
          continue  # reported as attribute access below
        raise Refused("only named functions can be called")
      if node.func.id not in FUNCTIONS:
        raise Refused(f"names are not allowed: {node.func.id:.40} (functions: {', '.join(FUNCTIONS)})")
      if node.keywords or any(isinstance(a, ast.Starred) for a in node.args):
        raise Refused(f"{node.func.id}() takes plain positional arguments only")
    elif isinstance(node, ast.Name):
      if node.id not in CONSTANTS and node.id not in FUNCTIONS:
        raise Refused(f"names are not allowed: {node.id:.40} (constants: {', '.join(CONSTANTS)})")
    elif isinstance(node, ast.Attribute):
      raise Refused(f"attribute access is not allowed: .{node.attr:.40}")
    elif isinstance(node, ast.Subscript):
      raise Refused("subscripts are not allowed")
    else:
      raise Refused(f"not allowed in an arithmetic expression: {type(node).__name__}")


def _power(base, exponent):
  if isinstance(base, int) and isinstance(exponent, int) and exponent > 0 and abs(base) > 1:
    digits = exponent * math.log10(abs(base))
    if digits > MAX_DIGITS:
      raise Refused(f"result too large: about {digits:.3g} digits (the limit is {MAX_DIGITS:,})")
  return base ** exponent


def _bounded(value):
  if isinstance(value, int) and value.bit_length() > MAX_DIGITS * 3.33:
    raise Refused(f"result too large: over {MAX_DIGITS:,} digits")
  if isinstance(value, complex):
    raise Refused("the result is not a real number")
  return value


def evaluate(node: ast.AST):
  """Value of a checked expression tree; raises Refused, ArithmeticError, ValueError or TypeError."""
  if isinstance(node, ast.Expression):
    return evaluate(node.body)
  if isinstance(node, ast.Constant):
    return node.value
  if isinstance(node, ast.Name):
    if node.id in CONSTANTS:
      return CONSTANTS[node.id]
    raise Refused(f"{node.id} is a function; call it, as in {node.id}(2)")
  if isinstance(node, ast.UnaryOp):
    return _bounded(UNARY[type(node.op)](evaluate(node.operand)))
  if isinstance(node, ast.BinOp):
    left, right = evaluate(node.left), evaluate(node.right)
    if isinstance(node.op, ast.Pow):
      return _bounded(_power(left, right))
    return _bounded(BINARY[type(node.op)](left, right))
  if isinstance(node, ast.Compare):
    left = evaluate(node.left)
    for op, right_node in zip(node.ops, node.comparators):
      right = evaluate(right_node)
      if not COMPARE[type(op)](left, right):
        return False
      left = right
    return True
  if isinstance(node, ast.Call):
    return _bounded(FUNCTIONS[node.func.id](*[evaluate(a) for a in node.args]))
  raise Refused(f"not allowed: {type(node).__name__}")


def parse(expression: str) -> ast.Expression:
  """The checked tree of an expression; raises Refused for anything too long, unparsable or not allowed."""
  if len(expression) > MAX_INPUT_CHARS:
    raise Refused(f"expression too long: {len(expression):,} characters (the limit is {MAX_INPUT_CHARS:,})")
  try:
    with warnings.catch_warnings():  # "3x" warns "invalid decimal literal" before failing; the error says it
      warnings.simplefilter("ignore", SyntaxWarning)
      tree = ast.parse(expression.strip(), mode="eval")
  except SyntaxError as e:
    raise Refused(f"not a valid expression: {e.msg}") from None
  except (RecursionError, MemoryError, ValueError):
    raise Refused("expression too deeply nested") from None
  check(tree)
  return tree


def _format(value) -> str:
  text = str(value)
  if len(text) > MAX_OUTPUT_CHARS:
    text = f"{text[:MAX_OUTPUT_CHARS]}... (truncated: {len(text):,} characters in all)"
  return text


def compute(expression: str) -> str:
  """The answer (or "error: ...") computed in this process: the evaluation a worker runs for `calculator`."""
  try:
    return _format(evaluate(parse(expression)))
  except Refused as e:
    return f"error: {e}"
  except ZeroDivisionError:
    return "error: division by zero"
  except OverflowError:
    return "error: overflow: the result is out of the range of a float"
  except (ArithmeticError, ValueError, TypeError) as e:
    return f"error: {e}"
  except RecursionError:
    return "error: expression too deeply nested"


def calculator(expression: str, timeout: float = TIMEOUT_SECONDS) -> str:
  """The value of an arithmetic expression as text, or "error: ..."; never raises, returns within ~timeout."""
  try:
    parse(expression)  # cheap refusals without touching a worker
  except Refused as e:
    return f"error: {e}"
  return shared_pool().call(expression, timeout)


class WorkerFailed(Exception):
  """A worker died, timed out or broke the protocol; its message is what the model reads."""


class Pool:
  """`size` sandboxed worker processes (`python -I -S` of this file), thread-safe, each started on first use.

  A call checks out an idle worker (waiting while all are busy), sends it one JSON line and reads one back. A
  worker that dies, times out or breaks the protocol is killed and its call answers "error: ...": the next
  call through that slot starts a fresh worker. Workers exit by themselves when their stdin closes, so none
  outlives this process. `cpu_seconds` and `max_digits` are the workers' bounds (tests loosen them).
  """

  def __init__(self, size: int = POOL_SIZE, cpu_seconds: int = CPU_SECONDS, max_digits: int = MAX_DIGITS):
    self.argv = [sys.executable, "-I", "-S", os.path.abspath(__file__), "--worker", str(cpu_seconds),
                 str(max_digits)]
    self._idle = queue.LifoQueue()  # last in, first out: a serial caller keeps reusing one warm worker
    for _ in range(size):
      self._idle.put(None)  # a slot whose worker is not running yet (or any more)
    self._live = set()
    self._lock = threading.Lock()

  def call(self, expression: str, timeout: float = TIMEOUT_SECONDS) -> str:
    """A worker's answer for `expression`, or "error: ..." when the worker failed; never raises."""
    worker = self._idle.get()
    try:
      if worker is None or worker.poll() is not None:  # not started, or died while idle: not this call's fault
        self._discard(worker)
        worker = None
        try:
          worker = self._start()
        except OSError as e:
          return f"error: could not start the calculator: {e}"
      try:
        return _exchange(worker, expression, timeout)
      except (WorkerFailed, OSError) as e:
        self._discard(worker)
        worker = None
        return f"error: {e}"
    finally:
      self._idle.put(worker)

  def pids(self) -> list[int]:
    """Process ids of the running workers, for logs and tests."""
    with self._lock:
      return sorted(w.pid for w in self._live)

  def close(self) -> None:
    """Ends every worker: closes its stdin (it exits at the end of its current call), kills any that lingers."""
    with self._lock:
      workers, self._live = list(self._live), set()
    for worker in workers:
      _close_quietly(worker.stdin)
    for worker in workers:
      try:
        worker.wait(timeout=1)
      except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
      _close_quietly(worker.stdout)

  def _start(self) -> subprocess.Popen:
    worker = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.DEVNULL)
    with self._lock:
      self._live.add(worker)
    return worker

  def _discard(self, worker: subprocess.Popen | None) -> None:
    if worker is None:
      return
    with self._lock:
      self._live.discard(worker)
    worker.kill()
    worker.wait()
    _close_quietly(worker.stdin)
    _close_quietly(worker.stdout)


def _close_quietly(pipe) -> None:
  try:
    pipe.close()
  except OSError:  # a flush into a dead worker's pipe
    pass


def _exchange(worker: subprocess.Popen, expression: str, timeout: float) -> str:
  """Sends one expression, reads one reply line within `timeout` seconds; raises WorkerFailed otherwise."""
  try:
    worker.stdin.write(json.dumps(expression).encode("ascii") + b"\n")
    worker.stdin.flush()
  except OSError:
    raise WorkerFailed(_stopped(worker)) from None
  deadline, reply, fd = time.monotonic() + timeout, b"", worker.stdout.fileno()
  while not reply.endswith(b"\n"):
    left = deadline - time.monotonic()
    if left <= 0 or not select.select([fd], [], [], left)[0]:
      raise WorkerFailed(f"timed out after {timeout:g} seconds")
    chunk = os.read(fd, MAX_REPLY_BYTES)
    if not chunk:
      raise WorkerFailed(_stopped(worker))
    reply += chunk
    if len(reply) > MAX_REPLY_BYTES:
      raise WorkerFailed(f"the calculator's reply passed {MAX_REPLY_BYTES:,} bytes")
  try:
    answer = json.loads(reply)
  except ValueError:
    answer = None
  if not isinstance(answer, str):
    raise WorkerFailed("the calculator replied out of protocol")
  return answer


def _stopped(worker: subprocess.Popen) -> str:
  try:
    code = worker.wait(timeout=1)
  except subprocess.TimeoutExpired:
    code = None
  how = f"killed by {signal.Signals(-code).name}" if code is not None and code < 0 else f"exit code {code}"
  return f"the calculator stopped ({how}; over its CPU or memory limit?)"


_pools: dict[int, Pool] = {}  # process id -> its pool: a forked child must not share its parent's workers
_pools_lock = threading.Lock()


def shared_pool() -> Pool:
  """This process's pool, made on the first call (never at import) and closed at interpreter exit."""
  with _pools_lock:
    pool = _pools.get(os.getpid())
    if pool is None:
      pool = _pools[os.getpid()] = Pool()
      atexit.register(pool.close)
    return pool


def _set_limit(resource, limit: int, soft: int, hard: int) -> None:
  try:
    resource.setrlimit(limit, (soft, hard))
  except (ValueError, OSError):  # some systems refuse (macOS, RLIMIT_AS); the parent's timeout still holds
    pass


def _worker(cpu_seconds: int, max_digits: int) -> None:
  """A worker's side: memory limit once, then per stdin line a JSON expression in and a JSON answer out.

  Before each evaluation the CPU limit moves to this process's CPU time so far plus `cpu_seconds` (rounded
  up to whole seconds, as rlimits are), so every call gets the same bound and SIGXCPU ends one that passes
  it. It is CPU time, not the wall clock, so a busy machine never turns a right answer into an error. The
  loop ends when stdin closes, that is when the parent closes the pool or dies.
  """
  import resource
  global MAX_DIGITS
  MAX_DIGITS = max_digits
  _set_limit(resource, resource.RLIMIT_AS, MEMORY_BYTES, MEMORY_BYTES)
  _set_limit(resource, resource.RLIMIT_CORE, 0, 0)  # a worker ended by SIGXCPU leaves no core file
  sys.set_int_max_str_digits(0)  # results are bounded by MAX_DIGITS, above Python's 4,300-digit default
  for line in sys.stdin.buffer:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    hard = resource.getrlimit(resource.RLIMIT_CPU)[1]
    soft = math.ceil(usage.ru_utime + usage.ru_stime) + cpu_seconds
    _set_limit(resource, resource.RLIMIT_CPU, soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard)
    sys.stdout.write(json.dumps(compute(json.loads(line))) + "\n")
    sys.stdout.flush()


if __name__ == "__main__":
  _worker(int(sys.argv[2]), int(sys.argv[3]))  # calculator.py --worker CPU_SECONDS MAX_DIGITS
