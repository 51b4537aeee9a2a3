"""The reference designs' payloads, verbatim where the reference gives an example (seed
004's reading, seed 002's request event), else built from the fields its code reads (seed
000's /fusion/execute body, seed 001's tick attributes)."""

from __future__ import annotations

import orjson

SEED_004_READING = b"""{
    "meter_id": "meter-001",
    "facility_id": "facility-001",
    "energy_source": "grid",
    "consumption": 150.5,
    "voltage": 400.0,
    "current": 62.5,
    "power_factor": 0.95,
    "timestamp": "2024-01-15T10:30:00Z"
  }"""
SEED_002_EVENT = orjson.dumps(
    {"url": "https://api.example.com/api/v1/status", "method": "GET", "status_code": 200,
     "latency_ms": 50.0}
)  # fmt: skip
SEED_000_REQUEST = orjson.dumps(
    {"scenario_type": "refund_processing", "complexity": "high", "trust_score": 0.5,
     "estimated_cost": 100}
)  # fmt: skip
SEED_001_TICK = orjson.dumps(
    {"timestamp": "2024-01-15T10:30:00Z", "slot_index": 126, "plan_offset_deg": 2.5,
     "target_angle": 1.75, "energy_cost_kwh": 0.42, "budget_spent_kwh": 3.1,
     "budget_remaining_kwh": 46.9, "live_gate_passed": True, "source": "controller",
     "stage_id": "stage-1"}
)  # fmt: skip
