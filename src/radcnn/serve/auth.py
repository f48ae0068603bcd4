"""Bearer-token authentication for the API: one shared secret read from a file, compared in constant time.

The token lives in a file (not on the command line, where `ps` shows it to every user of the machine). Without
a token file the API is open, which is only sensible on loopback; `radcnn serve` says so when it starts.
"""

from __future__ import annotations

import hmac
import logging
from pathlib import Path

from fastapi import HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from radcnn.errors import ConfigError

log = logging.getLogger(__name__)

MIN_TOKEN_LENGTH = 16


def read_token(path: str | Path) -> str:
    """The token in `path` (surrounding whitespace ignored); refuses missing, empty or short tokens."""
    path = Path(path)
    try:
        token = path.read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the token file ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: the token file is not UTF-8 text") from None
    if len(token) < MIN_TOKEN_LENGTH or any(c.isspace() for c in token):
        raise ConfigError(
            f"{path}: the token must be one word of at least {MIN_TOKEN_LENGTH} characters "
            "(e.g. python -c 'import secrets; print(secrets.token_urlsafe(32))')"
        )
    return token


class BearerToken:
    """A FastAPI dependency: passes when no token is configured or the request carries the right one."""

    def __init__(self, token: str | None):
        self.token = token
        self.scheme = HTTPBearer(auto_error=False, description="the token from the server's --token-file")

    async def __call__(self, request: Request) -> None:
        if self.token is None:
            return
        credentials: HTTPAuthorizationCredentials | None = await self.scheme(request)
        if credentials is None:
            log.warning("refused %s %s: no bearer token", request.method, request.url.path)
            raise HTTPException(401, "missing bearer token", headers={"WWW-Authenticate": "Bearer"})
        if not hmac.compare_digest(credentials.credentials.encode(), self.token.encode()):
            log.warning("refused %s %s: wrong bearer token", request.method, request.url.path)
            raise HTTPException(
                401, "invalid bearer token", headers={"WWW-Authenticate": 'Bearer error="invalid_token"'}
            )
