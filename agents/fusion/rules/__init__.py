"""AI energy and cost governance rules: cost multipliers, budgets with reservations, the
budget tripwire, fusion gates, overlay breakers, feature flags and approval tokens.

Pure like every rule module; decisions depend on event time and input order only.
"""
