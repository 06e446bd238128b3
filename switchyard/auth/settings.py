"""Typed settings of the ``[auth]`` config section: who may call, and how they prove it.

Secrets never appear in errors or reprs; API keys are stored only as hashes::

    [auth]
    allow_anonymous = true

    [[auth.jwt.keys]]
    kid = "dev"
    algorithms = ["HS256"]
    secret = "at least 32 bytes of random text ......"
    dev = true

    [[auth.api_keys]]
    hash = "sha256:<hex of sha256(key)>"
    client_id = "partner-app"
    scopes = ["orders:read"]
    tier = "pro"
"""

from __future__ import annotations

from pathlib import Path
from typing import Self

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key
from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

DEFAULT_API_KEY_HEADER = "X-Api-Key"
DEFAULT_REALM = "switchyard"
DEFAULT_ADMIN_SCOPE = "admin"
DEFAULT_LEEWAY = 30.0
DEFAULT_MAX_TOKEN_BYTES = 8192
DEFAULT_USER_TIER = "free"
DEFAULT_API_KEY_TIER = "service"
DEFAULT_JWKS_ALGORITHMS = ("RS256", "ES256", "EdDSA")
DEFAULT_JWKS_TIMEOUT = 2.0
DEFAULT_JWKS_COOLDOWN = 30.0
DEFAULT_JWKS_MAX_AGE = 300.0

HMAC_ALGORITHMS = {"HS256": 32, "HS384": 48, "HS512": 64}
"""HMAC algorithms and the shortest secret (bytes) each accepts: its digest size (RFC 7518 3.2)."""

RSA_ALGORITHMS = frozenset({"RS256", "RS384", "RS512", "PS256", "PS384", "PS512"})
EC_ALGORITHMS = {"ES256": "secp256r1", "ES384": "secp384r1", "ES512": "secp521r1"}
EDDSA_ALGORITHMS = frozenset({"EdDSA"})
ASYMMETRIC_ALGORITHMS = RSA_ALGORITHMS | EC_ALGORITHMS.keys() | EDDSA_ALGORITHMS

PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class JwtKeySettings(_Section):
    """One verification key: an HMAC secret or a PEM public key, and the algorithms it accepts.

    A key accepts either HMAC or asymmetric algorithms, never both: otherwise a
    token signed with the public key as an HMAC secret would verify.
    """

    kid: str | None = Field(None, description="matched against the token header's `kid`")
    algorithms: list[str] = Field(min_length=1)
    secret: SecretStr | None = Field(None, description="HMAC secret (HS256/HS384/HS512)")
    public_key: str | None = Field(None, description="PEM public key (RSA, EC or Ed25519)")
    public_key_file: Path | None = Field(None, description="file holding a PEM public key")
    dev: bool = Field(False, description="a development key `switchyard token` may sign with")

    @model_validator(mode="after")
    def _one_consistent_key(self) -> Self:
        given = [n for n in ("secret", "public_key", "public_key_file") if getattr(self, n)]
        if len(given) != 1:
            raise ValueError("give exactly one of secret, public_key, public_key_file")
        known = HMAC_ALGORITHMS.keys() | ASYMMETRIC_ALGORITHMS
        unknown = [a for a in self.algorithms if a not in known]
        if unknown:
            raise ValueError(f"unsupported algorithm {unknown[0]!r}")
        hmac_algorithms = [a for a in self.algorithms if a in HMAC_ALGORITHMS]
        if hmac_algorithms and len(hmac_algorithms) != len(self.algorithms):
            raise ValueError("a key may not mix HMAC (HS*) and asymmetric algorithms")
        if self.secret is not None:
            if not hmac_algorithms:
                raise ValueError("a secret verifies HMAC algorithms (HS256, HS384, HS512) only")
            shortest = max(HMAC_ALGORITHMS[a] for a in hmac_algorithms)
            if len(self.secret.get_secret_value().encode()) < shortest:
                raise ValueError(f"secret must be at least {shortest} bytes long")
        else:
            if hmac_algorithms:
                raise ValueError("a public key verifies asymmetric algorithms only")
            _check_key_fits(self.load_public_key(), self.algorithms)
        return self

    @property
    def is_hmac(self) -> bool:
        return self.secret is not None

    def load_public_key(self) -> PublicKey:
        """The PEM key as a ``cryptography`` object; ``ValueError`` if unusable."""
        if self.public_key_file is not None:
            try:
                pem = self.public_key_file.read_bytes()
            except OSError as exc:
                raise ValueError(f"cannot read public_key_file ({exc.strerror})") from None
        else:
            pem = (self.public_key or "").encode()
        try:
            key = load_pem_public_key(pem)
        except ValueError:
            raise ValueError("not a PEM public key") from None
        if not isinstance(key, PublicKey):
            raise ValueError("only RSA, EC and Ed25519 public keys are supported")
        return key


def _check_key_fits(key: PublicKey, algorithms: list[str]) -> None:
    for algorithm in algorithms:
        if isinstance(key, rsa.RSAPublicKey):
            fits = algorithm in RSA_ALGORITHMS
        elif isinstance(key, ec.EllipticCurvePublicKey):
            fits = EC_ALGORITHMS.get(algorithm) == key.curve.name
        else:
            fits = algorithm in EDDSA_ALGORITHMS
        if not fits:
            raise ValueError(f"algorithm {algorithm} does not fit this public key")


class JwksSettings(_Section):
    """A JSON Web Key Set fetched over HTTP(S); only asymmetric keys are ever taken from it."""

    url: str = Field(pattern=r"^https?://\S+$")
    algorithms: list[str] = Field(list(DEFAULT_JWKS_ALGORITHMS), min_length=1)
    timeout: float = Field(DEFAULT_JWKS_TIMEOUT, gt=0, description="seconds per fetch")
    cooldown: float = Field(
        DEFAULT_JWKS_COOLDOWN, ge=0, description="least seconds between two fetches"
    )
    max_age: float = Field(
        DEFAULT_JWKS_MAX_AGE, gt=0, description="refetch when the keys are older than this"
    )

    @model_validator(mode="after")
    def _asymmetric_only(self) -> Self:
        for algorithm in self.algorithms:
            if algorithm not in ASYMMETRIC_ALGORITHMS:
                raise ValueError(f"algorithm {algorithm!r} is not allowed for a JWKS")
        return self


class JwtSettings(_Section):
    """How bearer tokens are verified."""

    keys: list[JwtKeySettings] = []
    jwks: JwksSettings | None = None
    issuer: str | None = Field(None, description="required `iss` when set")
    audience: str | None = Field(None, description="required in `aud` when set")
    leeway: float = Field(DEFAULT_LEEWAY, ge=0, description="clock skew allowed for exp/nbf/iat")
    max_token_bytes: int = Field(DEFAULT_MAX_TOKEN_BYTES, ge=256)
    tier: str = Field(DEFAULT_USER_TIER, min_length=1, description="rate-limit tier of JWT callers")
    client_claim: str | None = Field(
        None,
        pattern=r"^\S{1,256}$",
        description="the claim whose value tells budget clients apart (each its own bucket); "
        "default: the issuer and subject (`iss`, `sub`). Tokens without it are refused.",
    )

    @model_validator(mode="after")
    def _unique_kids(self) -> Self:
        kids = [key.kid for key in self.keys if key.kid is not None]
        if len(kids) != len(set(kids)):
            raise ValueError("two keys have the same kid")
        return self

    @property
    def enabled(self) -> bool:
        return bool(self.keys) or self.jwks is not None


class ApiKeySettings(_Section):
    """A machine client's key, stored as ``sha256:<hex>``; the key itself is never in config."""

    hash: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    client_id: str = Field(min_length=1)
    scopes: list[str] = []
    tier: str = Field(DEFAULT_API_KEY_TIER, min_length=1)


class AuthSettings(_Section):
    """The ``[auth]`` section."""

    allow_anonymous: bool = Field(True, description="serve GraphQL requests without credentials")
    admin_scope: str = Field(
        DEFAULT_ADMIN_SCOPE, min_length=1, description="scope that reads anyone's data"
    )
    api_key_header: str = Field(DEFAULT_API_KEY_HEADER, pattern=r"^[A-Za-z0-9-]+$")
    realm: str = Field(
        DEFAULT_REALM,
        pattern=r"^[\x20-\x7e]+$",
        description="the realm of a 401's WWW-Authenticate: Bearer challenge (RFC 6750)",
    )
    api_keys: list[ApiKeySettings] = []
    jwt: JwtSettings = JwtSettings()

    @model_validator(mode="after")
    def _unique_api_keys(self) -> Self:
        hashes = [key.hash for key in self.api_keys]
        if len(hashes) != len(set(hashes)):
            raise ValueError("two api_keys have the same hash")
        return self
