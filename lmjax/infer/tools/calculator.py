"""The calculator tool: arithmetic on a whitelisted subset of Python expressions, always answering a string.

    calculator("(3*4+2)/7") == "2.0"
    calculator("__import__('os')").startswith("error: names are not allowed: __import__")

Nothing is ever passed to eval: the expression is parsed with `ast`, every node checked against a whitelist
(number literals, + - * / // % **, unary +/-, comparisons, a few math functions and constants), then walked by
a small evaluator that refuses a power before computing it when its result would pass MAX_DIGITS. As a second
wall, the evaluation runs in a fresh interpreter (`python -I -S` of this file, with CPU and memory rlimits)
killed after `timeout` seconds, which works from any thread. The CPU limit, not the wall clock, decides what
is too long, so a busy machine (RL rollouts beside other jobs) never turns a right answer into an error.
Errors come back as "error: ..." strings for the model to read; refusals found by the static check cost no
process.
"""
import ast
import math
import operator
import sys
import warnings

MAX_INPUT_CHARS = 1_000
MAX_OUTPUT_CHARS = 1_000
MAX_DIGITS = 10_000  # largest integer result, in decimal digits
CPU_SECONDS = 2  # the child's CPU-time limit: what decides that an expression takes too long
TIMEOUT_SECONDS = 60.0  # the parent's wall-clock backstop, for a child a loaded machine never runs
MEMORY_BYTES = 512 * 2**20

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
  """The answer (or "error: ...") computed in this process: the evaluation `calculator` runs in a child."""
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
  import subprocess  # here, not at the top: the child runs this file and starts faster without it
  try:
    parse(expression)  # cheap refusals without starting a process
  except Refused as e:
    return f"error: {e}"
  try:
    done = subprocess.run([sys.executable, "-I", "-S", __file__], input=expression.encode("utf-8"),
                          capture_output=True, timeout=timeout, check=False)
  except subprocess.TimeoutExpired:
    return f"error: timed out after {timeout:g} seconds"
  except OSError as e:
    return f"error: could not start the calculator: {e}"
  if done.returncode != 0 or not done.stdout:
    return f"error: the calculator stopped (exit code {done.returncode}; over its CPU or memory limit?)"
  return done.stdout.decode("utf-8")


def _child() -> None:
  """The child's side: limits on itself, the expression from stdin, the answer to stdout."""
  import resource
  limits = ((resource.RLIMIT_CPU, (CPU_SECONDS, CPU_SECONDS + 1)),
            (resource.RLIMIT_AS, (MEMORY_BYTES, MEMORY_BYTES)))
  for limit, value in limits:
    try:
      resource.setrlimit(limit, value)
    except (ValueError, OSError):  # some systems refuse (macOS, RLIMIT_AS); the parent's timeout still holds
      pass
  sys.set_int_max_str_digits(0)  # results are bounded by MAX_DIGITS, above Python's 4,300-digit default
  sys.stdout.buffer.write(compute(sys.stdin.buffer.read().decode("utf-8")).encode("utf-8"))


if __name__ == "__main__":
  _child()
