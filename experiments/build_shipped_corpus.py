"""python experiments/build_shipped_corpus.py --out lmjax/assets/corpus

Rebuilds the small real-text corpus shipped in `lmjax/assets/corpus/` (one `<source>.jsonl.gz` per
source) from Debian packages and the sentencepiece source distribution, after:

    apt-get install -y fortunes fortunes-de fortunes-es bible-kjv python3.11-doc

The sentencepiece sdist (for `botchan.txt`) is fetched with `pip download` unless `--sentencepiece-sdist`
names a local copy. Same packages in, byte-identical files out: inputs are sorted, subsets are chosen by
fixed rules, and gzip headers carry no name or timestamp. What each file holds, and its licence, is in
`lmjax/assets/corpus/SOURCES.md`.
"""

import argparse
import gzip
import json
import math
import pathlib
import re
import subprocess
import sys
import tarfile
import tempfile

DEBIAN_PACKAGES = ("fortunes", "fortunes-min", "fortunes-de", "fortunes-es", "bible-kjv", "bible-kjv-text",
                   "python3.11-doc")
FORTUNES_DIR = pathlib.Path("/usr/share/games/fortunes")
ASCII_ART_FILES = {"ascii-art", "asciiart"}  # drawings, not text
FOREIGN_FORTUNE_BUDGET = 120_000  # UTF-8 bytes of text per language: non-ASCII coverage, not bulk
PYTHON_DOC_SOURCES = pathlib.Path("/usr/share/doc/python3.11/html/_sources")
PYTHON_DOC_PARTS = (".", "tutorial", "howto", "faq", "reference", "using", "extending", "installing",
                    "distributing")  # the prose; library/, c-api/, whatsnew/, distutils/ are left out for size
SENTENCEPIECE_SDIST = "sentencepiece==0.2.3"
BOTCHAN_MEMBER = "sentencepiece-0.2.3/test/botchan.txt"
CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")


class MissingInput(SystemExit):
    """An input package or file is not there; the message says what to install."""


def installed_versions(packages):
    """Returns {package: version} for the Debian packages, or raises naming every one not installed."""
    versions, missing = {}, []
    for package in packages:
        result = subprocess.run(["dpkg-query", "-W", "-f=${Status}\t${Version}", package],
                                capture_output=True, text=True)
        status, _, version = result.stdout.partition("\t")
        if result.returncode != 0 or not status.endswith(" installed"):
            missing.append(package)
        else:
            versions[package] = version
    if missing:
        raise MissingInput(f"missing Debian package(s): {' '.join(missing)}; run: "
                           f"apt-get install -y fortunes fortunes-de fortunes-es bible-kjv python3.11-doc")
    return versions


def package_files(package):
    """Sorted paths of the regular files (not symlinks) that the installed Debian package owns."""
    listing = subprocess.run(["dpkg-query", "-L", package], capture_output=True, text=True, check=True).stdout
    paths = (pathlib.Path(line) for line in listing.splitlines() if line.strip())
    return sorted(path for path in paths if path.is_file() and not path.is_symlink())


def resolve_overstrike(text):
    """Applies backspaces the way a terminal would, so `_\\bI` or `___\\b\\b\\bnot` keep only the last letters."""
    out = []
    for char in text:
        if char == "\b":
            if out and out[-1] != "\n":
                out.pop()
        else:
            out.append(char)
    return "".join(out)


def clean_text(text):
    """Unix newlines, overstrikes resolved, other control characters and BOMs dropped, no outer blank lines."""
    text = text.replace("\r\n", "\n").replace("\ufeff", "")
    text = CONTROL_CHARS.sub("", resolve_overstrike(text))
    return text.rstrip().lstrip("\n")


def split_fortunes(text):
    """The entries of a fortune file: the text between lines that hold only `%` (trailing blanks allowed)."""
    return re.split(r"^%[ \t\r]*\n", text + "\n", flags=re.MULTILINE)


def is_fortune_file(path, directory):
    """True for a fortune text file right in `directory`: not a `.dat`/`.u8` index, not in `off/`, not art."""
    return path.parent == directory and path.suffix not in (".dat", ".u8") and path.name not in ASCII_ART_FILES


def fortune_texts(packages, directory):
    """Cleaned, non-empty fortunes from the packages' files in `directory`, in file-name order."""
    paths = sorted(p for pkg in packages for p in package_files(pkg) if is_fortune_file(p, directory))
    entries = (clean_text(entry) for path in paths for entry in split_fortunes(path.read_text("utf-8")))
    return [entry for entry in entries if entry]


def evenly_spaced(texts, budget_bytes):
    """Every k-th text, with the smallest k that keeps the total UTF-8 size within `budget_bytes`."""
    total = sum(len(text.encode("utf-8")) for text in texts)
    return texts[::max(1, math.ceil(total / budget_bytes))]


def english_fortunes():
    """All English fortunes of `fortunes` and `fortunes-min`, one document each."""
    return [(text, "en") for text in fortune_texts(("fortunes", "fortunes-min"), FORTUNES_DIR)]


def german_spanish_fortunes():
    """An evenly spaced slice of the German and Spanish fortunes (not `es/off/`), tagged `de`/`es`."""
    german = fortune_texts(("fortunes-de",), FORTUNES_DIR / "de")
    spanish = fortune_texts(("fortunes-es",), FORTUNES_DIR / "es")
    return ([(text, "de") for text in evenly_spaced(german, FOREIGN_FORTUNE_BUDGET)]
            + [(text, "es") for text in evenly_spaced(spanish, FOREIGN_FORTUNE_BUDGET)])


def bible_chapters(text):
    """(heading, verses) per chapter of `bible -l` output, where a heading and its verses are blank-line blocks."""
    blocks = text.strip("\n").split("\n\n")
    if len(blocks) % 2 or not all(re.fullmatch(r".+ \d+", heading) for heading in blocks[::2]):
        raise ValueError("unexpected `bible` output: headings and verse blocks do not alternate")
    return list(zip(blocks[::2], blocks[1::2]))


def bible_kjv():
    """The odd-numbered chapters of every book of the King James Bible, one document per chapter."""
    output = subprocess.run(["bible", "-l100000", "Gen1:1-Rev22:21"], capture_output=True, text=True,
                            check=True).stdout
    chapters = []
    for heading, verses in bible_chapters(output):
        if int(heading.rsplit(" ", 1)[1]) % 2 == 1:
            numbered_verses = "\n".join(line.strip() for line in verses.splitlines())
            chapters.append((clean_text(f"{heading}\n\n{numbered_verses}"), "en"))
    return chapters


def python_docs():
    """The reStructuredText sources of the prose parts of the Python 3.11 docs, one document per file."""
    parts = {(PYTHON_DOC_SOURCES / part).resolve() for part in PYTHON_DOC_PARTS}
    paths = [path for path in package_files("python3.11-doc")
             if path.name.endswith(".rst.txt") and path.parent.resolve() in parts]
    texts = (clean_text(path.read_text("utf-8")) for path in paths)
    return [(text, "en") for text in texts if text]


def download_sentencepiece_sdist(directory):
    """Fetches the sentencepiece source tarball with pip into `directory` and returns its path."""
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               SENTENCEPIECE_SDIST, "-d", str(directory)]
    if subprocess.run(command, capture_output=True, text=True).returncode != 0:
        raise MissingInput(f"could not download {SENTENCEPIECE_SDIST}; run `{' '.join(command)}` and pass "
                           f"the tarball as --sentencepiece-sdist")
    return next(pathlib.Path(directory).glob("sentencepiece-*.tar.gz"))


def read_botchan(sdist_path):
    """The text of `test/botchan.txt` from the sentencepiece source tarball."""
    with tarfile.open(sdist_path) as tar:
        return tar.extractfile(BOTCHAN_MEMBER).read().decode("utf-8")


def botchan_chapters(text):
    """The translator's note and the eleven chapters of Botchan, without the Project Gutenberg header and licence."""
    text = clean_text(text)
    body = text.split("*** START OF THIS PROJECT GUTENBERG EBOOK", 1)[1].split("\n", 1)[1]
    body = body.split("End of Project Gutenberg's Botchan", 1)[0]
    front, *chapters = re.split(r"^(?=CHAPTER [IVX]+\.?$)", body, flags=re.MULTILINE)
    front = front[front.index("BOTCHAN (MASTER DARLING)"):]  # drops the "Produced by" credit line
    return [(clean_text(part), "en") for part in [front, *chapters]]


def as_records(source, documents):
    """JSON-lines records `{"id", "text", "source", "language"}` numbered from 0 within the source."""
    return [{"id": f"{source}/{n}", "text": text, "source": source, "language": language}
            for n, (text, language) in enumerate(documents)]


def write_jsonl_gz(path, records):
    """Writes records as gzip JSON lines with no timestamp or file name in the header; returns bytes written."""
    lines = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records).encode("utf-8")
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
        out.write(lines)
    return path.stat().st_size


def build_sources(sdist_path):
    """{source name: documents} for every shipped source, in file order."""
    return {
        "fortunes": english_fortunes(),
        "fortunes_de_es": german_spanish_fortunes(),
        "bible_kjv": bible_kjv(),
        "python_docs": python_docs(),
        "botchan": botchan_chapters(read_botchan(sdist_path)),
    }


def summary_table(rows):
    """A fixed-width table of (source, docs, raw text bytes, compressed bytes) with a total row."""
    lines = [f"{'source':<16}{'docs':>8}{'raw bytes':>12}{'gz bytes':>12}"]
    lines += [f"{name:<16}{docs:>8}{raw:>12}{gz:>12}" for name, docs, raw, gz in rows]
    lines.append(f"{'total':<16}{sum(r[1] for r in rows):>8}{sum(r[2] for r in rows):>12}"
                 f"{sum(r[3] for r in rows):>12}")
    return "\n".join(lines)


def main():
    """Checks the inputs are installed, writes one `.jsonl.gz` per source into --out and prints a summary."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=pathlib.Path("lmjax/assets/corpus"))
    parser.add_argument("--sentencepiece-sdist", type=pathlib.Path,
                        help=f"local {SENTENCEPIECE_SDIST} .tar.gz; downloaded with pip when not given")
    args = parser.parse_args()
    versions = installed_versions(DEBIAN_PACKAGES)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as scratch:
        sdist_path = args.sentencepiece_sdist or download_sentencepiece_sdist(scratch)
        if not sdist_path.is_file():
            raise MissingInput(f"no such file: {sdist_path}")
        sources = build_sources(sdist_path)
    rows = []
    for name, documents in sources.items():
        gz_bytes = write_jsonl_gz(args.out / f"{name}.jsonl.gz", as_records(name, documents))
        raw_bytes = sum(len(text.encode("utf-8")) for text, _ in documents)
        rows.append((name, len(documents), raw_bytes, gz_bytes))
    print(" ".join(f"{package}={version}" for package, version in versions.items()))
    print(f"sentencepiece sdist: {sdist_path.name}")
    print(summary_table(rows))


if __name__ == "__main__":
    main()
