"""`lmjax serve`: a run behind an OpenAI-compatible API and a web page (see lmjax/serve/server.py)."""
