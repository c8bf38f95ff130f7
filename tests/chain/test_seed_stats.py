"""Statistics over seeds by hand: the mean and ddof=1 std of one metric, and a difference paired by seed."""
import math

import pytest

from lmjax.chain import seed_stats


def test_seed_summary_is_the_mean_and_the_ddof_1_standard_deviation_over_seeds():
  summary = seed_stats.seed_summary({0: 1, 1: 2, 2: 4})
  assert summary["n"] == 3 and summary["values"] == {0: 1, 1: 2, 2: 4}
  assert summary["mean"] == pytest.approx(7 / 3)
  assert summary["std"] == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2))
  assert seed_stats.seed_summary({7: 0.5}) == {"values": {7: 0.5}, "mean": 0.5, "std": None, "n": 1}


def test_a_paired_difference_pairs_only_the_seeds_both_variants_have_and_has_a_student_t_interval():
  a, b = {0: 1.0, 1: 2.0, 2: 4.0, 3: 9.0}, {0: 1.5, 1: 2.0, 2: 5.0, 5: 7.0}  # pairs: seeds 0, 1, 2
  diff = seed_stats.paired_difference(a, b)  # differences 0.5, 0, 1: mean 0.5, std (ddof=1) 0.5
  half = 4.302652729911275 * 0.5 / math.sqrt(3)  # t.ppf(0.975, 2 degrees of freedom)
  assert diff["diff_n"] == 3 and diff["diff_mean"] == pytest.approx(0.5)
  assert diff["diff_ci95"] == pytest.approx([0.5 - half, 0.5 + half])
  assert seed_stats.paired_difference(a, {2: 3.0, 8: 1.0}) == {"diff_mean": -1.0, "diff_ci95": None, "diff_n": 1}
  assert seed_stats.paired_difference(a, {8: 1.0}) == {"diff_mean": None, "diff_ci95": None, "diff_n": 0}


def test_mean_and_spread_shows_the_std_only_from_two_seeds():
  assert seed_stats.mean_and_spread(seed_stats.seed_summary({0: 1.0, 1: 3.0})) == "2 ± 1.414"
  assert seed_stats.mean_and_spread(seed_stats.seed_summary({0: 0.5})) == "0.5"
  assert seed_stats.mean_and_spread(seed_stats.seed_summary({})) == "—"
