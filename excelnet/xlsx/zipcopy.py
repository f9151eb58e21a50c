"""Write a copy of a zip archive in which some members change: the unchanged ones are copied
as their compressed bytes (no inflating and deflating them again), the new or changed ones
are deflated. Python's zipfile can only recompress, which for a large workbook is most of
the time a write-back takes.

The archive is the usual one an .xlsx is: no encryption, no ZIP64 (members and archive under
4 GiB). Anything else is left to zipfile's own, slower, path by the caller.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_LOCAL = struct.Struct("<4s5H3L2H")  # local file header
_CENTRAL = struct.Struct("<4s6H3L5H2L")  # central directory entry
_END = struct.Struct("<4s4H2LH")  # end of central directory
_LIMIT = 0xFFFFFFFF
LEVEL = 1  # deflate level for the members we write: fast; Excel reads any


def can_copy(z: zipfile.ZipFile) -> bool:
    """Whether `copy_with` can write this archive's copy (else: zipfile's path)."""
    infos = z.infolist()
    return len(infos) < 0xFFFF and all(
        not info.flag_bits & 0x1  # encrypted
        and info.compress_type in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
        and max(info.file_size, info.compress_size, info.header_offset) < _LIMIT
        for info in infos
    )


def _dos(date_time: tuple[int, ...]) -> tuple[int, int]:
    y, mo, d, h, mi, s = date_time
    return (h << 11) | (mi << 5) | (s // 2), ((y - 1980) << 9) | (mo << 5) | d


def _name(info: zipfile.ZipInfo) -> tuple[bytes, int]:
    try:
        return info.filename.encode("ascii"), info.flag_bits & ~0x0808
    except UnicodeEncodeError:
        return info.filename.encode("utf-8"), (info.flag_bits & ~0x0008) | 0x0800


def _raw(fh, info: zipfile.ZipInfo) -> bytes:
    """A member's data as stored (compressed), read past its local header."""
    fh.seek(info.header_offset)
    header = fh.read(_LOCAL.size)
    if header[:4] != b"PK\x03\x04":
        raise zipfile.BadZipFile(f"bad local header for {info.filename}")
    name_len, extra_len = struct.unpack("<2H", header[26:30])
    fh.seek(info.header_offset + _LOCAL.size + name_len + extra_len)
    return fh.read(info.compress_size)


SPLIT = 8 << 20  # a member this large is deflated in two halves at once


def _deflated(data: bytes) -> bytes:
    """Raw deflate, as zip stores it. A large member is deflated as two halves in two
    threads (zlib releases the interpreter): the first half ends with a sync flush (a
    byte-aligned, non-final block), so the two streams joined are one deflate stream, as
    pigz writes them; every reader inflates it."""

    def half(chunk: bytes, last: bool) -> bytes:
        packer = zlib.compressobj(LEVEL, zlib.DEFLATED, -15)
        return packer.compress(chunk) + packer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    if len(data) < SPLIT:
        return half(data, True)
    middle = len(data) // 2
    view = memoryview(data)
    with ThreadPoolExecutor(max_workers=2) as pool:
        first = pool.submit(half, view[:middle], False)
        second = half(view[middle:], True)
        return first.result() + second


def copy_with(
    src: Path,
    z: zipfile.ZipFile,
    out: Path,
    replace: dict[str, bytes],
    extra: dict[str, bytes],
) -> None:
    """Write `src` (open as `z`) to `out`: members named in `replace` get that content, the
    others keep their stored bytes, and `extra` members are appended."""
    entries = []  # (info, name bytes, flags, method, crc, compressed size, size, offset)
    with open(src, "rb") as fin, open(out, "wb") as fout:

        def put(info: zipfile.ZipInfo, method: int, crc: int, stored: bytes, size: int):
            name, flags = _name(info)
            offset = fout.tell()
            if max(offset, len(stored), size) >= _LIMIT:
                raise zipfile.LargeZipFile("ZIP64 needed")
            t, d = _dos(info.date_time)
            fout.write(
                _LOCAL.pack(
                    b"PK\x03\x04", 20, flags, method, t, d, crc, len(stored), size, len(name), 0
                )
                + name
            )
            fout.write(stored)
            entries.append((info, name, flags, method, crc, len(stored), size, offset))

        def deflate(info: zipfile.ZipInfo, data: bytes) -> None:
            put(info, zipfile.ZIP_DEFLATED, zlib.crc32(data), _deflated(data), len(data))

        for info in z.infolist():
            if info.filename in replace:
                deflate(info, replace[info.filename])
            else:
                put(info, info.compress_type, info.CRC, _raw(fin, info), info.file_size)
        for name, data in extra.items():
            deflate(zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0)), data)

        start = fout.tell()
        for info, name, flags, method, crc, stored, size, offset in entries:
            t, d = _dos(info.date_time)
            fout.write(
                _CENTRAL.pack(
                    b"PK\x01\x02",
                    20,
                    20,
                    flags,
                    method,
                    t,
                    d,
                    crc,
                    stored,
                    size,
                    len(name),
                    0,
                    0,
                    0,
                    info.internal_attr,
                    info.external_attr,
                    offset,
                )
                + name
            )
        size = fout.tell() - start
        if start >= _LIMIT:
            raise zipfile.LargeZipFile("ZIP64 needed")
        fout.write(_END.pack(b"PK\x05\x06", 0, 0, len(entries), len(entries), size, start, 0))
