"""``governor fusion``: AI cost governance flag validation and approval tokens."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from app.cli.common import UsageError, settings_of


def cmd_fusion(args: argparse.Namespace) -> int:
    """Feature-flag validation and approval tokens for AI cost governance."""
    import json

    from agents.fusion.rules import flags, tokens

    settings = settings_of(args)
    config = settings.fusion
    if args.action == "flags":
        for flag in config.flags:
            state = "on" if config.flag_on(flag) else "off"
            print(f"{flag.feature}: {flag.scenario_type}/{flag.overlay} {state},"
                  f" rollout {flag.rollout_pct:g} %")  # fmt: skip
        if config.enabled_features is not None:
            print(f"enabled by override: {', '.join(config.enabled_features) or '(none)'}")
        problems = flags.validate(config)
        for problem in problems:
            print(f"problem: {problem}")
        print("flags: ok" if not problems else f"flags: {len(problems)} problem(s)")
        return 1 if problems else 0
    secret = config.approvals.secret()
    if secret is None:
        raise UsageError("no approval secret: set fusion.approvals.hmac_secret[_file]")
    text = sys.stdin.read() if args.request in (None, "-") else Path(args.request).read_text()
    try:
        request = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"the request is not JSON: {exc}") from None
    if not isinstance(request, dict):
        raise UsageError("the request must be a JSON object")
    print(tokens.make_token(secret, request, int(time.time())))
    return 0


def add(sub: Any) -> None:
    """Register fusion on the ``governor`` parser."""
    fusion = sub.add_parser("fusion", help="AI cost governance: validate flags, approval tokens")
    fusion.add_argument("action", choices=["flags", "token"])
    fusion.add_argument("request", nargs="?", help="token: the request JSON file (or -)")
    fusion.set_defaults(func=cmd_fusion)
