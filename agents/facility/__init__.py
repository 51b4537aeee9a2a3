"""The facility pipelines: per-facility carbon budgets (fed by the carbon agent's emissions),
zone load evaluation from load metrics, and load-balancing decisions and commands.

- :mod:`.rules`: the pure decisions (carbon budgets, load, balancing, optimization);
- :mod:`.agent`: the Faust side (:class:`~agents.facility.agent.FacilityContext` and its
  pipelines), through :class:`app.runtime.template.Pipeline`;
- :mod:`.api`: its HTTP views (budgets, zones, balancing execute);
- :mod:`.settings`: its sections of the settings (``carbon_budgets:``, ``load:``, ...);
- :mod:`.metrics`: its metrics (budget usage and state, zone utilization, decisions).
"""
