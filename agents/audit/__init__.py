"""The budget-audit pipeline: controller slot spends (control ticks) -> slot records, day and
period rollups, compliance alerts and reports.

- :mod:`.rules`: the pure decisions (:mod:`.rules.ticks`) and reports (:mod:`.rules.report`);
- :mod:`.agent`: the Faust side, through :class:`app.runtime.template.Pipeline`;
- :mod:`.api`: its HTTP views (reports, rollups);
- :mod:`.settings`: its section of the settings (``audit:``);
- :mod:`.metrics`: its metrics (ticks, energy cost, utilization, alerts).
"""
