"""Encryption-at-rest throughput (MB/s): radcnn's chunked AES-256-GCM format against raw AES-GCM.

    python benchmarks/encryption_speed.py --mib 256

Measures, on one file of `--mib` MiB of random data: file -> file encryption, file -> file decryption (temp
file + rename after the last chunk authenticated), decryption into memory (`decrypt_to_bytes`), and the ceiling
set by one-shot AESGCM over one cache-hot 1 MiB buffer in the same run. Also times the passphrase KDF (scrypt,
N=2^17, r=8), paid once per file or once per tree. Prints JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path


def _best(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--chunk-mib", type=int, default=1)
    args = parser.parse_args()

    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    from radcnn.encryption.cipher import decrypt_file, decrypt_to_bytes, encrypt_file
    from radcnn.encryption.keys import Secret

    root = Path(tempfile.mkdtemp(prefix="radcnn-enc-bench-"))
    try:
        plain, enc, dec = root / "plain.bin", root / "plain.rcenc", root / "plain.out"
        block = os.urandom(1 << 20)
        with plain.open("wb") as fh:
            for _ in range(args.mib):
                fh.write(block)
        size_mb = plain.stat().st_size / 1e6
        key, chunk = os.urandom(32), args.chunk_mib << 20

        t_enc = _best(lambda: encrypt_file(plain, enc, key, chunk_size=chunk), args.repeats)
        t_dec = _best(lambda: decrypt_file(enc, dec, key), args.repeats)
        t_mem = _best(lambda: decrypt_to_bytes(enc, key), args.repeats)
        aead, nonce = AESGCM(key), os.urandom(12)

        def raw() -> None:
            for _ in range(args.mib):
                aead.encrypt(nonce, block, None)

        t_raw = _best(raw, args.repeats)
        tiny = root / "tiny.bin"
        tiny.write_bytes(b"x")
        start = time.perf_counter()
        encrypt_file(tiny, root / "tiny.rcenc", Secret.from_passphrase("benchmark passphrase"))
        t_kdf = time.perf_counter() - start
        print(
            json.dumps(
                {
                    "benchmark": "encryption_speed",
                    "file_MB": round(size_mb, 1),
                    "chunk_MiB": args.chunk_mib,
                    "cpu_count": os.cpu_count(),
                    "python": platform.python_version(),
                    "MB_per_s": {
                        "encrypt_file": round(size_mb / t_enc, 1),
                        "decrypt_file": round(size_mb / t_dec, 1),
                        "decrypt_to_bytes": round(size_mb / t_mem, 1),
                        "raw_aesgcm_in_memory": round(size_mb / t_raw, 1),
                    },
                    "passphrase_kdf_seconds_per_file_or_tree": round(t_kdf, 2),
                },
                indent=2,
            )
        )
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
