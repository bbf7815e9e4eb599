"""Where the data came from: an `mnist_png` folder's shape, checked, and its fingerprint.

The fingerprint hashes every image's path and content. Reading 70,000 files takes seconds, so, as
git does with its index, each file's content hash is remembered in a memo in the cache
(`data/folder-<hash of the path>.memo`) with the file's size, modification and change times (ns),
inode and device. A process `stat`s every image once, when it first needs the fingerprint, and
reads again only the files whose stat differs from the memo's. Any write to a file changes its
change time, which no tool can set back, so no rewrite goes unseen, whatever its size. A file whose
times fall within the second the memo was taken in, or later, is "racily clean": it could have been
written again after its stat without its times showing it, so it is read again until a later memo
settles it.

The shape (`_check_folders`, `_check_shape`) is MNIST's: each digit folder of its own, MNIST's
number of images in each, every MNIST index once, no image twice. Only regular files of a plausible
size are read, from the folder and from the cache.
"""

import hashlib
import os
import stat
import time
from array import array
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import UserError, reason
from .store import atomic_write, cache_root, open_regular, read_regular, sha256

# Images per digit folder in MNIST (LeCun et al.): a folder holding fewer is an incomplete copy.
MNIST_COUNTS = {
    "training": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "testing": (980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009),
}
FOLDERS = tuple(f"{split_dir}/{digit}" for split_dir in MNIST_COUNTS for digit in range(10))
MAX_IMAGE = 1 << 20  # bytes: an MNIST PNG takes under 1 KB; a larger file is no MNIST image
MAX_ARRAYS = 1 << 30  # bytes of a cached .npz or memo (full MNIST's training split: 45 MB)
MEMO_FORMAT = 1
DIGEST = 32  # bytes of each image's SHA-256


def _check_folders(root: Path) -> None:
    """Each digit folder is its own: a link is followed, and must lead to a folder of its own digit,
    and no two digit folders are one."""
    seen: dict[str, str] = {}
    for folder in FOLDERS:
        path = os.path.join(root, folder)
        real = os.path.realpath(path)
        if os.path.islink(path) and os.path.basename(real) != os.path.basename(folder):
            raise UserError(f"{folder}/ in {root} is a link to {real}, another digit's folder: "
                            "each digit's images must be in a folder of their own", exit_code=1)
        if real in seen and os.path.isdir(real):
            raise UserError(f"{seen[real]}/ and {folder}/ in {root} are the same folder ({real})", exit_code=1)
        seen[real] = folder


def _survey(root: Path) -> tuple[list[str], np.ndarray, set[str]]:
    """Every image of `root` (paths relative to it, in listing order), each one's stat (size,
    mtime_ns, ctime_ns, inode, device), and the digit folders that are missing.

    A one-line error for a digit folder that is another's, a folder that cannot be read, and a
    `.png` that is not a regular file (`_check_shape` checks the names). Other files are ignored.
    """
    _check_folders(root)
    names, stats, missing = [], array("q"), set()
    top, stat_at, is_file, add = 1 << 63, os.stat, stat.S_ISREG, stats.extend
    for folder in FOLDERS:
        where = os.path.join(root, folder)
        try:  # each image `stat`ed by its name in the open folder: no walk along the whole path
            fd = os.open(where, os.O_RDONLY | os.O_DIRECTORY | os.O_NONBLOCK | os.O_CLOEXEC)
        except FileNotFoundError:
            missing.add(folder)
            continue
        except OSError as e:
            raise UserError(f"cannot read the MNIST folder {where}: {e.strerror}", 1) from None
        try:
            listing = [name for name in os.listdir(fd) if name.endswith(".png")]
        except OSError as e:
            raise UserError(f"cannot read the MNIST folder {where}: {e.strerror}", 1) from None
        try:
            for name in listing:  # the hot loop of every command: 70,000 times
                try:
                    st = stat_at(name, dir_fd=fd)
                except OSError as e:
                    raise UserError(f"cannot read the MNIST image {where}/{name}: {e.strerror}", 1) from None
                if not is_file(st.st_mode):
                    raise UserError(f"{where}/{name} is not an image file (a folder, or another special file)", 1)
                ino, dev = st.st_ino, st.st_dev
                add((st.st_size, st.st_mtime_ns, st.st_ctime_ns,
                     ino if ino < top else ino - 2 * top, dev if dev < top else dev - 2 * top))
        finally:
            os.close(fd)
        names += [f"{folder}/{name}" for name in listing]
    return names, np.frombuffer(stats, dtype=np.int64).reshape(-1, 5), missing


def _check_shape(root: Path, names: list[str], missing: set[str]) -> None:
    """MNIST's shape: every digit folder holds MNIST's number of images for it, and each of
    `training/` and `testing/` holds every MNIST index once (60,000 and 10,000 images, numbered from 0).

    The one-line error says what is wrong: missing folders or images (an interrupted copy), extra
    images, swapped or renamed digit folders, an index in two folders or beyond MNIST's.
    """
    counts = Counter(name.rpartition("/")[0] for name in names)
    problems, incomplete = [], True
    for split_dir, expected in MNIST_COUNTS.items():
        folders = [f"{split_dir}/{digit}" for digit in range(10)]
        for folder, want in zip(folders, expected):
            have = counts[folder]
            if folder in missing:
                problems.append(f"{folder}/ is missing")
            elif have < want and have not in expected:
                problems.append(f"{folder}/ holds {have:,} of its {want:,} images")
            elif have != want:
                incomplete = False
                like = [other for other, n in zip(folders, expected) if n == have]
                if not like:
                    problems.append(f"{folder}/ holds {have:,} images, {have - want:,} more than MNIST's {want:,}")
                elif counts[like[0]] == want and like[0] not in missing:
                    if folder < like[0]:
                        problems.append(f"{folder}/ and {like[0]}/ are swapped ({folder}/ holds the {have:,} "
                                        f"images of MNIST's {like[0]}/, and {like[0]}/ the {want:,} of {folder}/)")
                else:
                    problems.append(f"{folder}/ holds {have:,} images, as many as MNIST's {like[0]}/ "
                                    f"(a renamed digit folder?)")
        where: dict[int, str] = {}
        for name in sorted(names):  # not the listing's order: the same message everywhere
            if not name.startswith(split_dir + "/"):
                continue
            folder, _, file = name.rpartition("/")
            if not (file[:-4].isascii() and file[:-4].isdigit()):
                raise UserError(f"unexpected file {root}/{name}: MNIST images are named by their index, like 123.png", 1)
            index = int(file[:-4])
            if index >= sum(expected):
                incomplete = False
                problems.append(f"{name}: MNIST numbers its {split_dir} images 0 to {sum(expected) - 1:,}")
            elif index in where:
                incomplete = False
                problems.append(f"the MNIST index {index} is in {where[index]}/ and in {folder}/")
            where[index] = folder
    if problems:
        more = f" and {len(problems) - 4} more" if len(problems) > 4 else ""
        state = "is incomplete" if incomplete else "is not as MNIST is published"
        raise UserError(f"MNIST in {root} {state}: {'; '.join(problems[:4])}{more}. Unpack mnist_png.tgz again, "
                        f"or point --data at a complete, unchanged copy.", exit_code=1)


def _digest(root: Path, name: str) -> bytes:
    path = os.path.join(root, name)
    try:
        return hashlib.sha256(read_regular(path, MAX_IMAGE)).digest()
    except OSError as e:
        raise UserError(f"cannot read the MNIST image {path}: {reason(e)}", 1) from None


def _combine(root: Path, names: list[str], digests: np.ndarray) -> str:
    """The fingerprint: SHA-256 over every image's path and content hash, in path order. A one-line
    error if two files hold the same image (MNIST has no image twice: a file copied or linked over another)."""
    pairs = sorted(zip(names, map(bytes, digests)))
    first: dict[bytes, str] = {}
    for name, row in pairs:
        if row in first:
            raise UserError(f"{first[row]} and {name} in {root} are the same image; MNIST holds no image twice "
                            "(one was copied over another?)", exit_code=1)
        first[row] = name
    return sha256("".join(f"{name} {row.hex()}\n" for name, row in pairs).encode())


@dataclass(frozen=True)
class _Memo:
    """What a check found: when it began (ns), each image's path, stat and content hash, and the fingerprint."""

    taken: int
    names: list[str]
    stats: np.ndarray
    digests: np.ndarray
    fingerprint: str


def _memo_file(root: str) -> Path:
    return cache_root() / "data" / f"folder-{sha256(root.encode())[:16]}.memo"


def _read_memo(root: str) -> _Memo | None:
    """The memo of the folder `root` (an absolute path), or None if there is none or it is damaged."""
    try:
        with open_regular(_memo_file(root), MAX_ARRAYS) as f, np.load(f, allow_pickle=False) as z:
            fields = {k: z[k] for k in ("format", "root", "taken", "names", "stats", "digests", "fingerprint")}
    except Exception:  # missing, not a regular file, truncated, bad CRC, a member missing: no memo
        return None
    names, stats, digests = fields["names"], fields["stats"], fields["digests"]
    if not (fields["format"].shape == () and int(fields["format"]) == MEMO_FORMAT and str(fields["root"]) == root
            and names.dtype.kind == "U" and names.ndim == 1 and stats.dtype == np.int64
            and stats.shape == (len(names), 5) and digests.dtype == np.uint8 and digests.shape == (len(names), DIGEST)
            and fields["taken"].dtype == np.int64 and fields["taken"].shape == ()):
        return None
    return _Memo(int(fields["taken"]), names.tolist(), stats, digests, str(fields["fingerprint"]))


def _write_memo(root: str, memo: _Memo) -> None:
    try:
        atomic_write(_memo_file(root), lambda f: np.savez(
            f, format=np.array(MEMO_FORMAT), root=np.array(root), taken=np.array(memo.taken, dtype=np.int64),
            names=np.array(memo.names), stats=memo.stats, digests=memo.digests,
            fingerprint=np.array(memo.fingerprint),
        ))
    except OSError:
        pass  # a memo only: the next process reads the images again


def _check(root: Path) -> str:
    """The fingerprint of the images in `root`, found as the memo allows (see above), after checking
    the folder's shape; the memo is brought up to date."""
    key, taken = os.path.abspath(root), time.time_ns()
    names, stats, missing = _survey(root)
    memo = _read_memo(key)
    if memo is not None and memo.names == names:  # the usual case: nothing added, removed or renamed
        index = np.arange(len(names))
    else:  # compare file by file, after checking the new shape
        _check_shape(root, names, missing)
        where = {name: i for i, name in enumerate(memo.names)} if memo is not None else {}
        index = np.array([where.get(name, -1) for name in names], dtype=np.int64)
    known = index >= 0
    if memo is not None:
        settled = memo.taken // 10**9 * 10**9  # the start of the second the memo was taken in
        known[known] = (memo.stats[index[known]] == stats[known]).all(axis=1) & (
            memo.stats[index[known], 1:3].max(axis=1) < settled)
    if memo is not None and known.all() and memo.names == names:
        return memo.fingerprint
    digests = np.empty((len(names), DIGEST), dtype=np.uint8)
    if memo is not None:
        digests[known] = memo.digests[index[known]]
    for i in np.flatnonzero(~known).tolist():
        digests[i] = np.frombuffer(_digest(root, names[i]), dtype=np.uint8)
    found = _combine(root, names, digests)
    _write_memo(key, _Memo(taken, names, stats.copy(), digests, found))
    return found


_checked: dict[str, str] = {}  # this process's fingerprints, by folder: each folder is checked once


def fingerprint(root: Path) -> str:
    """The fingerprint of the MNIST images in `root`, or a one-line error naming what is missing,
    damaged or out of place.

    A process checks a folder once, when it first needs its fingerprint (a `stat` of every image,
    and a read of those the memo cannot vouch for), and keeps the answer: every run key and load
    of the command then refers to the same images, and worker processes are handed it (`known`).
    """
    key = os.path.abspath(root)
    if key not in _checked:
        _checked[key] = _check(Path(root))
    return _checked[key]


def recheck(root: Path) -> str:
    """`fingerprint`, checked again now (after a decode: the images read must be those fingerprinted)."""
    _checked.pop(os.path.abspath(root), None)
    return fingerprint(root)


def forget() -> None:
    """Check every folder again at its next use."""
    _checked.clear()


def checked() -> dict[str, str]:
    """The fingerprints this process has established, by folder: for a worker process to `adopt`."""
    return dict(_checked)


def adopt(found: dict[str, str]) -> None:
    _checked.update(found)
