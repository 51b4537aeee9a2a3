"""C2SP signed notes with Ed25519, and the tlog-checkpoint body they carry.

A checkpoint note is ``<origin>\\n<tree size>\\n<base64 root hash>\\n``, then a blank line,
then one signature line per signer: ``— <key name> <base64(key id || signature)>``. The key
id is the first 4 bytes of SHA-256(key name || 0x0A || 0x01 || public key); the signature
covers the note text (the body, ending with its newline). A verifier key is published as
``<key name>+<hex key id>+<base64(0x01 || public key)>``.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

ED25519 = b"\x01"
EM_DASH = "\u2014"


class NoteError(ValueError):
    """The note is malformed or its signature does not verify."""


def key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + ED25519 + public_key).digest()[:4]


def public_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


@dataclass(frozen=True)
class Signer:
    """An Ed25519 signing key under a name."""

    name: str
    key: Ed25519PrivateKey

    @classmethod
    def from_seed(cls, name: str, seed: bytes) -> Signer:
        if len(seed) != 32:
            raise ValueError(f"an Ed25519 seed is 32 bytes, got {len(seed)}")
        return cls(name, Ed25519PrivateKey.from_private_bytes(seed))

    @property
    def public_key(self) -> bytes:
        return public_bytes(self.key.public_key())

    def verifier_key(self) -> str:
        """The published form of the public key (a C2SP vkey)."""
        encoded = base64.b64encode(ED25519 + self.public_key).decode()
        return f"{self.name}+{key_id(self.name, self.public_key).hex()}+{encoded}"

    def sign(self, text: str) -> str:
        """The signed note of ``text`` (which must end with a newline)."""
        if not text.endswith("\n"):
            raise ValueError("note text must end with a newline")
        signature = self.key.sign(text.encode())
        line = base64.b64encode(key_id(self.name, self.public_key) + signature).decode()
        return f"{text}\n{EM_DASH} {self.name} {line}\n"


@dataclass(frozen=True)
class Verifier:
    """A published verifier key."""

    name: str
    public_key: bytes

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        try:
            name, hex_id, encoded = vkey.strip().split("+", 2)
            raw = base64.b64decode(encoded, validate=True)
        except ValueError as exc:
            raise NoteError(f"not a verifier key: {exc}") from exc
        if raw[:1] != ED25519 or len(raw) != 33:
            raise NoteError("verifier key is not an Ed25519 key")
        if key_id(name, raw[1:]).hex() != hex_id:
            raise NoteError("verifier key id does not match its name and key")
        return cls(name, raw[1:])

    def open(self, note: str) -> str:
        """The note text if one signature line is by this key and verifies."""
        text, sep, signatures = note.partition("\n\n")
        if not sep:
            raise NoteError("note has no signature block")
        text += "\n"
        wanted = key_id(self.name, self.public_key)
        for line in signatures.splitlines():
            parts = line.split(" ")
            if len(parts) != 3 or parts[0] != EM_DASH or parts[1] != self.name:
                continue
            try:
                blob = base64.b64decode(parts[2], validate=True)
            except ValueError:
                continue
            if blob[:4] != wanted:
                continue
            try:
                Ed25519PublicKey.from_public_bytes(self.public_key).verify(blob[4:], text.encode())
            except InvalidSignature:
                raise NoteError(f"signature by {self.name} does not verify") from None
            return text
        raise NoteError(f"no signature by {self.name}")


def checkpoint_text(origin: str, size: int, root: bytes) -> str:
    """The tlog-checkpoint body."""
    return f"{origin}\n{size}\n{base64.b64encode(root).decode()}\n"


def parse_checkpoint_text(text: str) -> tuple[str, int, bytes]:
    lines = text.split("\n")
    if len(lines) < 4 or not lines[1].isdigit():
        raise NoteError("not a checkpoint body: origin, size, root hash")
    return lines[0], int(lines[1]), base64.b64decode(lines[2])
