"""English words as spaCy's tokenizer splits them: what FineWeb's filters (datatrove) count, without spaCy.

A port of spaCy 3.8's tokenizer (spacy/tokenizer.pyx) with its English rules (spacy/lang/char_classes.py,
punctuation.py, tokenizer_exceptions.py, en/tokenizer_exceptions.py; MIT licence): split on whitespace;
peel prefixes and suffixes until a special case or nothing is left; keep URLs and e-mail addresses whole;
split the rest at infixes; merge back special cases the affixes cut apart ("foo():" -> foo ( ):). Letter
and symbol classes come from unicodedata rather than spaCy's hand-written ranges.
"""
from __future__ import annotations

import functools
import itertools
import re
import unicodedata
from typing import Callable, NamedTuple

PUNCT = r"… …… , : ; \! \? ¿ ؟ ¡ \( \) \[ \] \{ \} < > _ # \* & 。 ？ ！ ， 、 ； ： ～ · । ، ۔ ؛ ٪"
QUOTES = r'\' " ” “ ` ‘ ´ ’ ‚ , „ » « 「 」 『 』 （ ） 〔 〕 【 】 《 》 〈 〉 \u2329 \u232A ⟦ ⟧'
HYPHENS = "- – — -- --- —— ~"
CURRENCY = r"\$ £ € ¥ ฿ US\$ C\$ A\$ ₽ ﷼ ₴ ₠ ₡ ₢ ₣ ₤ ₥ ₦ ₧ ₨ ₩ ₪ ₫ € ₭ ₮ ₯ ₰ ₱ ₲ ₳ ₴ ₵ ₶ ₷ ₸ ₹ ₺ ₻ ₼ ₽ ₾ ₿"
UNITS = ("km km² km³ m m² m³ dm dm² dm³ cm cm² cm³ mm mm² mm³ ha µm nm yd in ft kg g mg µg t lb oz m/s "
         "km/h kmh mph hPa Pa mbar mb MB kb KB gb GB tb TB T G M K % км км² км³ м м² м³ дм дм² дм³ см "
         "см² см³ мм мм² мм³ нм кг г мг м/с км/ч кПа Па мбар Кб КБ кб Мб МБ мб Гб ГБ гб Тб ТБ тбكم كم² "
         "كم³ م م² م³ سم سم² سم³ مم مم² مم³ كم غرام جرام جم كغ ملغ كوب اكواب")  # "тбكم" as in spaCy
ELLIPSES = [r"\.\.+", "…"]
LAST_SYMBOL = 0x1FAFF  # the last emoji block: symbols (So) past it are unassigned
URL_PATTERN = (  # spaCy's URL_MATCH: scheme and user@ optional, a public IP or host with lowercase TLD, path
    r"(?u)^(?:(?:[\w\+\-\.]{2,})://)?(?:\S+(?::\S*)?@)?(?:(?!(?:10|127)(?:\.\d{1,3}){3})"
    r"(?!(?:169\.254|192\.168)(?:\.\d{1,3}){2})(?!172\.(?:1[6-9]|2\d|3[0-1])(?:\.\d{1,3}){2})"
    r"(?:[1-9]\d?|1\d\d|2[01]\d|22[0-3])(?:\.(?:1?\d{1,2}|2[0-4]\d|25[0-5])){2}"
    r"(?:\.(?:[1-9]\d?|1\d\d|2[0-4]\d|25[0-4]))"
    r"|(?:(?:[A-Za-z0-9\u00a1-\uffff][A-Za-z0-9\u00a1-\uffff_-]{0,62})?[A-Za-z0-9\u00a1-\uffff]\.)+"
    r"(?:[LOWER]{2,63}))(?::\d{2,5})?(?:[/?#]\S*)?$")

# Strings spaCy never splits (emoticons, abbreviations, dialect words), verbatim from its English exceptions.
KEEP_WHOLE = r"""
' '' 'Cause 'Cos 'Coz 'Cuz 'S 'bout 'cause 'cos 'coz 'cuz 'd 'em 'll 'nuff 're 's (*_*) (-8 (-: (-; (-_-)
(._.) (: (; (= (>_<) (^_^) (o: (¬_¬) (ಠ_ಠ) (╯°□°）╯︵┻━┻ )-: ): -_- -__- ._. 0.0 0.o 0_0 0_o 8) 8-) 8-D 8D :'(
:') :'-( :'-) :( :(( :((( :() :) :)) :))) :* :-( :-(( :-((( :-) :-)) :-))) :-* :-/ :-0 :-3 :-> :-D :-O :-P :-X
:-] :-o :-p :-x :-| :-} :/ :0 :1 :3 :> :D :O :P :X :] :o :o) :p :x :| :} :’( :’) :’-( :’-) ;) ;-) ;-D ;D ;_;
<.< </3 <3 <33 <333 <space> =( =) =/ =3 =D =[ =] =| >.< >.> >:( >:o ><(((*> @_@ Adm. Ak. Ala. Apr. Ariz. Ark.
Aug. Bros. C++ Calif. Co. Colo. Conn. Corp. D.C. Dec. Del. Doin Doin' Doin’ Dr. E.G. E.g. Feb. Fla. Ga. Gen.
Goin Goin' Goin’ Gov. Havin Havin' Havin’ I.E. I.e. Ia. Id. Ill. Inc. Ind. Jan. Jr. Jul. Jun. Kan. Kans. Ky.
La. Lovin Lovin' Lovin’ Ltd. Ma'am Mar. Mass. Ma’am Md. Messrs. Mich. Minn. Miss. Mo. Mont. Mr. Mrs. Ms. Mt.
N.C. N.D. N.H. N.J. N.M. N.Y. Neb. Nebr. Nev. Nothin Nothin' Nothin’ Nov. Nuthin Nuthin' Nuthin’ O'clock O.O
O.o O_O O_o Oct. Okla. Ol Ol' Ol’ Ore. O’clock Pa. Ph.D. Prof. Rep. Rev. S.C. Sen. Sep. Sept. Somethin
Somethin' Somethin’ St. Tenn. V.V V_V Va. Wash. Wis. XD XDD [-: [: [= \") \n \t ]= ^_^ ^__^ ^___^ a. a.m.
and/or b. c. co. d. doin doin' doin’ e. e.g. em f. g. goin goin' goin’ h. havin havin' havin’ i. i.e. j. k. l.
ll lovin lovin' lovin’ m. ma'am ma’am n. nothin nothin' nothin’ nuff nuthin nuthin' nuthin’ o'clock o. o.0 o.O
o.o o_0 o_O o_o ol ol' ol’ o’clock p. p.m. q. r. s. somethin somethin' somethin’ t. u. v. v.s. v.v v_v vs. w.
w/o x. xD xDD y. z. ¯\(ツ)/¯ ä. ö. ü. ಠ_ಠ ಠ︵ಠ — ‘S ‘s ’ ’Cause ’Cos ’Coz ’Cuz ’S ’bout ’cause ’cos ’coz ’cuz ’d
’em ’ll ’nuff ’re ’s ’’
"""
# Contractions, generated as spaCy does: word + ending, lower and title case, with ' or ’ or no apostrophe.
CONTRACTIONS = {
    "ai are dare has have is was were": "n't",
    "ca did do does had may need ought sha wo": "n't n't've",
    "could might must should would": "'ve n't n't've",
    "he it she that this": "'d 'd've 'll 'll've 's",
    "how": "'d 'd've 'd'y 'll 'll've 're 's 've",
    "i": "'d 'd've 'll 'll've 'm 'm|a 've",
    "let": "'s",
    "not": "'ve",
    "there what when where who why": "'d 'd've 'll 'll've 're 's 've",
    "these they those we you": "'d 'd've 'll 'll've 're 've",
}
NOT_CONTRACTIONS = {"Ill", "ill", "Its", "its", "Hell", "hell", "Shell", "shell", "Shed", "shed", "were",
                    "Were", "Well", "well", "Whore", "whore", "howdy", "Howdy", "lets", "Lets"}
OTHER_SPLITS = {"cannot": "can not", "Cannot": "Can not", "gonna": "gon na", "Gonna": "Gon na",
                "gotta": "got ta", "Gotta": "Got ta", "c'mon": "c'm on", "C'mon": "C'm on", "c’mon": "c’m on",
                "C’mon": "C’m on", "y'all": "y' all", "y’all": "y’ all", "yall": "y all", "°C.": "° C .",
                "°F.": "° F .", "°K.": "° K .", "°c.": "° c .", "°f.": "° f .", "°k.": "° k ."}


def _special_cases() -> dict[str, tuple[str, ...]]:
  """Every string spaCy tokenizes by table: kept whole, contractions, times of day, a few others."""
  special = {word: (word,) for word in KEEP_WHOLE.split()}
  for bases, endings in CONTRACTIONS.items():
    for base in bases.split():
      for ending in endings.split():
        pieces = tuple(re.findall(r"n't|'[a-z]+|\|[a-z]+", ending))
        for first in (base, base.title()):
          for mark in ("'", "’", ""):
            parts = (first,) + tuple(piece.replace("'", mark).lstrip("|") for piece in pieces)
            if "".join(parts) not in NOT_CONTRACTIONS:
              special["".join(parts)] = parts
  for hour in range(1, 13):
    for suffix in ("am", "pm", "a.m.", "p.m."):
      special[f"{hour}{suffix}"] = (str(hour), suffix)
  special.update({word: tuple(parts.split()) for word, parts in OTHER_SPLITS.items()})
  return special


def _char_class(runs: list[tuple[str, int, int]], categories: tuple[str, ...], first_code: int,
                last_code: int) -> str:
  """A regex class body (\\U escapes) of the code points in [first_code, last_code] of `categories`."""
  parts = []
  for category, first, last in runs:
    first, last = max(first, first_code), min(last, last_code)
    if category.startswith(categories) and first <= last:
      parts.append(f"\\U{first:08X}-\\U{last:08X}" if last > first else f"\\U{first:08X}")
  return "".join(parts)


def _char_classes() -> dict[str, str]:
  """Regex classes of letters, lower/upper-case (+ uncased) letters and symbols (So), from unicodedata.

  Letters stop at the Basic Multilingual Plane (beyond it: historic scripts, rare CJK) and astral symbols
  (emoji) sit behind a one-range lookahead: astral ranges in a class slow every test against it ~3x.
  """
  runs = itertools.groupby(range(LAST_SYMBOL + 1), key=lambda code: unicodedata.category(chr(code)))
  runs = [(category, codes[0], codes[-1]) for category, group in runs for codes in [list(group)]]
  icons = (f"(?:[{_char_class(runs, ('So',), 0, 0xFFFF)}]|"
           f"(?=[\\U00010000-\\U0010FFFF])[{_char_class(runs, ('So',), 0x10000, LAST_SYMBOL)}])")
  return {"alpha": _char_class(runs, ("L",), 0, 0xFFFF), "lower": _char_class(runs, ("Ll", "Lo"), 0, 0xFFFF),
          "upper": _char_class(runs, ("Lu", "Lo"), 0, 0xFFFF), "icons": icons}


class Rules(NamedTuple):
  """spaCy's English tokenizer rules, compiled: special cases, affix and URL matchers, merge table."""

  special: dict[str, tuple[str, ...]]  # whole strings tokenized by table
  prefix: Callable  # re.match of a prefix at the start
  suffix: Callable  # re.search of a suffix at the end
  infix: Callable  # re.finditer of infixes
  url: Callable  # re.match of a whole URL or e-mail address
  merges: dict[tuple[str, ...], tuple[str, ...]]  # a special case split by the affixes -> its own tokens


@functools.cache
def english_rules() -> Rules:
  """Compile the rules once per process (~0.3 s)."""
  classes = _char_classes()
  alpha, lower, upper, icons = classes["alpha"], classes["lower"], classes["upper"], classes["icons"]
  quotes, quote_chars, punct = QUOTES.split(), QUOTES.replace(" ", ""), PUNCT.split()
  either = lambda text: text.replace(" ", "|")  # noqa: E731
  prefixes = ["§", "%", "=", "—", "–", r"\+(?![0-9])"] + punct + ELLIPSES + quotes + CURRENCY.split()
  prefixes.append(icons)
  suffixes = punct + ELLIPSES + quotes + [icons, "'s", "'S", "’s", "’S", "—", "–"] + [
      r"(?<=[0-9])\+", r"(?<=°[FfCcKk])\.", rf"(?<=[0-9])(?:{either(CURRENCY)})",
      rf"(?<=[0-9])(?:{either(UNITS)})",
      rf"(?<=[0-9{lower}%²\-\+{either(PUNCT)}(?:{quote_chars})])\.", rf"(?<=[{upper}][{upper}])\."]
  infixes = ELLIPSES + [
      icons, r"(?<=[0-9])[+\-\*^](?=[0-9-])", rf"(?<=[{lower}{quote_chars}])\.(?=[{upper}{quote_chars}])",
      rf"(?<=[{alpha}]),(?=[{alpha}])", rf"(?<=[{alpha}0-9])(?:{either(HYPHENS)})(?=[{alpha}])",
      rf"(?<=[{alpha}0-9])[:<>=/](?=[{alpha}])"]
  plain = Rules(special={}, prefix=re.compile("|".join(prefixes)).match,
                suffix=re.compile("|".join(piece + "$" for piece in suffixes)).search,
                infix=re.compile("|".join(infixes)).finditer,
                url=re.compile(URL_PATTERN.replace("LOWER", lower)).match, merges={})
  special = _special_cases()
  # special cases that contain affixes are merged back after splitting, keyed by how the affixes split them
  merges = {tuple(split_chunk(word, plain)): parts for word, parts in special.items()
            if plain.prefix(word) or plain.suffix(word) or next(plain.infix(word), None)}
  return plain._replace(special=special, merges=merges)


def suffix_length(text: str, suffix: Callable) -> int:
  """Length of the suffix spaCy peels off (its leftmost match), searching only the last 8 characters."""
  start = max(0, len(text) - 8)  # every suffix but an ellipsis '...' is at most 5 characters long
  match = suffix(text, start)
  if not match:
    return 0
  if match.start() == start and match.group().startswith(".."):  # the ellipsis may begin further left
    return len(text) - len(text.rstrip("."))
  return match.end() - match.start()


def split_affixes(chunk: str, rules: Rules) -> tuple[list[str], str, list[str]]:
  """spaCy's _split_affixes: (prefixes, the middle, suffixes in reverse order)."""
  prefixes, suffixes, last_size = [], [], 0
  while chunk and len(chunk) != last_size and chunk not in rules.special:
    last_size = len(chunk)
    pre = rules.prefix(chunk)
    pre_len = pre.end() if pre else 0
    if pre_len and chunk[pre_len:] in rules.special:
      return prefixes + [chunk[:pre_len]], chunk[pre_len:], suffixes
    suf_len = suffix_length(chunk[pre_len:], rules.suffix)
    if suf_len and chunk[:-suf_len] in rules.special:
      return prefixes, chunk[:-suf_len], suffixes + [chunk[-suf_len:]]
    if pre_len and suf_len and pre_len + suf_len <= len(chunk):
      prefixes.append(chunk[:pre_len])
      suffixes.append(chunk[-suf_len:])
      chunk = chunk[pre_len:-suf_len]
    elif pre_len:
      prefixes.append(chunk[:pre_len])
      chunk = chunk[pre_len:]
    elif suf_len:
      suffixes.append(chunk[-suf_len:])
      chunk = chunk[:-suf_len]
  return prefixes, chunk, suffixes


def split_chunk(chunk: str, rules: Rules) -> list[str]:
  """Tokens of one whitespace-free chunk: a special case, else affixes around a URL or infix-split middle."""
  if chunk in rules.special:
    return list(rules.special[chunk])
  tokens, middle, suffixes = split_affixes(chunk, rules)
  if middle in rules.special:
    tokens += rules.special[middle]
  elif middle and rules.url(middle):
    tokens.append(middle)
  elif middle:
    start = 0
    for match in rules.infix(middle):
      if match.start() == 0:  # an infix at the very start is not split off
        continue
      if match.start() != start:
        tokens.append(middle[start:match.start()])
      if match.end() != match.start():
        tokens.append(match.group())
      start = match.end()
    if middle[start:]:
      tokens.append(middle[start:])
  return tokens + suffixes[::-1]


def merge_specials(tokens: list[str], merges: dict) -> list[str]:
  """Re-join runs of tokens that spell a special case (longest, then leftmost first), like spaCy's matcher."""
  spans = [(length, start) for length in range(len(tokens), 1, -1)
           for start in range(len(tokens) - length + 1) if tuple(tokens[start:start + length]) in merges]
  if not spans:
    return tokens
  taken, chosen = set(), {}
  for length, start in sorted(spans, key=lambda span: (-span[0], span[1])):
    if start not in taken and start + length - 1 not in taken:
      chosen[start] = length
    taken.update(range(start, start + length))
  merged, index = [], 0
  while index < len(tokens):
    length = chosen.get(index, 1)
    merged += merges[tuple(tokens[index:index + length])] if length > 1 else [tokens[index]]
    index += length
  return merged


@functools.lru_cache(maxsize=1 << 14)  # ~4 MB; 60% hits on the benchmark corpus (1 << 16: 68%, +13 MB)
def chunk_words(chunk: str) -> tuple[str, ...]:
  """The words of one whitespace-free chunk; cached, as spaCy does (a few chunks make most of a text)."""
  tokens = split_chunk(chunk, english_rules())
  return tuple(merge_specials(tokens, english_rules().merges) if len(tokens) > 1 else tokens)


def split_into_words(text: str) -> list[str]:
  """Words and punctuation tokens of `text`, as datatrove's split_into_words (spaCy blank "en") gives them."""
  special = english_rules().special
  words: list[str] = []
  for chunk in text.split():
    if chunk in special:
      words += special[chunk]
    elif chunk.isalpha() or chunk.isdigit():  # nothing to split: most chunks
      words.append(chunk)
    else:
      words += chunk_words(chunk)
  return words
