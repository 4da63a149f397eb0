"""Agreement statistics, checked against values worked out by hand."""

import math

import pandas as pd
import pytest

from textmine.evaluate import (
    MACRO_STANCE,
    MICRO_TYPES,
    agreement_table,
    align_predictions,
    cohen_kappa,
    disagreements,
    evaluate_coding,
    krippendorff_alpha_nominal,
)

A = [1, 1, 0, 0, 0, 0, 0, 0, 1, 0]
B = [1, 0, 0, 0, 0, 0, 0, 1, 1, 0]


def test_cohen_kappa_by_hand():
    # p_o = 8/10; both coders 30% ones: p_e = .3*.3 + .7*.7 = .58; (0.8 - .58) / .42
    assert cohen_kappa(A, B) == pytest.approx(0.22 / 0.42)
    assert cohen_kappa([1, 0, 1], [1, 0, 1]) == 1.0
    assert math.isnan(cohen_kappa([0, 0, 0], [0, 0, 0]))


def test_krippendorff_alpha_nominal_by_hand():
    # 20 pairable values: 6 ones, 14 zeros; 2 disagreeing units give o_01 = o_10 = 2.
    # alpha = 1 - (n - 1) * (o_01 + o_10) / (2 * n_0 * n_1) = 1 - 19 * 4 / 168
    assert krippendorff_alpha_nominal(A, B) == pytest.approx(1 - 76 / 168)
    assert krippendorff_alpha_nominal([1, 0], [1, 0]) == 1.0
    assert math.isnan(krippendorff_alpha_nominal([1, 1], [1, 1]))
    # alpha is slightly above kappa for the same data (small-sample correction)
    assert krippendorff_alpha_nominal(A, B) > cohen_kappa(A, B)


def frames():
    gold = pd.DataFrame(
        {
            "id": ["a", "b", "c", "d"],
            "sentence": ["s1", "s2", "s3", "s4"],
            "competition": [1, 0, 1, 0],
            "collaboration": [1, 1, 0, 0],
            "federation": [1, 0, 0, 0],
            "network": [0, 1, 0, 0],
        }
    )
    pred = pd.DataFrame(
        {
            "id": ["d", "c", "b", "a"],
            "competition": [0, 1, 1, 1],
            "collaboration": [0, 0, 1, 1],
            "federation": [0, 0, 0, 1],
            "network": [1, 0, 1, 0],
            "evidence": [
                '{"network": [{"text": "partners", "rule": "partners"}]}',
                "{}",
                "{}",
                "{}",
            ],
        }
    )
    return gold, pred


def test_table_per_code_and_summaries():
    gold, pred = frames()
    codes = ["competition", "collaboration", "federation", "network"]
    table, diffs = evaluate_coding(
        gold, pred, codes, stance_codes=codes[:2], partnership_codes=codes[2:]
    )
    rows = table.set_index("code")
    comp = rows.loc["competition"]
    assert (comp.tp, comp.fp, comp.fn) == (2, 1, 0)
    assert comp.precision == pytest.approx(2 / 3) and comp.recall == 1.0
    assert comp.f1 == pytest.approx(0.8)
    assert rows.loc["collaboration"].f1 == 1.0
    assert rows.loc[MACRO_STANCE].f1 == pytest.approx((0.8 + 1.0) / 2)
    # types: federation tp1; network tp1 fp1 -> micro P = 2/3, R = 1, F1 = 0.8
    assert rows.loc[MICRO_TYPES].f1 == pytest.approx(0.8)
    assert list(diffs.columns) == ["id", "sentence", "code", "gold", "predicted", "evidence"]
    assert diffs[["id", "code", "gold", "predicted"]].values.tolist() == [
        ["b", "competition", 0, 1],
        ["d", "network", 0, 1],
    ]
    assert diffs.evidence.iloc[1] == "partners [partners]"


def test_align_by_sentence_id_and_clear_errors():
    gold, pred = frames()
    by_sentence = pred.rename(columns={"id": "sentence_id"})
    aligned = align_predictions(gold, by_sentence, ["competition"])
    assert aligned["sentence_id"].tolist() == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="1 gold sentence"):
        align_predictions(gold, pred[pred.id != "c"], ["competition"])
    with pytest.raises(ValueError, match="lack code column"):
        align_predictions(gold, pred.drop(columns="network"), ["network"])
    with pytest.raises(ValueError, match="neither an `id` nor a `sentence_id`"):
        align_predictions(gold, pred.drop(columns="id"), ["competition"])


def test_disagreements_empty_when_codings_agree():
    gold, _ = frames()
    codes = ["competition", "collaboration"]
    assert disagreements(gold, gold, codes).empty
    table = agreement_table(gold, gold, codes, stance_codes=codes, partnership_codes=[])
    assert table.set_index("code").loc["competition", "kappa"] == 1.0
