"""Data: documents, the tokenizer, token shards and the grain pipelines; web/ cleans raw pages, posttrain/
makes SFT, preference and RL data."""
