"""Files written under a temporary name beside their place and moved there in one step, so a
reader (another rank of the same job, another job sharing the directory) sees the old file or
the new one, never a part."""

from __future__ import annotations

import os
import shutil
import tempfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO


def write_atomically(
    path: Path, write: Callable[[IO[bytes]], object], *, also: Path | None = None
) -> None:
    """Write a file under a temporary name in its folder, then move it into place (and give it
    the second name `also`)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, name = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
    try:
        with os.fdopen(descriptor, "wb") as handle:
            share(handle.fileno())
            write(handle)
        move_into_place(Path(name), path, also=also)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise


def move_into_place(temporary: Path, path: Path, *, also: Path | None) -> None:
    """Move a file written under a temporary name to `path`, having given it the name `also`
    first. The second name is linked from the temporary file, never from `path`: by then
    another job sharing the cache may have put its own answer, about another snapshot, there."""
    if also is not None:
        link = also.with_name(f".link-{uuid.uuid4().hex}")
        try:
            try:
                os.link(temporary, link)
            except OSError:  # a file system without hard links
                shutil.copyfile(temporary, link)
            os.replace(link, also)
        finally:  # os.replace leaves `link` behind when both names are one file already
            link.unlink(missing_ok=True)
    os.replace(temporary, path)


def current_umask() -> int:
    """The process's umask. Linux shows it in /proc/self/status; elsewhere reading it means
    setting it and putting it back, which a thread creating a file meanwhile could see."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    umask = os.umask(0o022)
    os.umask(umask)
    return umask


def share(descriptor: int) -> None:
    """Give a file written under a temporary name the mode of any new file (0o666 less the
    umask) instead of mkstemp's 0o600: a cache shared by the users of a group stays readable."""
    os.fchmod(descriptor, 0o666 & ~current_umask())
