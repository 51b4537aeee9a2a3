"""``governor policy``: traffic policy keys, signing, verification and publishing."""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

from app.cli.common import UsageError, require_cluster, settings_of


def cmd_policy(args: argparse.Namespace) -> int:
    """Traffic policies: keygen, sign, verify, publish, key."""
    from app.tools import policy_tool

    try:
        if args.action == "keygen":
            out = Path(args.out or "var/policy.key")
            print(policy_tool.keygen(out))
            print(f"private key written to {out} (keep it secret)", file=sys.stderr)
            return 0
        settings = settings_of(args)
        if args.action == "key":
            ident, public = policy_tool.public_key_of(settings)
            print(f"{ident} {public}")
            return 0
        if not args.file:
            raise UsageError(f"policy {args.action} needs a file")
        path = Path(args.file)
        if args.action == "sign":
            out = Path(args.out or path.with_suffix(".signed.json"))
            artifact = policy_tool.sign_file(settings, path, out)
            print(f"{out}: policy {artifact.policy.version} hash {artifact.policy_hash}")
            return 0
        if args.action == "verify":
            artifact, problem = policy_tool.verify_file(settings, path)
            if problem is not None:
                print(f"{path}: REFUSED ({problem.value})")
                return 1
            print(f"{path}: ok, policy {artifact.policy.version} signed by {artifact.key_id}")
            return 0
        require_cluster(settings)
        message, offset = asyncio.run(policy_tool.publish(settings, path.read_bytes()))
        print(f"published {message} at offset {offset}")
        return 0
    except policy_tool.PolicyError as exc:
        raise UsageError(str(exc)) from None


def add(sub: Any) -> None:
    """Register policy on the ``governor`` parser."""
    policy = sub.add_parser("policy", help="traffic policies: keygen, sign, verify, publish")
    policy.add_argument("action", choices=["keygen", "key", "sign", "verify", "publish"])
    policy.add_argument("file", nargs="?", help="sign: policy YAML/JSON; verify, publish: artifact")
    policy.add_argument("--out", help="keygen: key file (var/policy.key); sign: artifact file")
    policy.set_defaults(func=cmd_policy)
