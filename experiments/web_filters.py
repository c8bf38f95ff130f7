"""Ablation: leave one web filter out of the speedrun's clean stage (every stage after it reruns per variant).

    lmjax sweep experiments/web_filters.py --workdir runs/web_filters
    lmjax sweep experiments/web_filters.py --workdir runs/web_filters --emit-commands   (one command per variant)

On 2 CPU cores each variant is a whole ~30-minute speedrun; on a cluster, emit the commands and launch them
side by side (the shared stage folder must be on a shared filesystem).
"""
BASE = "configs/speedrun_cpu.py"
FILTERS = ("url_filter", "language", "gopher_quality", "gopher_repetition", "c4", "fineweb_quality", "minhash",
           "pii")
VARIANTS = {"all_filters": {}, **{f"without_{name}": {f"clean.{name}.enabled": False} for name in FILTERS}}
