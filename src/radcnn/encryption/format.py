"""The constants of radcnn's encrypted file format that every layer needs without importing `cryptography`."""

MAGIC = b"RCNNENC\x00"  # the first 8 bytes of every encrypted file (see `cipher` for the whole layout)
SUFFIX = ".rcenc"  # `radcnn encrypt` names x.dcm's encrypted copy x.dcm.rcenc
KEY_HELP = "pass --key-file PATH or --passphrase-env VAR (data.key_file / data.key_env in a config file)"
