"""Path-Score (Algorithm 1), path ranking and the dynamic programme against brute force."""
import dataclasses
import math

import numpy as np
import pytest

import pivot
from pivot.reference import cka as ref


def distinct_matrix(d):
    # distinct entries, each row's a different decade: a sum names the entries it used
    return np.array([[100.0 * (i + 1) + (j + 1) for j in range(d)] for i in range(d)])


def test_paper_worked_example():
    # Paper, section 3.2: of 12 encoders, attentions 3, 4, 9, 10 (1-based) skipped; S =
    # CKA[MLP_2, A_3] + CKA[MLP_2, A_4] + CKA[MLP_8, A_9] + CKA[MLP_8, A_10].
    cka = distinct_matrix(12)
    skipped_1based = {3, 4, 9, 10}
    path = [0 if e in skipped_1based else 1 for e in range(1, 13)]
    terms = [cka[2 - 1, 3 - 1], cka[2 - 1, 4 - 1], cka[8 - 1, 9 - 1], cka[8 - 1, 10 - 1]]
    assert terms == [203.0, 204.0, 809.0, 810.0]
    assert pivot.path_score(cka, path) == sum(terms)
    assert ref.path_score(cka, path) == sum(terms)
    ranked = pivot.rank_paths(cka, effort=8)
    assert len(ranked) == math.comb(12, 8)
    assert pivot.ScoredPath(8, tuple(path), sum(terms)) in ranked


def test_skipped_encoders_before_the_first_active_one_add_nothing():
    cka = distinct_matrix(6)
    assert pivot.path_score(cka, [0, 0, 1, 0, 1, 1]) == cka[2, 3]
    assert pivot.path_score(cka, [0, 0, 0, 0, 0, 0]) == 0.0
    assert pivot.path_score(cka, [0, 0, 0, 0, 0, 1]) == 0.0
    assert pivot.path_score(cka, None) == 0.0  # all active: nothing skipped
    # a run of skipped encoders continues to the end of the model
    assert pivot.path_score(cka, [1, 0, 0, 1, 0, 0]) == cka[0, 1] + cka[0, 2] + cka[3, 4] + cka[3, 5]


def test_path_score_reads_only_entries_above_the_diagonal(rng):
    cka = rng.random((8, 8))
    noisy = cka.copy()
    noisy[np.tril_indices(8)] = np.nan
    for _ in range(20):
        path = rng.integers(0, 2, size=8)
        assert pivot.path_score(noisy, path) == pivot.path_score(cka, path) == pytest.approx(ref.path_score(cka, path))


@pytest.mark.parametrize("d", [1, 2, 5, 9])
def test_rank_paths_matches_reference_enumeration(rng, d):
    for cka in (rng.random((d, d)), rng.integers(0, 3, size=(d, d)).astype(float)):  # the second has ties
        for effort in range(d + 1):
            got = pivot.rank_paths(cka, effort)
            want = ref.rank_paths(cka, effort)
            assert [(p.score, p.path) for p in got] == [(pytest.approx(s, abs=1e-12), p) for s, p in want]
            assert all(p.effort == effort and sum(p.path) == effort for p in got)
            scores = [p.score for p in got]
            assert scores == sorted(scores, reverse=True)


def test_rank_paths_ties_prefer_earlier_active_encoders():
    ranked = pivot.rank_paths(np.zeros((4, 4)), 2)
    assert [p.path for p in ranked] == [(1, 1, 0, 0), (1, 0, 1, 0), (1, 0, 0, 1), (0, 1, 1, 0), (0, 1, 0, 1), (0, 0, 1, 1)]


def test_rank_paths_top_k(rng):
    cka = rng.random((10, 10))
    full = pivot.rank_paths(cka, 4)
    for k in (1, 7, 210, 500):
        assert pivot.rank_paths(cka, 4, top_k=k) == full[:k]
    ties = rng.integers(0, 2, size=(10, 10)).astype(float)
    assert pivot.rank_paths(ties, 5, top_k=13) == pivot.rank_paths(ties, 5)[:13]


def test_best_paths_equals_brute_force_up_to_d14(rng):
    for d in range(1, 15):
        mats = [rng.random((d, d)), rng.integers(0, 4, size=(d, d)).astype(float)]
        for cka in mats:
            masks, scores = ref.all_path_scores(cka)
            best = pivot.best_paths(cka)
            assert sorted(best) == list(range(d + 1))
            efforts = masks.sum(axis=1)
            for effort, sp in best.items():
                top = scores[efforts == effort].max()
                assert sp.effort == effort and sum(sp.path) == effort
                assert sp.score == pytest.approx(top, abs=1e-12)
                assert sp.score == pivot.path_score(cka, sp.path)  # same bits as Algorithm 1
                if d <= 12:
                    assert sp == pivot.rank_paths(cka, effort, top_k=1)[0]  # same path, same tie-break
            # brute force's own tie-break (greatest mask) on the integer matrix, where sums are exact
            if cka is mats[1]:
                for effort, sp in best.items():
                    winners = masks[(efforts == effort) & (scores == scores[efforts == effort].max())]
                    assert sp.path == tuple(winners[-1].tolist())  # masks ascend, so the last is the greatest


@pytest.mark.parametrize("d", [24, 32, 48])
def test_best_paths_large_d_matches_python_dp(rng, d):
    cka = rng.random((d, d))
    best = pivot.best_paths(cka)
    want = ref.best_paths_dp(cka)
    for effort in range(d + 1):
        assert best[effort].path == want[effort][1]
        assert best[effort].score == want[effort][0]
    # the DP is exact: no single swap of an active and a skipped encoder improves the best path
    for effort in (d // 4, d // 2):
        sp = best[effort]
        path = list(sp.path)
        for i in range(d):
            for j in range(d):
                if path[i] == 1 and path[j] == 0:
                    swapped = path.copy()
                    swapped[i], swapped[j] = 0, 1
                    assert pivot.path_score(cka, swapped) <= sp.score + 1e-12


def test_best_paths_effort_selection_and_extremes(rng):
    cka = rng.random((6, 6))
    best = pivot.best_paths(cka, efforts=[4, 0, 6, 4])
    assert list(best) == [0, 4, 6]
    assert best[0] == pivot.ScoredPath(0, (0,) * 6, 0.0)
    assert best[6] == pivot.ScoredPath(6, (1,) * 6, 0.0)
    # effort 1: the single active encoder is the first one, which collects its whole row
    assert pivot.best_paths(np.ones((5, 5)), efforts=[1])[1].path == (1, 0, 0, 0, 0)


def test_scored_path_is_frozen():
    sp = pivot.ScoredPath(1, (1, 0), 0.5)
    with pytest.raises(dataclasses.FrozenInstanceError):
        sp.score = 1.0


def test_path_functions_validate(rng):
    cka = rng.random((5, 5))
    with pytest.raises(ValueError, match="square"):
        pivot.path_score(np.ones((4, 5)), [1] * 4)
    with pytest.raises(ValueError, match="square"):
        pivot.best_paths(np.ones(5))
    bad = cka.copy()
    bad[1, 3] = np.nan
    for fn in (lambda: pivot.path_score(bad, None), lambda: pivot.rank_paths(bad, 2), lambda: pivot.best_paths(bad)):
        with pytest.raises(ValueError, match=r"cka\[1, 3\] is nan"):
            fn()
    with pytest.raises(ValueError, match="path has 4 entries"):
        pivot.path_score(cka, [1, 0, 1, 1])
    with pytest.raises(ValueError, match="0 or 1"):
        pivot.path_score(cka, [1, 0, 2, 1, 1])
    for effort in (-1, 6, 2.5, True):
        with pytest.raises(ValueError, match="effort must be an integer"):
            pivot.rank_paths(cka, effort)
    with pytest.raises(ValueError, match="effort must be an integer"):
        pivot.best_paths(cka, efforts=[7])
    with pytest.raises(TypeError, match="iterable"):
        pivot.best_paths(cka, efforts=3)
    with pytest.raises(ValueError, match="top_k"):
        pivot.rank_paths(cka, 2, top_k=0)
    with pytest.raises(ValueError, match="at most 64 encoders"):
        pivot.rank_paths(np.zeros((65, 65)), 1)
    with pytest.raises(ValueError, match="too many to return"):
        pivot.rank_paths(np.zeros((40, 40)), 20)
    with pytest.raises(ValueError, match="too many to enumerate"):
        pivot.rank_paths(np.zeros((48, 48)), 24, top_k=3)
    with pytest.raises(TypeError, match="real numbers"):
        pivot.best_paths(np.array([["a"]]))
