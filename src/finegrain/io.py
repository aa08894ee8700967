"""Atomic file writes: a killed process never leaves a half-written file behind.

Every writer in finegrain goes through these helpers: the content is written to a temporary
file in the destination folder, flushed to disk, then renamed over the destination. A folder
that one process fills over a long time (an image cache) is held with :func:`exclusive_lock`.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from finegrain.errors import FinegrainError


def _umask() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return umask


def default_mode(*, directory: bool = False) -> int:
    """Permissions a plain ``open()`` (or ``mkdir``) would give a new file (folder): 0o666
    (0o777) less the umask. ``tempfile`` makes 0o600 / 0o700, which a shared dataset or cache
    folder must not keep."""
    return (0o777 if directory else 0o666) & ~_umask()


_FILE_MODE = default_mode()


def _naming(exc: OSError, path: Path) -> OSError:
    """``exc`` again naming ``path`` when it names a temporary file of ours or nothing (a failed
    ``write``): the user asked for ``path``; the temporary name means nothing to them. An error
    that names another file (read inside the ``with`` block) is left as it is."""
    name = exc.filename
    ours = name is None or (
        Path(str(name)).name.startswith(f".{path.name}.") and str(name).endswith(".tmp")
    )
    if exc.errno is None or not ours:
        return exc
    return OSError(exc.errno, exc.strerror or os.strerror(exc.errno), str(path))  # the subclass


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", **kwargs: Any) -> Iterator[IO]:
    """Open a temporary file beside ``path``; on clean exit rename it over ``path``.

    On an exception the temporary file is removed and ``path`` is left untouched. An
    :class:`OSError` of the file system (permission, full disk, a folder in the way) is raised
    again naming ``path``, not the temporary file.
    """
    path = Path(path)
    if "b" not in mode:
        kwargs.setdefault("encoding", "utf-8")
        kwargs.setdefault("newline", "" if path.suffix == ".csv" else None)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _naming(exc, path) from exc
    try:
        try:
            os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; a shared cache must stay readable
            handle = os.fdopen(fd, mode, **kwargs)
        except BaseException:
            os.close(fd)
            raise
        with handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, OSError) and _naming(exc, path) is not exc:
            raise _naming(exc, path) from exc
        raise


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """Whether two paths name one file, however spelled (links, ``..``, relative)."""
    try:
        return os.path.samefile(a, b)
    except OSError:  # one of them does not exist (yet)
        return os.path.realpath(a) == os.path.realpath(b)


def refuse_overwriting_input(out: str | os.PathLike, *inputs: str | os.PathLike) -> None:
    """Raise ``ValueError`` when the output ``out`` is one of the ``inputs``: never write
    over an input file."""
    for source in inputs:
        if same_file(out, source):
            raise FinegrainError(
                f"{out}: is the input {source}; writing there would replace it: choose another "
                "output path"
            )


def special_file_kind(path: str | os.PathLike) -> str | None:
    """What ``path`` is when it exists but is not a regular file ("a folder", "a FIFO (named
    pipe)", ...), else None. Opening a FIFO waits for a writer: check before opening."""
    import stat

    try:
        mode = os.stat(path).st_mode
    except OSError:
        return None  # missing or unreadable: opening it gives the error
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a device"


def unreadable_torch_file(path: str | os.PathLike, exc: Exception, what: str = "checkpoint") -> str:
    """One line naming ``path`` and what is wrong with it, for a file ``torch.load`` could not
    read as a ``what`` (torch's own message is often a bare number, or advice to unpickle code
    even for a JSON or CSV file)."""
    import pickle

    with open(path, "rb") as handle:
        head = handle.read(512)
    if not head:
        return f"{path}: empty file (0 bytes), not a {what}"
    if all(32 <= b < 127 or b in b"\t\r\n" for b in head):  # before pickle's complaint
        return f"{path}: a text file, not a {what}"
    if isinstance(exc, pickle.UnpicklingError) and "weights_only" in str(exc):
        return (
            f"{path}: refused: it holds Python objects besides tensors, which finegrain never "
            f"unpickles (it may run code); save the {what} with finegrain"
        )
    if head.startswith(b"PK"):
        return f"{path}: truncated or damaged {what} (a zip archive torch cannot read)"
    return f"{path}: not a PyTorch {what} (truncated or damaged, or another format)"


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically (UTF-8)."""
    with atomic_open(path, "w") as handle:
        handle.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` atomically."""
    with atomic_open(path, "wb") as handle:
        handle.write(data)


def atomic_write_json(path: str | os.PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def atomic_write_csv(path: str | os.PathLike, frame: Any, **kwargs: Any) -> None:
    """Write a pandas DataFrame as CSV to ``path`` atomically (no index column by default)."""
    kwargs.setdefault("index", False)
    with atomic_open(path, "w") as handle:
        frame.to_csv(handle, **kwargs)


def append_jsonl(path: str | os.PathLike, record: dict) -> None:
    """Append one JSON line to ``path`` and fsync it (a line is either whole or absent on reads
    that skip a trailing partial line, see :func:`read_jsonl`)."""
    path = Path(path)
    line = json.dumps(record, sort_keys=True, default=str) + "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a", encoding="utf-8") as handle:
            handle.write(line)
            handle.flush()
            os.fsync(handle.fileno())
    except OSError as exc:
        raise _naming(exc, path) from exc


def read_jsonl(path: str | os.PathLike) -> list[dict]:
    """Read a JSON-lines file, ignoring a trailing partial line left by a killed writer."""
    records = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            if not line.endswith("\n"):
                break
            if line.strip():
                records.append(json.loads(line))
    return records


def printable(text: object) -> str:
    """``text`` with its control characters escaped as in ``repr`` (``\\x1b``, ``\\t``), for
    quoting file contents in a message: a terminal never receives them raw.

    >>> printable("id\\x1b[2J\\tscore")
    'id\\\\x1b[2J\\\\tscore'
    """
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in str(text))


_GZIP_MAGIC = b"\x1f\x8b"


def table_format(path: str | os.PathLike) -> tuple[str | None, str]:
    """``(compression, separator)`` of a table file, read from its content whatever its name:
    ``"gzip"`` when it starts with gzip's magic bytes (else ``None``); a tab when its first
    line has tabs and no comma (a TSV), else a comma."""
    import gzip

    if Path(path).suffix.lower() in (".zip", ".bz2", ".xz", ".zst", ".tar"):
        return None, ","  # pandas infers these by name
    with open(path, "rb") as handle:
        compressed = handle.read(2) == _GZIP_MAGIC
    try:
        with (gzip.open if compressed else open)(path, "rb") as handle:
            first = handle.readline(1 << 16)
    except (OSError, EOFError):  # a damaged archive: reading it reports the error
        first = b""
    separator = "\t" if b"\t" in first and b"," not in first else ","
    return ("gzip" if compressed else None), separator


def read_csv(path: str | os.PathLike, *, require_rows: bool = False, **kwargs: Any) -> Any:
    """``pandas.read_csv`` with errors that name the file and line: an empty file, bytes that
    are not UTF-8 (with the line and byte where they start), a row that does not parse; with
    ``require_rows``, a file with a header and no rows. A gzipped file or a TSV is read as
    such, whatever its name (:func:`table_format`).

    >>> import tempfile
    >>> bad = Path(tempfile.mkdtemp()) / "scores.csv"
    >>> _ = bad.write_bytes(b"image_id,score\\na,0.5\\nb,\\xff\\n")
    >>> read_csv(bad)
    Traceback (most recent call last):
    ...
    finegrain.errors.FinegrainError: .../scores.csv: line 3, byte 3 (0xff) is not UTF-8: save the file as UTF-8 text
    """
    import pandas as pd

    path = Path(path)
    compression, separator = table_format(path)
    if compression:
        kwargs.setdefault("compression", compression)
    elif "encoding" not in kwargs:
        with open(path, "rb") as handle:
            sniffed = sniff_encoding(handle.read(4096))
        if sniffed is not None:  # a UTF-16 or UTF-32 file (or UTF-8 with a byte-order mark)
            kwargs["encoding"] = sniffed
    if "delimiter" not in kwargs:
        kwargs.setdefault("sep", separator)
    try:
        frame = pd.read_csv(path, **kwargs)
    except pd.errors.EmptyDataError:
        raise FinegrainError(
            f"{path}: empty file (expected a header row of column names)"
        ) from None
    except UnicodeDecodeError:
        raise FinegrainError(
            f"{path}: {_first_undecodable(path)} is not UTF-8: save the file as UTF-8 text"
        ) from None
    except pd.errors.ParserError as exc:
        raise FinegrainError(f"{path}: {printable(' '.join(str(exc).split()))}") from None
    if require_rows and frame.empty:
        raise FinegrainError(f"{path}: only a header row ({header_list(frame.columns)}), no data")
    return frame


def header_list(columns: Any, limit: int = 20) -> str:
    """Column names for a message: comma-separated, control characters escaped, the first
    ``limit``."""
    names = [printable(c) for c in columns]
    more = f", ... ({len(names)} in all)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _first_undecodable(path: Path, encoding: str = "utf-8") -> str:
    """Where the first byte that is not ``encoding`` sits: ``line L, byte B (0xXX)``."""
    data = path.read_bytes()
    try:
        data.decode(encoding)
    except UnicodeDecodeError as exc:
        return _where_byte(data, exc.start)
    return "a byte"  # pragma: no cover - pandas and Python disagree on what UTF-8 is


def _where_byte(data: bytes, position: int) -> str:
    line = data.count(b"\n", 0, position) + 1
    column = position - (data.rfind(b"\n", 0, position) + 1) + 1
    return f"line {line}, byte {column} (0x{data[position]:02x})"


#: Byte-order marks and the encoding each announces (UTF-32's before UTF-16's: FF FE 00 00
#: starts with UTF-16 LE's mark).
_BOMS: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xfe\x00\x00", "utf-32"),
    (b"\x00\x00\xfe\xff", "utf-32"),
    (b"\xef\xbb\xbf", "utf-8-sig"),
    (b"\xff\xfe", "utf-16"),
    (b"\xfe\xff", "utf-16"),
)


def sniff_encoding(head: bytes) -> str | None:
    """The encoding a file's first bytes announce: a byte-order mark (UTF-8, UTF-16, UTF-32),
    or UTF-16 without one (every other byte of its first line zero); ``None`` otherwise.

    >>> sniff_encoding("id,report\\n".encode("utf-16")), sniff_encoding(b"i\\x00d\\x00,\\x00")
    ('utf-16', 'utf-16-le')
    """
    for bom, encoding in _BOMS:
        if head.startswith(bom):
            return encoding
    first = head.split(b"\n\x00", 1)[0][:256] if b"\x00" in head[:256] else b""
    if len(first) >= 4 and len(first) % 2 == 0:
        if not any(first[1::2]) and all(first[0::2]):
            return "utf-16-le"
        if not any(first[0::2]) and all(first[1::2]):
            return "utf-16-be"
    return None


#: What :func:`decode_text` says of the encodings it chose by itself.
_CHOSEN = {
    "utf-8-sig": "UTF-8 (its byte-order mark)",
    "utf-16": "UTF-16 (its byte-order mark)",
    "utf-32": "UTF-32 (its byte-order mark)",
    "utf-16-le": "UTF-16 LE (no byte-order mark; every other byte of its first line is zero)",
    "utf-16-be": "UTF-16 BE (no byte-order mark; every other byte of its first line is zero)",
}


def decode_text(
    data: bytes, source: str | os.PathLike, encoding: str | None = None
) -> tuple[str, str, bool]:
    """``(text, how it was read, whether bytes were replaced)`` of a text file's bytes.

    ``encoding`` given: read strictly with it (an undecodable byte is an error naming its line
    and byte). Else the encoding :func:`sniff_encoding` finds, else UTF-8; bytes that are not
    UTF-8 are read as Windows-1252 when the file holds no UTF-8 character at all (a Latin-1 or
    Windows-1252 file: "effusión" read right), else replaced by U+FFFD (a damaged UTF-8 file;
    the third value is then True). ``how`` is ``""`` for plain UTF-8, else a phrase naming the
    encoding and why it was chosen.

    >>> decode_text("effusión".encode("latin-1"), "r.csv")
    ('effusión', 'Windows-1252 (not UTF-8, and no UTF-8 character in it)', False)
    """
    if encoding is not None:
        try:
            return data.decode(encoding), f"{encoding} (as asked)", False
        except LookupError:
            raise FinegrainError(f"unknown encoding {encoding!r}") from None
        except UnicodeDecodeError as exc:
            raise FinegrainError(
                f"{source}: {_where_byte(data, exc.start)} is not {encoding}"
            ) from None
    sniffed = sniff_encoding(data[:4096])
    if sniffed is not None:
        try:
            return data.decode(sniffed), _CHOSEN[sniffed], False
        except UnicodeDecodeError as exc:
            raise FinegrainError(
                f"{source}: read as {_CHOSEN[sniffed]}, but {_where_byte(data, exc.start)} is "
                "not: give its encoding"
            ) from None
    try:
        return data.decode("utf-8"), "", False
    except UnicodeDecodeError:
        pass
    lenient = data.decode("utf-8", errors="replace")
    if any(ord(c) > 127 and c != "\ufffd" for c in lenient):  # UTF-8 with damaged bytes
        return lenient, "", True
    try:
        return (
            data.decode("cp1252"),
            "Windows-1252 (not UTF-8, and no UTF-8 character in it)",
            False,
        )
    except UnicodeDecodeError:  # the five bytes Windows-1252 leaves undefined
        return data.decode("latin-1"), "Latin-1 (not UTF-8, and no UTF-8 character in it)", False


class LockedError(FinegrainError):
    """Another process holds the lock (a ``ValueError``: the command line reports it in one
    line, like other unusable arguments)."""


def _flock(handle: IO[str], busy: Callable[[], FinegrainError]) -> None:
    """Take an exclusive ``flock`` on the open ``handle`` without waiting; if another process
    holds it, close the handle and raise ``busy()``."""
    import fcntl

    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        handle.close()
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            raise busy() from None
        raise


def _write_pid(handle: IO[str]) -> None:
    """Our pid as the lock file's whole content (what a busy message can name)."""
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()


@contextlib.contextmanager
def held_lock(path: Path, busy: Callable[[str], FinegrainError]) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (our pid written in it) while the block
    runs; the file stays. If another process holds it, raise ``busy(pid)`` (the holder's pid as
    its file says, or ""). The OS releases the lock when the holder exits or is killed, so a
    leftover lock file is harmless."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until the end

    def holder() -> FinegrainError:
        return busy(path.read_text(encoding="utf-8").strip() if path.is_file() else "")

    _flock(handle, holder)
    try:
        _write_pid(handle)
        yield
    finally:
        fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        handle.close()


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, busy: str) -> Iterator[None]:
    """Hold an exclusive ``flock`` on the file ``path`` (holding our pid) and remove it after.

    If another process holds it, raise :class:`LockedError` with the message ``busy``. The OS
    releases the lock when the holder exits or is killed, so a stale lock file is harmless.
    """
    import fcntl

    path = Path(path)
    while True:
        try:
            handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 - held until exit
        except OSError as exc:
            raise _naming(exc, path) from exc
        _flock(handle, lambda: LockedError(busy))
        try:  # the holder before us may have removed the file after we opened it
            same = os.path.samestat(os.fstat(handle.fileno()), os.stat(path))
        except FileNotFoundError:
            same = False
        if same:
            break
        handle.close()
    with handle:
        try:
            _write_pid(handle)
            yield
        finally:
            with contextlib.suppress(OSError):
                path.unlink()
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
