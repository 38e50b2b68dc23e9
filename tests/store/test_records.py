"""The compiled records the embedded store keeps of transactions that earned points."""

from __future__ import annotations

import pickle

from pointengine.store.records import Award, Transaction


def test_an_award_compares_hashes_and_pickles_by_its_fields() -> None:
    award = Award("p", 1, 250, "paypay", ("pp|p|MK-A", "pg|g|MK-A"))
    same = Award("p", 1, 250, "paypay", ("pp|p|MK-A", "pg|g|MK-A"))
    assert award == same and hash(award) == hash(same)
    assert award != Award("p", 2, 250, "paypay", ("pp|p|MK-A", "pg|g|MK-A"))
    assert pickle.loads(pickle.dumps(award)) == award
    assert "points=250" in repr(award)


def test_a_transaction_keeps_its_refunds_through_pickling() -> None:
    tx = Transaction(4_000, (Award("p", 1, 1_000, "paypay", ("pp|p|MK-A",)),), "MK-A|paypay")
    assert (tx.refunded, tx.reversed) == (0, None)
    tx.refunded, tx.reversed = 2_000, [500]
    back = pickle.loads(pickle.dumps(tx))
    assert (back.amount, back.refunded, back.reversed, back.payer) == (
        4_000, 2_000, [500], "MK-A|paypay")
    assert back.awards == tx.awards
