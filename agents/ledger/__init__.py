"""The decision ledger's Faust side: the appender that chains every decision topic's records
(:mod:`.agent`, run in its own supervised process) and its HTTP views (:mod:`.api`: chains,
checkpoints, proofs). The chain rule, Merkle tree, notes and verification are in
:mod:`app.ledger`."""
