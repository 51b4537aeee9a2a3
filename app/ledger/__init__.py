"""The tamper-evident decision ledger: hash chains, RFC 6962 Merkle trees, signed checkpoints."""
