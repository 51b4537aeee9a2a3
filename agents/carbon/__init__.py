"""The carbon pipeline: meter readings -> carbon emissions, per-facility day totals and the
carbon budgets' usage (Scope 2, location- and market-based).

- :mod:`.rules`: the pure decisions (emission of a reading, day totals, checks);
- :mod:`.agent`: the Faust side, through :class:`app.runtime.template.Pipeline`;
- :mod:`.api`: its HTTP views (ingest, emissions per facility);
- :mod:`.settings`: its section of the settings (``carbon:``);
- :mod:`.metrics`: its metrics (readings, energy, emissions).
"""
