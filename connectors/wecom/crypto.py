"""The public WeCom callback crypto (WXBizMsgCrypt): signatures and AES-256-CBC envelopes.

Hand-written on ``cryptography`` rather than taken from wechatpy, which has had no release
since 2021; the protocol is small and fully specified:

- ``msg_signature`` = SHA1 hex of the lexically sorted ``[token, timestamp, nonce, ciphertext]``
  joined with no separator;
- key = base64decode(EncodingAESKey + "="), 32 bytes; IV = the key's first 16 bytes;
- plaintext = 16 random bytes + 4-byte big-endian length + message + receive id (the corp id),
  PKCS#7-padded to 32-byte blocks (not AES's 16), then base64.

>>> c = WecomCrypto("tok", "jWmYm7qr5nMoAUwZRjGtBxmz3KA1tkAj3ykkR6q2B2C", "corp1")
>>> c.decrypt(c.encrypt(b"<xml/>", random=bytes(16)))
b'<xml/>'
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import struct

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

BLOCK = 32


class CryptoError(ValueError):
    """A callback that fails verification; ``code`` is stable for metrics and responses."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


def signature(token: str, timestamp: str, nonce: str, encrypted: str) -> str:
    """``msg_signature`` of a callback (SHA1 over the sorted, concatenated parts)."""
    joined = "".join(sorted([token, timestamp, nonce, encrypted]))
    return hashlib.sha1(joined.encode(), usedforsecurity=False).hexdigest()


def _key(encoding_aes_key: str) -> bytes:
    if len(encoding_aes_key) != 43:
        raise ValueError("EncodingAESKey must be 43 characters (WeCom admin console)")
    try:
        key = base64.b64decode(encoding_aes_key + "=", validate=True)
    except binascii.Error as error:
        raise ValueError(f"EncodingAESKey is not base64: {error}") from None
    if len(key) != 32:
        raise ValueError("EncodingAESKey must decode to 32 bytes")
    return key


class WecomCrypto:
    """Verify, decrypt (and, for replies and test peers, encrypt) one app's callbacks."""

    def __init__(self, token: str, encoding_aes_key: str, receive_id: str) -> None:
        self.token = token
        self.receive_id = receive_id.encode()
        self._key = _key(encoding_aes_key)
        self._iv = self._key[:16]

    def verify(self, msg_signature: str, timestamp: str, nonce: str, encrypted: str) -> None:
        expected = signature(self.token, timestamp, nonce, encrypted)
        if not hmac.compare_digest(expected.encode(), msg_signature.lower().encode()):
            raise CryptoError("bad_signature", "msg_signature does not match")

    def decrypt(self, encrypted: str) -> bytes:
        """The message inside ``encrypted``; raises :class:`CryptoError` if it is not ours."""
        try:
            data = base64.b64decode(encrypted, validate=True)
        except binascii.Error:
            raise CryptoError("bad_base64", "ciphertext is not base64") from None
        if not data or len(data) % 16:
            raise CryptoError("bad_ciphertext", "ciphertext is not whole AES blocks")
        decryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).decryptor()
        plain = decryptor.update(data) + decryptor.finalize()
        pad = plain[-1]
        if not 1 <= pad <= BLOCK or plain[-pad:] != bytes([pad]) * pad:
            raise CryptoError("bad_padding", "PKCS#7 padding is wrong (wrong key?)")
        content = plain[16:-pad]
        if len(content) < 4:
            raise CryptoError("bad_plaintext", "plaintext too short")
        (length,) = struct.unpack(">I", content[:4])
        message, receive_id = content[4 : 4 + length], content[4 + length :]
        if len(message) != length:
            raise CryptoError("bad_plaintext", "message length exceeds the plaintext")
        if not hmac.compare_digest(receive_id, self.receive_id):
            raise CryptoError("wrong_receiver", "receive id (corp id) does not match")
        return message

    def encrypt(self, message: bytes, *, random: bytes | None = None) -> str:
        """Base64 ciphertext of ``message`` (for encrypted passive replies and test peers)."""
        prefix = os.urandom(16) if random is None else random
        body = prefix + struct.pack(">I", len(message)) + message + self.receive_id
        pad = BLOCK - len(body) % BLOCK
        body += bytes([pad]) * pad
        encryptor = Cipher(algorithms.AES(self._key), modes.CBC(self._iv)).encryptor()
        return base64.b64encode(encryptor.update(body) + encryptor.finalize()).decode()
