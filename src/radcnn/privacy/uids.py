"""Keyed UID replacement under the 2.25 root (UUID-derived UIDs, PS3.5 B.2).

new UID = "2.25." + the decimal value of a version-8 UUID whose 122 free bits are the first bits of
HMAC-SHA256(uid-subkey, original UID). The same original maps to the same replacement in every file, run and
process that uses the same key, so study/series/frame-of-reference references stay consistent without any
shared state; without the key the replacement can neither be reversed nor recomputed (a plain hash of the UID
could be recomputed by anyone holding a candidate list of UIDs).
"""

from __future__ import annotations

import functools
import hashlib
import hmac

from radcnn.encryption.keys import derive_subkey

UID_ROOT = "2.25."


def derive_uid(subkey: bytes, uid: str) -> str:
    """Pure mapping of one UID with an already-derived sub-key ("" stays "")."""
    uid = uid.strip("\0 ")
    if not uid:
        return ""
    digest = bytearray(hmac.new(subkey, uid.encode("ascii", "replace"), hashlib.sha256).digest()[:16])
    digest[6] = (digest[6] & 0x0F) | 0x80  # UUID version 8 (custom): RFC 9562 section 5.8
    digest[8] = (digest[8] & 0x3F) | 0x80  # RFC 4122/9562 variant
    return UID_ROOT + str(int.from_bytes(digest, "big"))


class UIDMapper:
    """Callable original UID -> replacement UID for one project key (memoised per process)."""

    def __init__(self, key: bytes):
        self._subkey = derive_subkey(key, "uid/v1")
        self._map = functools.lru_cache(maxsize=65536)(functools.partial(derive_uid, self._subkey))

    def __call__(self, uid: str) -> str:
        return self._map(str(uid))
