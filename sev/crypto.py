"""Encryption of user tokens at rest (Fernet: AES-128-CBC + HMAC-SHA256)."""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class TokenCipher:
    """Encrypts and decrypts tokens with `SEV_TOKEN_KEY`.

    The setting may list several comma-separated keys: the first encrypts, all decrypt, so a key
    can be rotated without logging everybody out.
    """

    def __init__(self, keys: str) -> None:
        self._fernet = MultiFernet([Fernet(key.strip().encode()) for key in keys.split(",")])

    def encrypt(self, plaintext: str) -> str:
        """The ciphertext of a token, as text."""
        return self._fernet.encrypt(plaintext.encode()).decode()

    def decrypt(self, ciphertext: str) -> str | None:
        """The token, or None when it was encrypted with a key that is no longer configured."""
        try:
            return self._fernet.decrypt(ciphertext.encode()).decode()
        except InvalidToken:
            return None
