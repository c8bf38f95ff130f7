"""Web cleaning: raw WARC/HTML/JSONL/parquet -> a deduplicated, PII-scrubbed corpus (FineWeb's recipe).

Entry point: `stage.run(config, workdir, input_pattern=...)` with `configs/clean.py` (`lmjax clean`).
Flow: readers -> FILTER_STEPS (url_filter, extract, language, gopher_quality, gopher_repetition, c4,
fineweb_quality) -> minhash dedup (signatures, buckets, clusters) -> FINAL_STEPS (pii) -> shards.

Adding a custom filter (one function + one table entry + one config section):
  1. In a new module `lmjax/data/web/my_filter.py` write a pure step and its builder:
       def drop_shouting(doc, *, max_upper_ratio):
         letters = [c for c in doc.text if c.isalpha()]
         upper = sum(c.isupper() for c in letters) / max(1, len(letters))
         return Drop("too_much_upper_case") if upper > max_upper_ratio else doc  # or doc.with_text(...)

       def build(cfg):
         return functools.partial(drop_shouting, max_upper_ratio=cfg.max_upper_ratio)
  2. Add `Step("my_filter", my_filter.build)` to FILTER_STEPS (or FINAL_STEPS) in steps.py, where it should run.
  3. Add `config.my_filter = ConfigDict(dict(enabled=True, max_upper_ratio=0.5))` to configs/clean.py.
Its drops then appear in stats.json under "my_filter" with reason counts and examples.
"""
