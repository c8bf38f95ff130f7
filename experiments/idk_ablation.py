"""Ablation: the speedrun's SFT with and without its "I don't know" data (the probe's `idk` and the invented
entities' `unknown` sources), to check that abstaining costs no answers the model does know.

    lmjax sweep experiments/idk_ablation.py --workdir runs/idk_ablation --stage-root runs/speedrun_seeds/stages \
        --config.chain.stages="('clean', 'tokenizer', 'tokenize', 'pretrain', 'probe', 'sft', 'eval_sft')"

Both variants share everything up to the probe; compare `eval_sft.abstention_rate` (should drop without the
data) with `eval_sft.answerable_accuracy_arithmetic`, `eval_sft.context_accuracy` and `eval_sft.math_greedy`
(should not be more than 2 points higher without it). The "− with_idk" columns of sweep.md are the paired
differences.
"""
BASE = "configs/speedrun_cpu.py"
VARIANTS = {"with_idk": {}, "without_idk": {"sft.mixture.idk": 0.0, "sft.mixture.unknown": 0.0}}
SEEDS = [0, 1, 2]
