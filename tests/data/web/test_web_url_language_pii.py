"""URL filter on hand-made URLs, language ID on real non-English fortunes, PII replacement."""
import pytest
from web_test_data import make_doc, read_fortunes

from lmjax.data.web import language, pii, url_filter
from lmjax.data.web.document import Drop


def verdict(result):
  return result.reason if isinstance(result, Drop) else "keep"


@pytest.fixture
def url_step(clean_config, tmp_path):
  extra = tmp_path / "domains.txt"
  extra.write_text("# comment\nbad-site.example\n")
  clean_config.url_filter.extra_domain_files = (str(extra),)
  return url_filter.build(clean_config.url_filter)


@pytest.mark.parametrize("url, expected", [
    ("https://docs.python.org/3/tutorial/index.html", "keep"),
    ("https://www.pornhub.com/view", "blocklisted_domain"),  # shipped list, subdomain of a listed domain
    ("http://cdn.bad-site.example/page", "blocklisted_domain"),  # extra list loaded from a file
    ("https://bad-site.example.org/page", "keep"),  # only the domain and its subdomains are blocked
    ("https://example.com/free-porn-videos", "banned_word"),
    ("https://example.com/spornoodles", "keep"),  # a banned word inside another word is not a word
    ("https://example.com/hot-girls", "soft_banned_words"),  # two soft words = threshold
    ("https://example.com/hot-soup", "keep"),  # one soft word
    ("https://example.com/myxhamsterfan", "banned_subword"),
    ("", "keep"),
])
def test_url_filter_decisions(url_step, url, expected):
  assert verdict(url_step(make_doc("text", url=url))) == expected


def test_url_filter_soft_threshold_is_configurable(clean_config):
  clean_config.url_filter.soft_word_threshold = 3
  step = url_filter.build(clean_config.url_filter)
  assert verdict(step(make_doc("t", url="https://example.com/hot-girls"))) == "keep"


def test_url_filter_loads_every_kind_of_list_from_files(clean_config, tmp_path):
  """A 100,000-domain blocklist (a UT1-sized list is ~4M) and one extra file of each other kind."""
  files = {"domain": "".join(f"site{i}.example\n" for i in range(100_000)), "url": "example.com/bad/page\n",
           "banned_word": "gizmo\n", "soft_banned_word": "cheap\nshiny\n", "banned_subword": "zorgle\n"}
  for kind, text in files.items():
    (tmp_path / f"{kind}.txt").write_text(text)
    clean_config.url_filter[f"extra_{kind}_files"] = (str(tmp_path / f"{kind}.txt"),)
  step = url_filter.build(clean_config.url_filter)
  cases = {"https://www.site99999.example/a": "blocklisted_domain", "https://site100000.example/": "keep",
           "http://example.com/bad/page": "blocklisted_url", "https://example.com/bad/page2": "keep",
           "https://example.com/gizmo-shop": "banned_word", "https://example.com/cheap": "keep",
           "https://example.com/cheap-shiny": "soft_banned_words",
           "https://example.com/myzorglefan": "banned_subword",
           "https://www.pornhub.com/": "blocklisted_domain"}  # the shipped lists still apply
  assert {url: verdict(step(make_doc("t", url=url))) for url in cases} == cases


@pytest.fixture(scope="module")
def lid_model():
  return language.load_model()


def test_language_model_is_the_bundled_offline_one():
  path = language.bundled_model_path()
  assert path.name == "lid.176.ftz" and path.stat().st_size < 2_000_000


@pytest.mark.parametrize("code", ["de", "es", "ru"])
def test_language_id_recognises_real_fortunes(lid_model, code):
  fortunes = read_fortunes(code)
  assert len(fortunes) >= 50
  detected = [language.identify_language(text, lid_model)[0] for text in fortunes]
  assert sum(lang == code for lang in detected) / len(detected) >= 0.9


@pytest.mark.parametrize("code", ["de", "es", "ru"])
def test_language_filter_drops_non_english_fortunes(lid_model, code):
  results = [language.language_filter(make_doc(text), model=lid_model, languages=("en",), min_score=0.65)
             for text in read_fortunes(code)]
  assert sum(isinstance(result, Drop) for result in results) / len(results) >= 0.95


def test_language_filter_keeps_english_and_records_score(lid_model):
  text = "The quick brown fox jumps over the lazy dog while the farmer watches from the old wooden gate."
  result = language.language_filter(make_doc(text), model=lid_model, languages=("en",), min_score=0.65)
  assert result.metadata["language"] == "en" and result.metadata["language_score"] >= 0.65
  _, score = language.identify_language(text, lid_model)
  too_strict = language.language_filter(make_doc(text), model=lid_model, languages=("en",), min_score=score + 0.001)
  assert verdict(too_strict) == "language_score_below_threshold"
  at_threshold = language.language_filter(make_doc(text), model=lid_model, languages=("en",), min_score=score)
  assert verdict(at_threshold) == "keep"


def test_language_filter_keeps_all_languages_when_list_empty(lid_model):
  german = read_fortunes("de")[0]
  result = language.language_filter(make_doc(german), model=lid_model, languages=(), min_score=0.0)
  assert result.metadata["language"] == "de"


def pii_settings(config):
  return {key: value for key, value in config.pii.items() if key != "enabled"}


def test_pii_replaces_emails_and_public_ips_only(clean_config):
  text = ("Mail jane.doe+news@mail.example.org or bob@uni.edu. Server 8.8.8.8 and 203.0.113.9 are public? "
          "Local 192.168.1.20, 10.0.0.1 and 127.0.0.1 stay. Version 1.2.3.4.5 is not an IP.")
  result = pii.replace_pii(make_doc(text), **pii_settings(clean_config))
  assert "jane.doe" not in result.text and "bob@" not in result.text
  assert result.text.count("email@example.com") == 2
  assert "8.8.8.8" not in result.text
  assert "192.168.1.20" in result.text and "10.0.0.1" in result.text and "127.0.0.1" in result.text
  assert "1.2.3.4.5" in result.text


def test_pii_switches(clean_config):
  settings = pii_settings(clean_config) | {"replace_emails": False, "replace_ips": False}
  doc = make_doc("a@b.com 8.8.8.8")
  assert pii.replace_pii(doc, **settings) is doc
