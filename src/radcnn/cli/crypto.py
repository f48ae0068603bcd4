"""`radcnn keygen`, `radcnn encrypt` and `radcnn decrypt`: encryption at rest for files and folders.

The secret is a key file (`--key-file`, or RADCNN_KEY_FILE) or a passphrase (`--passphrase-env VAR` reads it
from an environment variable, `--passphrase` asks for it without echo). Exactly one must be given.
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

from radcnn.cli.render import console

KEY_FILE = typer.Option(None, "--key-file", "-k", envvar="RADCNN_KEY_FILE", help="Key file from `radcnn keygen`.")
PASSPHRASE_ENV = typer.Option(None, help="Name of an environment variable holding the passphrase.")
ASK = typer.Option(False, "--passphrase", help="Ask for a passphrase (hidden input).")


def resolve_secret(key_file: Path | None, passphrase_env: str | None, ask: bool, *, confirm: bool):
    """Exactly one secret source -> `Secret`; none or several -> one clear KeyFileError."""
    from radcnn.encryption.keys import KeyFileError, Secret

    given = [
        name
        for name, on in (("--key-file", key_file), ("--passphrase-env", passphrase_env), ("--passphrase", ask))
        if on
    ]
    if not given:
        raise KeyFileError(
            "no key given: pass --key-file PATH (see `radcnn keygen`), --passphrase-env VAR or --passphrase"
        )
    if len(given) > 1:
        raise KeyFileError(f"give one secret, not {' and '.join(given)}")
    if key_file is not None:
        return Secret.from_key_file(key_file)
    if passphrase_env is not None:
        value = os.environ.get(passphrase_env)
        if not value:
            raise KeyFileError(f"environment variable {passphrase_env} is not set or empty")
        return Secret.from_passphrase(value)
    return Secret.from_passphrase(typer.prompt("passphrase", hide_input=True, confirmation_prompt=confirm))


def optional_secret(key_file: Path | None, passphrase_env: str | None):
    """The secret given with --key-file / --passphrase-env, or None when neither was given."""
    return resolve_secret(key_file, passphrase_env, False, confirm=False) if key_file or passphrase_env else None


def register(app: typer.Typer) -> None:
    @app.command("keygen")
    def keygen(path: Path = typer.Argument(..., help="Where to write the new key file (mode 0600).")) -> None:
        """Create a random 256-bit project key. Keep it secret, and back it up: without it nothing decrypts.

        Example: radcnn keygen project.key
        """
        from radcnn.encryption.keys import generate_key_file, key_fingerprint, load_key_file

        generate_key_file(path)
        console.print(f"wrote key file {path} (fingerprint {key_fingerprint(load_key_file(path))})")

    @app.command("encrypt")
    def encrypt(
        source: Path = typer.Argument(..., help="File or folder to encrypt."),
        output: Path = typer.Argument(..., help="Encrypted file, or a new folder (files get .rcenc)."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
        passphrase: bool = ASK,
        chunk_mib: int = typer.Option(1, min=1, max=64, help="Chunk size in MiB."),
    ) -> None:
        """Encrypt with AES-256-GCM (chunked, authenticated; a random data key per file).

        Example: radcnn encrypt data/phantom data/phantom.enc --key-file project.key
        """
        from radcnn.encryption.tree import encrypt_path

        secret = resolve_secret(key_file, passphrase_env, passphrase, confirm=True)
        written = encrypt_path(source, output, secret, chunk_size=chunk_mib << 20)
        console.print(f"encrypted {len(written)} file(s) into {output}")

    @app.command("decrypt")
    def decrypt(
        source: Path = typer.Argument(..., help="Encrypted file or folder of .rcenc files."),
        output: Path = typer.Argument(..., help="Decrypted file, or a new folder."),
        key_file: Path = KEY_FILE,
        passphrase_env: str = PASSPHRASE_ENV,
        passphrase: bool = ASK,
    ) -> None:
        """Decrypt and authenticate; output appears only if every byte authenticated.

        Example: radcnn decrypt runs/seed/report.html.rcenc report.html --key-file project.key
        """
        from radcnn.encryption.tree import decrypt_path

        secret = resolve_secret(key_file, passphrase_env, passphrase, confirm=False)
        written = decrypt_path(source, output, secret)
        console.print(f"decrypted {len(written)} file(s) into {output}")
