"""The escrow rules, one by one."""

from __future__ import annotations

import pytest
from cairn_payments.domain.errors import EscrowRuleBroken, LedgerError
from cairn_payments.domain.escrow import Escrow, platform_fee
from cairn_payments.domain.ledger import EscrowLedger, LedgerEntry, Posting, move


def funded(amount: int = 10_000) -> Escrow:
    escrow = Escrow(
        milestone_id="m",
        marketplace_id="mkt",
        contract_id="c",
        customer_id="cu",
        freelancer_id="fr",
        amount=amount,
        currency="EUR",
    )
    escrow.begin_funding(1)
    escrow.funding_succeeded("pi_1", "ch_1")
    return escrow


def test_fee_is_rounded_down_and_parts_add_up() -> None:
    assert platform_fee(10_001, 1_000) == 1_000
    escrow = funded(10_001)
    fee, net = escrow.release_parts(1_000)
    assert fee + net == 10_001


def test_an_unbalanced_entry_is_refused() -> None:
    with pytest.raises(LedgerError):
        LedgerEntry("k", "charge", "mkt", "m", "EUR", (Posting("a", -5), Posting("b", 4)))


def test_recording_an_entry_twice_changes_nothing() -> None:
    entry = move(
        "k",
        "charge",
        marketplace_id="mkt",
        milestone_id="m",
        currency="EUR",
        amount=5,
        source="a",
        destination="b",
    )
    ledger = EscrowLedger.of([entry])
    assert ledger.record(entry) is False
    assert ledger.balance("b", "EUR") == 5


def test_a_funded_milestone_is_not_charged_again() -> None:
    escrow = funded()
    assert not escrow.may_fund(1)
    assert not escrow.may_fund(2)
    assert escrow.funding_succeeded("pi_1", "ch_1") == []


def test_a_failed_attempt_may_be_followed_by_a_new_one_only() -> None:
    escrow = Escrow("m", "mkt", "c", "cu", "fr", 100, "EUR")
    escrow.begin_funding(1)
    escrow.funding_failed("pi_1")
    assert not escrow.may_fund(1)
    assert escrow.may_fund(2)


def test_over_refund_is_impossible() -> None:
    escrow = funded(1_000)
    with pytest.raises(EscrowRuleBroken):
        escrow.refunded_money("re_1", 1_001, final=True)
    escrow.refunded_money("re_1", 1_000, final=True)
    with pytest.raises(EscrowRuleBroken):
        escrow.refund_parts()


def test_split_must_add_up_to_what_is_held() -> None:
    escrow = funded(1_000)
    with pytest.raises(EscrowRuleBroken):
        escrow.split_parts(600, 500, 0)
    fee, net = escrow.split_parts(600, 400, 1_000)
    assert (fee, net) == (60, 540)


def test_chargeback_freezes_the_escrow() -> None:
    escrow = funded(1_000)
    entries = escrow.chargeback_opened("dp_1", 1_000)
    assert sum(e.postings[1].amount for e in entries) == 1_000
    assert escrow.frozen
    assert escrow.held == 0
    with pytest.raises(EscrowRuleBroken):
        escrow.release_parts(0)
    with pytest.raises(EscrowRuleBroken):
        escrow.refund_parts()


@pytest.mark.parametrize(
    ("policy", "freelancer_owes", "platform_bears"),
    [("freelancer", 9_000, 1_000), ("platform", 0, 10_000)],
)
def test_a_chargeback_after_release_follows_the_marketplace_policy(
    policy: str, freelancer_owes: int, platform_bears: int
) -> None:
    escrow = funded(10_000)
    escrow.chargeback_after_release = policy  # type: ignore[assignment]
    fee, net = escrow.release_parts(1_000)
    escrow.released("tr_1", fee, net)

    entries = escrow.chargeback_opened("dp_1", 10_000)

    taken = {e.postings[0].account: -e.postings[0].amount for e in entries}
    assert taken == {
        k: v
        for k, v in {
            f"freelancer_receivable:{escrow.freelancer_id}": freelancer_owes,
            f"platform_fees:{escrow.marketplace_id}": platform_bears,
        }.items()
        if v
    }
    assert escrow.chargeback_owed_by_freelancer == freelancer_owes
    assert (escrow.chargeback, escrow.frozen) == (10_000, True)


def test_money_still_held_is_taken_from_the_escrow_whatever_the_policy() -> None:
    escrow = funded(10_000)
    escrow.chargeback_after_release = "platform"
    entries = escrow.chargeback_opened("dp_1", 10_000)
    assert [(e.postings[0].account, e.postings[0].amount) for e in entries] == [
        (f"escrow:{escrow.milestone_id}", -10_000)
    ]
    assert (escrow.held, escrow.chargeback_owed_by_freelancer) == (0, 0)


def test_nothing_moves_while_reconciling() -> None:
    escrow = funded(1_000)
    escrow.to_reconciling("release")
    with pytest.raises(EscrowRuleBroken):
        escrow.release_parts(0)
    escrow.resume()
    assert escrow.state == "funded"
