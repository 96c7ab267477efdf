"""Bearer tokens: their form, and their scrypt hashes (the grid stores only the hash).

A token is `shoal_<id>_<secret>`: the id (public, 12 hex digits) finds the record in one
lookup, so a guessed token costs no hashing unless its id exists; the secret is 32
random bytes. scrypt makes a stolen copy of the auth map useless for finding secrets.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass

PREFIX = "shoal_"
ID_HEX = 12
# scrypt with n=2**14, r=8 takes about 16 MiB and tens of milliseconds: too slow for
# every call (verified tokens are cached, see authentication.py), harmless once.
SCRYPT_N = 2**14
SCRYPT_R = 8
SCRYPT_P = 1
SALT_BYTES = 16
# A token given by the operator (the bootstrap token from a file or the environment)
# has no id of its own: it is found under this one.
BOOTSTRAP_ID = "bootstrap"


@dataclass(frozen=True)
class ParsedToken:
    token_id: str
    secret: str


def new_token() -> tuple[str, str]:
    """(token id, token)."""
    token_id = secrets.token_hex(ID_HEX // 2)
    secret = base64.urlsafe_b64encode(os.urandom(32)).rstrip(b"=").decode()
    return token_id, f"{PREFIX}{token_id}_{secret}"


def parse(token: str) -> ParsedToken:
    if token.startswith(PREFIX):
        token_id, separator, secret = token[len(PREFIX) :].partition("_")
        if separator and len(token_id) == ID_HEX and secret:
            return ParsedToken(token_id, secret)
    return ParsedToken(BOOTSTRAP_ID, token)


def hash_secret(secret: str, salt: bytes | None = None) -> str:
    """`scrypt$n$r$p$salt$hash`, base64 parts."""
    salt = os.urandom(SALT_BYTES) if salt is None else salt
    digest = hashlib.scrypt(
        secret.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, dklen=32
    )
    return "$".join(
        (
            "scrypt",
            str(SCRYPT_N),
            str(SCRYPT_R),
            str(SCRYPT_P),
            base64.b64encode(salt).decode(),
            base64.b64encode(digest).decode(),
        )
    )


def verify_secret(secret: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            secret.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            dklen=len(expected),
            maxmem=64 * 1024 * 1024,
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


def cache_key(token: str) -> bytes:
    """What the verified-token cache is keyed by: a fast hash, never the token itself."""
    return hashlib.sha256(token.encode()).digest()
