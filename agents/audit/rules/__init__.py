"""The budget-audit rules: control ticks to slots, rollups and compliance (:mod:`.ticks`),
and the reports over rollups that the CLI and the HTTP API share (:mod:`.report`)."""
