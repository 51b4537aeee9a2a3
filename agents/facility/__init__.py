"""The facility pipelines: per-facility carbon budgets (fed by the carbon agent's emissions),
zone load evaluation from load metrics, and load-balancing decisions and commands.

- :mod:`.rules`: the pure decisions (carbon budgets, load, balancing, optimization);
- :mod:`.context`: what the pipelines share (:class:`~agents.facility.context.FacilityContext`);
- :mod:`.agent`: the carbon budget pipelines and the wiring; :mod:`.load_agent`: the load
  pipelines (metrics decided a batch at once, commands one at a time), all through
  :class:`app.runtime.template.Pipeline`;
- :mod:`.api`: its HTTP views (budgets, zones, balancing execute);
- :mod:`.settings`: its sections of the settings (``carbon_budgets:``, ``load:``, ...);
- :mod:`.metrics`: its metrics (budget usage and state, zone utilization, decisions).
"""
