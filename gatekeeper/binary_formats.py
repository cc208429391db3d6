"""What the bytes of an encoded token hold when they are no text: a key, a certificate, an image, random bytes.

A benign note often carries one written in base64: an SSH public key, a PEM certificate or public key, an image
in a data URI, an encrypted key or a signing secret. Its letters say nothing, but read as written they read as an
injection to the classifier, and such notes were quarantined. The normaliser reads such a token in place as what
it holds ("(SSH public key)"), with any text found in its bytes, so that the model reads what a person would.

A format is told by its structure, not by a name written beside it: an SSH key blob is length-prefixed fields
that end exactly where it ends, led by a key type; DER is ASN.1 whose lengths add up to the whole; a ZIP archive
opens; an image has its magic bytes. Bytes that match no format are named only where they look random
(``random_bytes``).

An image, an archive or a certificate can carry text (a PNG text chunk, a JPEG comment, a file in the archive, a
certificate's subject): ``texts`` finds the runs of readable characters in the bytes, the compressed text chunks
of a PNG and the files of a ZIP archive (inflated), so that they are read too. A run is kept only where it holds
words, not where random bytes happen to be printable.
"""

from __future__ import annotations

import bz2
import io
import lzma
import math
import re
import struct
import zipfile
import zlib
from typing import NamedTuple

__all__ = ["FIELD_FORMATS", "Found", "describe", "inflate", "random_bytes", "ssh_key_type", "texts"]

#: formats (as ``describe`` names them) whose text is named fields, a certificate's subject and issuer: the
#: normaliser reads that text beside the token, not in its place (a PEM block with its issuer's name read in
#: place read as suspect to the classifier, 0.82 for "Example Payments Ltd"; the text alone reads 0.002)
FIELD_FORMATS = frozenset({"X.509 certificate", "signed ASN.1 data", "public key", "private key", "ASN.1 data"})

#: SSH public key types (RFC 4253, 5656, 8709; OpenSSH's security-key types), the first field of a key blob
_SSH_KEY_TYPES = frozenset({
    b"ssh-rsa", b"ssh-dss", b"ssh-ed25519", b"ssh-ed448", b"ecdsa-sha2-nistp256", b"ecdsa-sha2-nistp384",
    b"ecdsa-sha2-nistp521", b"sk-ssh-ed25519@openssh.com", b"sk-ecdsa-sha2-nistp256@openssh.com",
})
_MAX_SSH_FIELDS = 6
#: nesting of ASN.1 walked at most, and elements at most (a certificate has a few hundred)
_MAX_DER_DEPTH = 24
_MAX_DER_ELEMENTS = 4096
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
#: how much compressed data may inflate to (bytes; the text chunks of a PNG or the files of a ZIP archive all
#: together): a bomb stops here, and a text longer than this is reviewed from its start
_MAX_INFLATED = 100_000
#: formats inside formats read ("a gzip file in a ZIP archive", "a PNG image in gzip"): this deep at most
_MAX_NESTING = 2
#: files of a ZIP archive read at most
_MAX_ZIP_FILES = 64
#: what a malformed archive raises while it is read: anything (``zipfile`` passes on the errors of zlib, bz2 and
#: lzma, and a corrupt LZMA member raised ``lzma.LZMAError`` through ``normalize``)
_ZIP_ERRORS = (Exception,)  # noqa: BLE001 - a malformed archive reads as no archive
#: a run of readable characters (UTF-8, or ASCII written as UTF-16) is read as text from this long, where it
#: holds words (``_WORDY_RE``)
_MIN_RUN = 8
_RUN_RE = re.compile(r"[^\x00-\x08\x0b-\x1f\x7f-\x9f\ufffd]{%d,}" % _MIN_RUN)
_UTF16_RUN_RE = re.compile(rb"(?:[\x20-\x7e\t\n\r]\x00){%d,}" % _MIN_RUN)
_UTF32_RUN_RE = re.compile(rb"(?:[\x20-\x7e\t\n\r]\x00\x00\x00){%d,}" % _MIN_RUN)
#: two words of three letters or more with a space between them, or ten ASCII letters in a row: what random
#: bytes make about once in 1.5 million bytes ("hr UP" and "mfdtXBԿWze" did once in 50,000). Words joined by
#: other marks ("I,should,avoid", "www.example.com", "ssh-rsa") are not taken: random bytes make those often.
#: (searched only: from a word's start, its letters taken whole; 44,000 Cyrillic letters in a zipped member took
#: 15.7 s tried from each letter)
_WORDY_RE = re.compile(r"(?<![^\W\d_])[^\W\d_]{3,}+\s+[^\W\d_]{3}|[A-Za-z]{10}")
#: random bytes: this many at least, and no fewer distinct byte values than this share of what random bytes
#: of that length would show (16 random bytes show 15.5 distinct values on average, 32 show 30.1)
_MIN_RANDOM = 12
_RANDOM_DISTINCT = 0.8


def _compression(raw: bytes) -> str | None:
    """``"zlib"`` (gzip or zlib), ``"bz2"`` or ``"xz"`` where ``raw`` starts as that compressed data, else None."""
    if raw[:2] == b"\x1f\x8b" or (len(raw) > 2 and raw[0] == 0x78 and (raw[0] << 8 | raw[1]) % 31 == 0):
        return "zlib"
    if raw[:3] == b"BZh":
        return "bz2"
    if raw[:6] == b"\xfd7zXZ\x00":
        return "xz"
    return None


def inflate(raw: bytes, limit: int = _MAX_INFLATED) -> bytes | None:
    """``raw`` decompressed when it is gzip, zlib, bzip2 or xz data (by its magic bytes; at most ``limit`` bytes
    of output), else None: an agent that stores a "blob" compresses it first."""
    kind = _compression(raw)
    try:
        if kind == "zlib":
            return zlib.decompressobj(wbits=47).decompress(raw, limit) or None  # 47: a gzip or a zlib header
        if kind == "bz2":
            return bz2.BZ2Decompressor().decompress(raw, limit) or None
        if kind == "xz":
            return lzma.LZMADecompressor().decompress(raw, limit) or None
    except Exception:  # noqa: BLE001 - corrupt data is no compressed data
        return None
    return None


def describe(raw: bytes) -> str | None:
    """The well-known binary format ``raw`` is, named for a reader ("SSH public key", "X.509 certificate",
    "PNG image"), or None."""
    if len(raw) < 8:
        return None
    if raw.startswith(_PNG_MAGIC) and raw[12:16] == b"IHDR":
        return "PNG image"
    if raw.startswith(b"\xff\xd8\xff"):
        return "JPEG image"
    if raw.startswith((b"GIF87a", b"GIF89a")):
        return "GIF image"
    if raw.startswith(b"RIFF") and raw[8:12] == b"WEBP":
        return "WebP image"
    if raw[:3] == b"\x00\x00\x00" and _ssh_key(raw):
        return "SSH public key"
    if raw.startswith(b"PK\x03\x04") and _zip_opens(raw):
        return "ZIP archive"
    if raw[0] == 0x30:
        return _der(raw)
    return None


def random_bytes(raw: bytes) -> bool:
    """Whether ``raw`` looks like random bytes (a key, a secret, a nonce, a digest): long enough and with about
    as many distinct byte values as random bytes of its length show. Text, counters and padding repeat
    bytes."""
    n = len(raw)
    if n < _MIN_RANDOM:
        return False
    expected = 256 * (1 - math.exp(n * math.log1p(-1 / 256)))  # distinct values in n random bytes, on average
    return len(set(raw)) >= _RANDOM_DISTINCT * expected


class Found(NamedTuple):
    """What ``texts`` found in a format's bytes."""

    texts: list[str]
    #: bytes inflated to find them
    inflated: int
    #: False where a limit left part unread: a file or text chunk cut at the inflation budget, more files than
    #: ``_MAX_ZIP_FILES``, an encrypted file, a format nested deeper than ``_MAX_NESTING``
    complete: bool = True


def texts(raw: bytes, fmt: str | None, budget: int = _MAX_INFLATED, depth: int = 0) -> Found:
    """The text found in ``raw``: runs of readable characters that hold words (UTF-8, or ASCII written as UTF-16
    or UTF-32), and for a PNG image its text chunks and for a ZIP archive its file names, comment
    and files (a file that is an archive, an image or compressed data read in turn, ``_MAX_NESTING`` deep),
    inflated up to ``budget`` bytes in all (at most ``_MAX_INFLATED``). In the order found, each once; and the
    bytes inflated, and whether all was read."""
    found: list[str] = []
    budget = min(budget, _MAX_INFLATED)
    inflated, complete = 0, True
    if fmt == "PNG image":
        chunks, inflated, complete = _png_texts(raw, budget)
        found.extend(chunks)
    elif fmt == "ZIP archive":
        files, comment, inflated, complete = _zip_files(raw, budget)
        found.extend(_runs(comment))
        for name, data in files:
            whole = _as_text(data)  # a text file is read whole, however its words are written
            runs = [whole] if whole is not None else _runs(data)
            if whole is None:
                inner = _inner_texts(data, budget - inflated, depth + 1)
                runs += inner.texts
                inflated += inner.inflated
                complete = complete and inner.complete
            if runs:
                found.append(f"{name}: {' / '.join(runs)}")
            elif _WORDY_RE.search(name):
                found.append(name)
            # the names stand in the archive's headers as written: read above, not again run into a header (a
            # short name is left: blanked, "e" would cut every run of text elsewhere in the archive)
            written = name.encode("utf-8", "replace")
            if len(written) >= _MIN_RUN:
                raw = raw.replace(written, bytes(len(written)))
    elif raw[:1] == b"\x30" and fmt is not None:  # DER: its strings read whole, not with a tag byte run on
        strings, raw = _der_strings(raw)
        found.extend(t for t in strings if _WORDY_RE.search(t))
    found.extend(_runs(raw))
    out: list[str] = []
    for t in found:
        t = " ".join(t.split())
        if t and not any(t in o for o in out):
            out.append(t)
    return Found(out, inflated, complete)


def _inner_texts(data: bytes, budget: int, depth: int) -> Found:
    """The text in ``data`` where it is compressed data, an archive or an image (``texts``, ``depth`` formats
    deep)."""
    compressed = _compression(data) is not None
    fmt = None if compressed else describe(data)
    if not compressed and fmt not in ("ZIP archive", "PNG image"):
        return Found([], 0)  # the runs of ``data`` itself are read already
    if depth > _MAX_NESTING or budget <= 0:
        return Found([], 0, complete=False)
    unpacked = inflate(data, budget) if compressed else None
    if unpacked is not None:
        whole = _as_text(unpacked)
        if whole is not None:
            return Found([whole], len(unpacked), complete=len(unpacked) < budget)
        data = unpacked
    if compressed:
        fmt = describe(data)  # what the data inflated to (or the data itself, where it did not inflate)
    inner = texts(data, fmt, budget - len(unpacked or b""), depth)
    return Found(inner.texts, len(unpacked or b"") + inner.inflated, inner.complete and len(unpacked or b"") < budget)


def _as_text(data: bytes) -> str | None:
    """``data`` as text where it is UTF-8 (a character cut off at the end aside) and almost all printable."""
    t = data.decode("utf-8", "replace").strip()
    readable = sum(1 for c in t if (c.isprintable() or c in "\n\r\t") and c != "\ufffd")
    return t if t and readable >= 0.95 * len(t) else None


def _runs(raw: bytes) -> list[str]:
    """The runs of readable characters in ``raw`` that hold words, UTF-8 (a NUL read as a space between words) or
    ASCII written as UTF-16 or UTF-32."""
    spaced = raw.replace(b"\x00", b" ")
    found = [m.group() for m in _RUN_RE.finditer(spaced.decode("utf-8", "replace")) if _WORDY_RE.search(m.group())]
    for pattern, step in ((_UTF16_RUN_RE, 2), (_UTF32_RUN_RE, 4)):
        for m in pattern.finditer(raw):
            run = m.group()[::step].decode("ascii")
            if _WORDY_RE.search(run):
                found.append(run)
    return found


def _zip_opens(raw: bytes) -> bool:
    """Whether ``raw`` is a ZIP archive that opens (its central directory read)."""
    try:
        zipfile.ZipFile(io.BytesIO(raw)).close()
    except _ZIP_ERRORS:
        return False
    return True


def _zip_files(raw: bytes, budget: int) -> tuple[list[tuple[str, bytes]], bytes, int, bool]:
    """``(name, bytes)`` of the files of ZIP archive ``raw`` (up to ``_MAX_ZIP_FILES``, inflated to at most
    ``budget`` bytes in all, each file to its share of what is left, so that a large file first does not keep
    the others unread; an encrypted file or one that fails to inflate gives what was read of it), the archive's
    comment, the bytes inflated, and whether every file was read whole."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(raw))
    except _ZIP_ERRORS:
        return [], b"", 0, False
    out: list[tuple[str, bytes]] = []
    start = budget
    with archive:
        every = archive.infolist()
        infos = every[:_MAX_ZIP_FILES]
        complete = len(every) == len(infos)
        for k, info in enumerate(infos):
            if budget <= 0:
                complete = False
                break
            share = min(budget, max(budget // (len(infos) - k), 4096))
            data = b""
            if info.flag_bits & 0x1:
                complete = False  # encrypted: nothing to read without the password
            else:
                try:
                    with archive.open(info) as f:
                        while len(data) < share and (chunk := f.read(min(65_536, share - len(data)))):
                            data += chunk
                        if len(data) >= share and f.read(1):
                            complete = False  # cut at its share
                except _ZIP_ERRORS:
                    complete = False
            budget -= len(data)
            out.append((info.filename, data))
        comment = archive.comment
    return out, comment, start - budget, complete


def ssh_key_type(raw: bytes) -> str | None:
    """The key type an SSH public key blob (``describe``: "SSH public key") starts with ("ssh-ed25519")."""
    size = int.from_bytes(raw[:4], "big")
    kind = raw[4:4 + size]
    return kind.decode("ascii") if kind in _SSH_KEY_TYPES else None


def _ssh_key(raw: bytes) -> bool:
    """Whether ``raw`` is an SSH public key blob: length-prefixed fields, the first a key type, the last ending
    exactly where the blob ends."""
    pos = fields = 0
    while pos < len(raw):
        if pos + 4 > len(raw) or fields == _MAX_SSH_FIELDS:
            return False
        (size,) = struct.unpack_from(">I", raw, pos)
        pos += 4
        if pos + size > len(raw):
            return False
        if fields == 0 and raw[pos:pos + size] not in _SSH_KEY_TYPES:
            return False
        pos += size
        fields += 1
    return fields >= 2


def _der(raw: bytes) -> str | None:
    """What DER-encoded ``raw`` is (a certificate, a public or private key, other DER), or None when it is not
    one ASN.1 SEQUENCE whose nested lengths add up to exactly its bytes."""
    top = _der_element(raw, 0)
    if top is None or top[2] != len(raw):
        return None
    budget = [_MAX_DER_ELEMENTS]
    children = _der_children(raw, top[1], top[2], 0, budget)
    if children is None:
        return None
    tags = [raw[start] for start, _, _ in children]
    if tags[:3] == [0x30, 0x30, 0x03] and len(tags) == 3:
        inner = _der_children(raw, children[0][1], children[0][2], 1, budget)
        return "X.509 certificate" if inner is not None and len(inner) >= 6 else "signed ASN.1 data"
    if tags == [0x30, 0x03]:
        return "public key"
    if tags[:3] == [0x02, 0x30, 0x04] or (len(tags) >= 8 and all(t == 0x02 for t in tags[:9])):
        return "private key"  # PKCS#8, or PKCS#1 RSA (a version and eight integers)
    if tags[:2] == [0x02, 0x04]:
        return "private key"  # SEC 1 EC private key
    return "ASN.1 data"


def _der_element(raw: bytes, pos: int) -> tuple[int, int, int] | None:
    """``(start, content_start, end)`` of the DER element at ``pos`` (a low tag number, a minimal definite
    length), or None."""
    if pos + 2 > len(raw) or raw[pos] & 0x1F == 0x1F:
        return None
    first = raw[pos + 1]
    if first < 0x80:
        size, body = first, pos + 2
    else:
        n = first & 0x7F
        if n == 0 or n > 4 or pos + 2 + n > len(raw) or raw[pos + 2] == 0:
            return None
        size = int.from_bytes(raw[pos + 2:pos + 2 + n], "big")
        if size < 0x80:
            return None  # DER writes a short length short
        body = pos + 2 + n
    end = body + size
    return None if end > len(raw) else (pos, body, end)


def _der_children(raw: bytes, start: int, end: int, depth: int, budget: list[int],
                  leaves: list[tuple[int, int, int]] | None = None) -> list[tuple[int, int, int]] | None:
    """The elements between ``start`` and ``end``, every constructed one walked down to check that its lengths
    add up; None where they do not. ``leaves``, where given, gathers the primitive elements walked."""
    out: list[tuple[int, int, int]] = []
    pos = start
    while pos < end:
        budget[0] -= 1
        el = _der_element(raw, pos)
        if el is None or el[2] > end or budget[0] < 0:
            return None
        if raw[pos] & 0x20:  # constructed: SEQUENCE, SET, [n] EXPLICIT
            if depth < _MAX_DER_DEPTH and _der_children(raw, el[1], el[2], depth + 1, budget, leaves) is None:
                return None
        elif leaves is not None:
            leaves.append(el)
        out.append(el)
        pos = el[2]
    return out


#: ASN.1 string types: UTF8String, PrintableString, T61String, IA5String, VisibleString, and BMPString (UTF-16)
_DER_STRING_TAGS = {0x0C: "utf-8", 0x13: "latin-1", 0x14: "latin-1", 0x16: "latin-1", 0x1A: "latin-1",
                    0x1E: "utf-16-be"}


def _der_strings(raw: bytes) -> tuple[list[str], bytes]:
    """The string values in DER-encoded ``raw`` (a certificate's subject and issuer), and ``raw`` with their
    bytes blanked, so that the runs of readable characters found in it after are only what lies elsewhere."""
    leaves: list[tuple[int, int, int]] = []
    top = _der_element(raw, 0)
    if top is None or _der_children(raw, top[1], top[2], 0, [_MAX_DER_ELEMENTS], leaves) is None:
        return [], raw
    out: list[str] = []
    blanked = bytearray(raw)
    for start, body, end in leaves:
        encoding = _DER_STRING_TAGS.get(raw[start])
        if encoding is None:
            continue
        text = raw[body:end].decode(encoding, "replace").strip()
        if text:
            out.append(text)
        blanked[start:end] = bytes(end - start)
    return out, bytes(blanked)


def _png_texts(raw: bytes, budget: int) -> tuple[list[str], int, bool]:
    """The texts of a PNG's tEXt, zTXt and iTXt chunks (keyword and text), compressed ones inflated (up to
    ``budget`` bytes in all), the bytes inflated, and whether every chunk was read whole."""
    out: list[str] = []
    pos = len(_PNG_MAGIC)
    start = budget
    complete = True
    while pos + 8 <= len(raw):
        if budget <= 0:
            complete = False
            break
        size, kind = struct.unpack_from(">I4s", raw, pos)
        data = raw[pos + 8:pos + 8 + size]
        pos += 12 + size
        try:
            if kind == b"tEXt":
                key, _, value = data.partition(b"\x00")
                packed = None
            elif kind == b"zTXt":
                key, _, rest = data.partition(b"\x00")
                packed = rest[1:]
            elif kind == b"iTXt":
                key, _, rest = data.partition(b"\x00")
                value = rest[2:].split(b"\x00", 2)[-1]  # after the language tag and the translated keyword
                packed = value if rest[:1] == b"\x01" else None
            else:
                continue
            if packed is not None:
                inflater = zlib.decompressobj()
                value = inflater.decompress(packed, budget)
                if inflater.unconsumed_tail:
                    complete = False  # cut at the budget
        except zlib.error:
            continue
        budget -= len(value)
        text = value.decode("utf-8", "replace").strip()
        if text:
            out.append(f"{key.decode('latin-1')}: {text}")
    return out, start - budget, complete
