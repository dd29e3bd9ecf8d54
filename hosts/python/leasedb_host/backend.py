"""The object storage the plugin imports (`leasedb:plugin/backend@0.2.0`).

A backend is any object with the six methods of `Backend`; each returns its
value or raises `BackendError` (the WIT `backend-error`). `DirectoryBackend`
keeps objects as files in Tahoe's disk layout.
"""

from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from typing import List, Optional, Protocol

#: Most entries one listing returns (the plugin asks again with `next`).
MAX_LIST_LIMIT = 10_000
#: Longest key, and longest `/`-separated segment of one.
MAX_KEY_LEN = 1024
MAX_SEGMENT_LEN = 255


class BackendError(Exception):
    """A backend call failed: `kind` is the WIT case of `backend-error`
    (`not-found`, `transient`, `permanent`, `invalid-key`)."""

    KINDS = ("not-found", "transient", "permanent", "invalid-key")

    def __init__(self, kind: str, message: str = "") -> None:
        if kind not in self.KINDS:
            raise ValueError(f"not a backend-error case: {kind}")
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind
        self.message = message

    @classmethod
    def not_found(cls) -> "BackendError":
        return cls("not-found")


@dataclass(frozen=True)
class ObjectEntry:
    """One object in a listing."""

    key: str
    size: int


@dataclass(frozen=True)
class ListPage:
    """Entries in ascending key order; `next` is where the next page starts."""

    entries: List[ObjectEntry]
    next: Optional[str]


class Backend(Protocol):
    """What a backend must do. Every method may raise `BackendError`."""

    def list_objects(self, prefix: str, start_after: Optional[str], limit: int) -> ListPage:
        """Keys starting with `prefix`, after `start_after`, ascending, at most `limit`."""

    def read(self, key: str, offset: int, length: int) -> bytes:
        """Up to `length` bytes from `offset` (fewer at the end); not-found if absent."""

    def write(self, key: str, data: bytes) -> None:
        """Replaces the object, durably, before returning."""

    def delete(self, key: str) -> None:
        """Removes the object; an absent one is not an error."""

    def size(self, key: str) -> int:
        """The object's size; not-found if absent."""

    def available_space(self) -> int:
        """Bytes the backend can still store."""


def validate_key(key: str, *, prefix: bool = False) -> None:
    """Refuses keys that could escape the root or are not portable (as the
    Rust host does): absolute, `.`/`..` or empty segments, NUL, backslash."""
    if not key:
        if prefix:
            return
        raise BackendError("invalid-key", "the key is empty")
    if len(key.encode()) > MAX_KEY_LEN:
        raise BackendError("invalid-key", f"{key[:80]!r} is longer than {MAX_KEY_LEN} bytes")
    if key.startswith("/") or "\0" in key or "\\" in key:
        raise BackendError("invalid-key", f"{key[:80]!r} is absolute or has NUL or a backslash")
    segments = key.split("/")
    if prefix:
        # The last segment of a prefix may be partial or empty.
        last = segments.pop()
        if last in (".", "..") or len(last.encode()) > MAX_SEGMENT_LEN:
            raise BackendError("invalid-key", f"{key[:80]!r} has a bad last segment")
    for segment in segments:
        if segment in ("", ".", "..") or len(segment.encode()) > MAX_SEGMENT_LEN:
            raise BackendError("invalid-key", f"{key[:80]!r} has a bad segment {segment[:80]!r}")


def page_of(sorted_entries, start_after: Optional[str], limit: int) -> ListPage:
    """The page of `limit` entries after `start_after` from an ascending iterable."""
    limit = min(limit, MAX_LIST_LIMIT)
    after = (e for e in sorted_entries if start_after is None or e.key > start_after)
    taken = list(itertools.islice(after, limit + 1))
    if len(taken) <= limit:
        return ListPage(taken, None)
    taken = taken[:limit]
    # With limit 0 nothing was taken: resume from where the caller asked.
    return ListPage(taken, taken[-1].key if taken else (start_after or ""))


class DirectoryBackend:
    """Objects as files under `root` in Tahoe's layout: key
    `shares/aa/<si>/0` is `<root>/shares/aa/<si>/0`, so an existing Tahoe
    `storage/` directory is a valid root. Writes go to a temporary file that
    is fsynced and renamed over the key, then the directory is fsynced."""

    TEMP_MARKER = ".tmp-"

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, exist_ok=True)
        self._counter = itertools.count()

    def _path(self, key: str) -> str:
        validate_key(key)
        if key.rsplit("/", 1)[-1].startswith(self.TEMP_MARKER):
            raise BackendError("invalid-key", f"{key!r}: names starting {self.TEMP_MARKER!r} are this store's")
        return os.path.join(self.root, key)

    @staticmethod
    def _failure(doing: str, key: str, e: OSError) -> BackendError:
        import errno

        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return BackendError.not_found()
        transient = e.errno in (errno.EAGAIN, errno.EINTR, errno.EBUSY, errno.ENOSPC, errno.EMFILE)
        return BackendError("transient" if transient else "permanent", f"{doing} {key}: {e}")

    def list_objects(self, prefix: str, start_after: Optional[str], limit: int) -> ListPage:
        validate_key(prefix, prefix=True)
        dir_key = prefix[: prefix.rfind("/") + 1]
        return page_of(self._walk(dir_key, prefix, start_after), start_after, limit)

    def _walk(self, dir_key: str, prefix: str, start_after: Optional[str]):
        """Entries under `dir_key` in key order, skipping whole directories
        that cannot match or lie before `start_after`."""
        try:
            scanned = list(os.scandir(os.path.join(self.root, dir_key)))
        except (FileNotFoundError, NotADirectoryError):
            return
        children = []
        for entry in scanned:
            if entry.name.startswith(self.TEMP_MARKER) or entry.is_symlink():
                continue
            if entry.is_dir():
                children.append((dir_key + entry.name + "/", True))
            elif entry.is_file():
                children.append((dir_key + entry.name, False))
        for key, is_dir in sorted(children):
            if is_dir:
                relevant = key.startswith(prefix) or prefix.startswith(key)
                passed = start_after is not None and key < start_after and not start_after.startswith(key)
                if relevant and not passed:
                    yield from self._walk(key, prefix, start_after)
            elif key.startswith(prefix) and (start_after is None or key > start_after):
                try:
                    size = os.stat(os.path.join(self.root, key)).st_size
                except FileNotFoundError:
                    continue
                yield ObjectEntry(key, size)

    def read(self, key: str, offset: int, length: int) -> bytes:
        path = self._path(key)
        try:
            with open(path, "rb") as f:
                f.seek(offset)
                return f.read(length)
        except IsADirectoryError:
            raise BackendError.not_found() from None
        except OSError as e:
            raise self._failure("reading", key, e) from None

    def write(self, key: str, data: bytes) -> None:
        path = self._path(key)
        directory = os.path.dirname(path)
        temp = os.path.join(directory, f"{self.TEMP_MARKER}{os.path.basename(path)}-{os.getpid()}-{next(self._counter)}")
        try:
            self._make_dirs(directory)
            fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            try:
                with os.fdopen(fd, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
                os.replace(temp, path)
            except BaseException:
                try:
                    os.unlink(temp)
                except OSError:
                    pass
                raise
            _sync_dir(directory)
        except OSError as e:
            failure = self._failure("writing", key, e)
            if failure.kind == "not-found":
                failure = BackendError("transient", f"writing {key}: a directory vanished")
            raise failure from None

    def _make_dirs(self, directory: str) -> None:
        if directory == self.root or os.path.isdir(directory):
            return
        self._make_dirs(os.path.dirname(directory))
        try:
            os.mkdir(directory)
        except FileExistsError:
            return
        _sync_dir(os.path.dirname(directory))

    def delete(self, key: str) -> None:
        path = self._path(key)
        try:
            os.unlink(path)
        except FileNotFoundError:
            return
        except OSError as e:
            raise self._failure("deleting", key, e) from None
        directory = os.path.dirname(path)
        _sync_dir(directory)
        if directory != self.root:
            try:
                os.rmdir(directory)
                _sync_dir(os.path.dirname(directory))
            except OSError:
                pass

    def size(self, key: str) -> int:
        path = self._path(key)
        try:
            st = os.stat(path)
        except OSError as e:
            raise self._failure("sizing", key, e) from None
        if not os.path.isfile(path):
            raise BackendError.not_found()
        return st.st_size

    def available_space(self) -> int:
        st = os.statvfs(self.root)
        return st.f_bavail * st.f_frsize


def _sync_dir(directory: str) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
