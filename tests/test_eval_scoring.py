"""Scorers reproduce hand-computed results of each benchmark's official rules, quirks included."""

from __future__ import annotations

import math

import pytest

from eval.manifest import ManifestRecord, Video
from eval.scoring import score_items, scorer_for
from eval.scoring.base import ScoredItem, rng_for
from eval.scoring.bootstrap import cluster_bootstrap
from eval.scoring.extractors import (
    mlvu_letter,
    mmmu_letter,
    rtv_letter,
    strict_count,
    strict_letter,
    strict_yesno,
    videomme_letter,
)


def mc(qid: str, benchmark: str, answer: str, task: str = "t", video: str = "v", n: int = 4, **kw) -> ManifestRecord:
    options = kw.pop("options", [f"option {i}" for i in range(n)])
    return ManifestRecord(qid=qid, benchmark=benchmark, question="Q?", video=Video(f"{video}.mp4", video),
                          task_type=task, options=options, answer=answer, answer_type="mc", **kw)


def other(qid: str, benchmark: str, answer_type: str, truth: str, task: str, video: str = "v", **kw) -> ManifestRecord:
    return ManifestRecord(qid=qid, benchmark=benchmark, question="Q?", video=Video(f"{video}.mp4", video),
                          task_type=task, answer_type=answer_type, answer_text=truth, **kw)


def run(benchmark: str, cases: list[tuple[ManifestRecord, str | None]], **extra):
    scorer = scorer_for(benchmark)
    items = [scorer.item(record, None if response is None else {"response": response, **extra.get(record.qid, {})})
             for record, response in cases]
    return items, score_items(benchmark, scorer, items, n_boot=50)


def test_strict_extractors() -> None:
    responses = ["B", "(C) the cat", "D.", " a", "E", "Answer: B", "B) x", "Bob"]
    assert [strict_letter(r, 4) for r in responses] == ["B", "C", "D", None, None, None, "B", None]
    assert [strict_yesno(r) for r in ["Yes.", "no way", "Nope", "", None]] == ["Yes", "No", None, None, None]
    assert [strict_count(r) for r in ["3", " 12. ", "3 times", "three"]] == [3, 12, None, None]


def test_ovobench_substring_quirk_forward_rules_and_total() -> None:
    cases = [
        (mc("e1", "ovobench", "A", "EPM"), "Answer: B"),  # the quirk: "A" occurs in "Answer" -> correct
        (mc("e2", "ovobench", "C", "EPM"), "B"),
        (mc("h1", "ovobench", "B", "HLD"), "b"),  # case-sensitive: wrong
        (mc("h2", "ovobench", "D", "HLD"), "(D)"),
        (mc("s1", "ovobench", "A", "STU"), "C"),
        (other("r1", "ovobench", "count", "3", "REC"), "There are 3."),
        (other("r2", "ovobench", "count", "3", "REC"), "13"),  # all digits concatenated: "13" != "3"
        (other("c1", "ovobench", "yesno", "No", "CRR"), "N"),  # exact "N" for type 0
        (other("c2", "ovobench", "yesno", "Yes", "CRR"), "yes"),  # case-sensitive: wrong
        (other("c3", "ovobench", "yesno", "Yes", "CRR"), "Yes, it can."),
    ]
    items, score = run("ovobench", cases)
    assert [i.correct for i in items] == [1, 0, 0, 1, 0, 1, 0, 1, 0, 1]
    backward = (1 / 2 + 1 / 2) / 2  # EPM 1/2, HLD 1/2
    realtime = 0.0  # STU 0/1
    forward = (1 / 2 + 2 / 3) / 2  # REC 1/2, CRR 2/3
    assert score.metrics["backward"] == pytest.approx(backward)
    assert score.metrics["forward"] == pytest.approx(forward)
    assert score.metrics["total"] == pytest.approx((backward + realtime + forward) / 3)
    assert score.metrics["task_macro"] == pytest.approx((0.5 + 0.5 + 0 + 0.5 + 2 / 3) / 5)
    assert items[0].strict_correct == 0  # the strict extractor does not have the quirk


def test_mlvu_macro_average_and_letter_rule() -> None:
    cases = [
        (mc("p1", "mlvu", "A", "plotQA"), "(A) Yellow"),
        (mc("p2", "mlvu", "B", "plotQA"), "B) Red"),
        (mc("p3", "mlvu", "C", "plotQA"), "C"),
        (mc("k1", "mlvu", "D", "count"), "D."),  # "D." != "D": wrong under the official rule
        (other("g1", "mlvu", "open", "a summary", "summary"), "something"),  # generation: not in M-Avg
    ]
    items, score = run("mlvu", cases)
    assert [i.correct for i in items[:4]] == [1, 1, 1, 0] and not items[4].included
    assert score.metrics["m_avg"] == pytest.approx((1.0 + 0.0) / 2)  # macro over tasks
    assert score.metrics["avg"] == pytest.approx(3 / 4)  # micro over questions
    assert mlvu_letter(" (B) Red") == "B" and items[3].strict_correct == 1


def test_videomme_prefixes_and_denominator() -> None:
    assert videomme_letter("The best answer is B") == "B"
    assert videomme_letter("Best option: D") == "B"  # the missing-comma quirk: the prefix stays, "B"est matches
    assert videomme_letter("I am not sure which one of these options is the right one here") == ""
    cases = [
        (mc("1", "videomme", "B", meta={"duration": "short", "domain": "Knowledge"}), "B"),
        (mc("2", "videomme", "D", meta={"duration": "short", "domain": "Knowledge"}), "Best option: D"),
        (mc("3", "videomme", "A", meta={"duration": "long", "domain": "Sports"}),
         "I am not sure which one of these options is the right one here"),
        (mc("4", "videomme", "C", meta={"duration": "long", "domain": "Sports"}), "(C) the cat"),
    ]
    items, score = run("videomme", cases)
    assert score.metrics["accuracy"] == pytest.approx(2 / 3)  # unanswered left out, as the official script does
    assert score.metrics["accuracy_all"] == pytest.approx(2 / 4)
    assert score.breakdowns["duration"] == {"long": {"accuracy": 1.0, "n": 1}, "short": {"accuracy": 0.5, "n": 2}}
    assert score.parse_failure_rate == pytest.approx(1 / 4)


def test_streamingbench_first_character_and_proactive() -> None:
    cases = [
        (mc("1", "streamingbench", "B", "Counting"), "B. because"),
        (mc("2", "streamingbench", "B", "Counting"), " B"),  # response[0] is a space
        (mc("3", "streamingbench", "C", "Counting"), ""),  # empty: not counted
        (mc("4", "streamingbench", "A", "Text"), "a"),
        (other("p1", "streamingbench", "proactive", "3", "Proactive Output", evidence={"time": 29.0}), "3"),
        (other("p2", "streamingbench", "proactive", "3", "Proactive Output", evidence={"time": 29.0}), "no"),
    ]
    extra = {"p1": {"response_time": 30.0, "triggered": True}, "p2": {"response_time": 33.0, "triggered": False}}
    items, score = run("streamingbench", cases, **extra)
    assert [i.correct for i in items] == [1, 0, 0, 0, 1, 0]
    assert [i.included for i in items] == [True, True, False, True, True, True]
    assert score.metrics["accuracy"] == pytest.approx(2 / 5)
    assert score.metrics["accuracy_all"] == pytest.approx(2 / 6)
    assert score.breakdowns["task_type"]["Counting"] == {"accuracy": 0.5, "n": 2}


def test_mmmu_style_egoschema_nextqa() -> None:
    options = ["cooking dinner", "cleaning the floor", "reading a book", "writing", "running"]
    rng = rng_for("q", 0)
    assert mmmu_letter("(C) reading", options, rng) == ("C", False)
    assert mmmu_letter("I think B is the answer", options, rng) == ("B", False)
    assert mmmu_letter("A or maybe C", options, rng) == ("C", False)  # several: the last one wins
    assert mmmu_letter("the person is mostly cleaning the floor today", options, rng) == ("B", False)
    letter, fell_back = mmmu_letter("hmm", options, rng_for("q", 0))
    assert fell_back and letter == mmmu_letter("zzz", options, rng_for("q", 0))[0]  # seeded by (seed, qid)
    cases = [
        (mc("n1", "nextqa", "A", "CW", n=5, options=options), "(A)"),
        (mc("n2", "nextqa", "B", "TN", n=5, options=options), "C"),
        (mc("n3", "nextqa", "E", "DO", n=5, options=options), "E."),
    ]
    items, score = run("nextqa", cases)
    assert [i.correct for i in items] == [1, 0, 1]
    assert score.breakdowns["group"] == {"causal": {"accuracy": 1.0, "n": 1}, "descriptive": {"accuracy": 1.0, "n": 1},
                                         "temporal": {"accuracy": 0.0, "n": 1}}
    ego_items, ego = run("egoschema", [(mc("e", "egoschema", "A", n=5, options=options), "no idea")])
    assert not ego_items[0].parsed and ego.parse_failure_rate == 1.0


def test_longvideobench_first_letter() -> None:
    items, _ = run("longvideobench", [(mc("l1", "longvideobench", "D", n=5), "D. A book"),
                                      (mc("l2", "longvideobench", "A", n=5), "The answer is (A)")])
    assert [i.correct for i in items] == [1, 1]


def test_rtvbench_extraction_and_group_score() -> None:
    assert rtv_letter("B", 4) == "B" and rtv_letter("answer: c", 4) == "C"
    assert rtv_letter("I think B", 4) is None  # "I" is the first standalone letter; the official rule gives up

    def q(qid: str, group: str, level: int, answer: str) -> ManifestRecord:
        return mc(qid, "rtvbench", answer, "Object-TP", meta={"group": group, "level": level})

    cases = [
        (q("g1-0", "g1", 0, "A"), "A"), (q("g1-1", "g1", 1, "B"), "B"),  # basics right
        (q("g1-2a", "g1", 2, "C"), "C"), (q("g1-2b", "g1", 2, "D"), "A"),  # advanced 1 of 2
        (q("g2-0", "g2", 0, "A"), "B"),  # a basic wrong: the advanced answer does not count
        (q("g2-2", "g2", 2, "A"), "A"),
        (q("g3-0", "g3", 0, "A"), "A"),  # no advanced question: not in the Group Score
    ]
    _, score = run("rtvbench", cases)
    assert score.metrics["accuracy"] == pytest.approx(5 / 7)
    assert score.metrics["group_score"] == pytest.approx(1 / 3)
    assert set(score.breakdowns["level"]) == {"0", "1", "2"}


def test_missing_and_error_predictions_count_as_unanswered() -> None:
    scorer = scorer_for("needle")
    record = mc("x", "needle", "A")
    missing = scorer.item(record, None)
    failed = scorer.item(record, {"response": None, "error": "cannot open"})
    assert not missing.answered and not failed.answered and missing.correct == failed.correct == 0


def test_cluster_bootstrap_resamples_videos() -> None:
    def item(video: str, correct: float) -> ScoredItem:
        return ScoredItem("q", video, "t", correct, True, correct, True)

    items = [item("v1", 1.0) for _ in range(20)] + [item("v2", 0.0) for _ in range(20)]
    low, high = cluster_bootstrap(items, lambda s: sum(i.correct for i in s) / len(s), n_boot=400, seed=1)
    assert (low, high) == (0.0, 1.0)  # two videos: replicates are 0, 0.5 or 1
    iid_low, iid_high = cluster_bootstrap(items, lambda s: sum(i.correct for i in s) / len(s), n_boot=400, seed=1,
                                          cluster=lambda i: id(i))
    assert 0.25 < iid_low < 0.5 < iid_high < 0.75  # questions resampled independently: far too narrow
    assert math.isnan(cluster_bootstrap([], lambda s: 0.0)[0])


def test_open_ended_proxy_is_labelled() -> None:
    cases = [
        (other("a1", "activitynetqa", "yesno", "no", "yes_no"), "No, he is not."),
        (other("a2", "activitynetqa", "count", "2", "number"), "2 people"),
        (other("a3", "activitynetqa", "open", "throwing javelin", "motion"), "Throwing the javelin."),
        (other("a4", "activitynetqa", "open", "green", "color"), "It is green"),
    ]
    items, score = run("activitynetqa", cases)
    assert [i.correct for i in items] == [1, 1, 1, 0]
    assert score.metrics == {"exact_match": 0.75} and "LLM judge" in score.notes[0]
