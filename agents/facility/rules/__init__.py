"""The facility pipelines' pure decisions: carbon budgets per facility (:mod:`.carbon_budget`),
zone load evaluation (:mod:`.load`), load-balancing commands (:mod:`.balancing`) and the
carbon-aware optimization that joins them (:mod:`.optimization`)."""
