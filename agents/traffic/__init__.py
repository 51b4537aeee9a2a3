"""The traffic pipeline: API request events -> contract matching, risk scores, circuit
breakers, SLO burn and traffic decisions, under a signed policy.

- :mod:`.rules`: the pure decisions (a package: engine, contracts, risk, breaker, SLO,
  windows, policy, invariants, offline replay);
- :mod:`.agent`: the Faust side (router and decider stages), through
  :class:`app.runtime.template.Pipeline`;
- :mod:`.policy_feed`: the compacted policy topic, read by every worker;
- :mod:`.api`: its HTTP views (validate, decisions, policy);
- :mod:`.settings`: its section of the settings (``traffic:``);
- :mod:`.metrics`: its metrics (requests, decisions, risk, breakers, SLO burn, policy).
"""
