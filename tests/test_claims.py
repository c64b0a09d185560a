"""course.claims: a claim prints its sentence, its numbers and its condition, and a test fails
naming every claim the numbers do not bear out."""

import numpy as np
import pytest

from course.claims import Claim, assert_all_hold, show


def test_a_claim_prints_its_verdict_numbers_and_condition(capsys):
    held = Claim("BN trains faster after 22 steps", np.float64(0.91) > 0.5,
                 {"val acc": np.float64(0.912345), "seeds": 3}, "lr 0.1, batch 64")
    failed = Claim("no spread at all", np.bool_(False))
    assert held.holds is True and failed.holds is False  # plain bools, whatever numpy gave
    show([held, failed])
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "✓ BN trains faster after 22 steps (val acc = 0.912, seeds = 3; lr 0.1, batch 64)",
        "✗ no spread at all"]


def test_assert_all_hold_names_every_failed_claim_and_passes_when_all_hold():
    ok = Claim("a", True, {"x": 1.0})
    bad1, bad2 = Claim("b", False, {"y": 2.0}), Claim("c", False, condition="n = 3")
    assert_all_hold([ok, ok])
    with pytest.raises(AssertionError) as err:
        assert_all_hold([ok, bad1, bad2])
    text = str(err.value)
    assert "✗ b (y = 2)" in text and "✗ c (n = 3)" in text and "✓ a" not in text
