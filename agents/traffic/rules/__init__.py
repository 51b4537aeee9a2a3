"""Traffic-governance rules: contracts, statistics, breakers, risk, policy, the decision.

Pure like every rule module: ``(state, event, policy) -> (new state, outputs)``, event time
only, so the same events under the same policy give byte-identical decisions.
"""
