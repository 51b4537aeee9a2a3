"""What a traffic decision records of how it was made: the lifecycle phases that ran, and
the invariants checked on the data at their boundaries (issue "Seed parity" part 6: the
phases were a constant that claimed a ledger append no decision can have seen, and two
invariants held by construction)."""

from __future__ import annotations

from agents.traffic.rules import risk as risks
from agents.traffic.rules.policy import ActivePolicy
from schemas.traffic import InvariantCheck, ReasonCode, RoutedRequest
from schemas.traffic_policy import Action, Invariant, Phase

DECIDED = (
    Phase.PHASE_1_OBSERVATION,
    Phase.PHASE_2_CONTRACT_PAIRING,
    Phase.PHASE_3_RISK_ASSESSMENT,
    Phase.PHASE_4_POLICY_BOUNDARIES,
    Phase.PHASE_5_DECISION_EXECUTION,
)
"""The phases every decision runs."""
GATED = (Invariant.POLICY_HASH_VERIFIED, Invariant.ACTIONS_WITHIN_TIER)
"""Invariants without which a decision takes no action."""


def phases_run(paired: bool) -> tuple[Phase, ...]:
    """Stability control (the breaker, burn-rate alerts) runs only for a request paired with
    a contract. The ledger appends a decision after it is published, so no decision can
    say it was appended."""
    return (*DECIDED, Phase.PHASE_6_STABILITY_CONTROL) if paired else DECIDED


def before_deciding(
    routed: RoutedRequest, paired: bool, active: ActivePolicy
) -> list[InvariantCheck]:
    """Pairing found a contract, under the policy in force, and that policy is the one that
    was applied: verified, and its content still hashing to the hash it was applied under."""
    return [
        InvariantCheck(
            phase=Phase.PHASE_2_CONTRACT_PAIRING,
            invariant=Invariant.CONTRACT_ID_REQUIRED,
            held=paired,
        ),
        InvariantCheck(
            phase=Phase.PHASE_2_CONTRACT_PAIRING,
            invariant=Invariant.PAIRED_UNDER_ACTIVE_POLICY,
            held=routed.paired_under == active.hash,
        ),
        InvariantCheck(
            phase=Phase.PHASE_4_POLICY_BOUNDARIES,
            invariant=Invariant.POLICY_HASH_VERIFIED,
            held=active.hash_holds(),
        ),
    ]


def refuse_unless_held(
    verdict: risks.Verdict, invariants: list[InvariantCheck], allowed: set[Action]
) -> risks.Verdict:
    """Check the actions the verdict takes against those the tier allows, on the verdict
    itself (appended to ``invariants``); if that or the policy check failed, take no action
    and say why: a decision must not act on a policy it cannot vouch for."""
    invariants.append(
        InvariantCheck(
            phase=Phase.PHASE_5_DECISION_EXECUTION,
            invariant=Invariant.ACTIONS_WITHIN_TIER,
            held=set(verdict.taken) <= allowed,
        )
    )
    if all(c.held for c in invariants if c.invariant in GATED):
        return verdict
    reasons = (*verdict.reasons, ReasonCode.INVARIANT_VIOLATED)
    return risks.Verdict(verdict.decision, reasons, verdict.recommended, ())
