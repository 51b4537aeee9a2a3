"""The AI cost pipelines: fusion requests and results (AI model/overlay runs) -> energy
decisions under tenant budgets, and the overlay stage's tripwire, gates, breakers and
routing, in event-time order.

- :mod:`.rules`: the pure decisions (a package: budget, settlement, cost, tripwire, gates,
  breaker, overlay, ordering, flags, knobs, tokens, routing, offline replay);
- :mod:`.agent`: the tenant stage (requests, results, budgets), through
  :class:`app.runtime.template.Pipeline`; :mod:`.overlays`: the overlay stage;
  :mod:`.progress`: the progress records that order the overlay stage's runs;
  :mod:`.routing_feed`: the compacted overlay-routing topic, read by every worker;
- :mod:`.api`, :mod:`.api_admission`, :mod:`.api_execute`: its HTTP views (synchronous
  admission and execute, budgets, state);
- :mod:`.settings`: its section of the settings (``fusion:``);
- :mod:`.metrics`: its metrics.
"""
