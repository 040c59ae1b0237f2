"""Reading the files a dataset lists: containment, file types, size caps, decoding, their errors.

Every loader goes through here, so one set of rules holds for all of them: a listed path must
resolve (symlinks included) inside the dataset folder the user chose; only regular files are
opened (a FIFO would block, a device never ends); a file's size is checked before it is read and
an image's pixel count before it is decoded, so memory stays bounded whatever the file claims.
"""

from __future__ import annotations

import os
import stat
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from PIL import Image

from fairprune.errors import FairpruneError
from fairprune.paths import ERR_FILE_TOO_BIG, regular_file_size

ERR_IMAGES_MISSING = "{count} image(s) listed in {source} are missing under {root}, first: {first}."


ERR_IMAGE_UNREADABLE = "unreadable image {path} ({reason}); replace or remove it and its row."


ERR_OUTSIDE_ROOT = (
    "{source}: {count} listed path(s) lead outside {root} (first at row(s) {rows}: {first}); "
    "list only files inside the dataset folder (symlinks included)."
)


ERR_NOT_REGULAR = (
    "{source}: {count} listed path(s) are not regular files (first at row(s) {rows}: {first}); "
    "list image files only, not folders, pipes or devices."
)


ERR_BAD_NAMES = (
    "{source}: {count} listed path(s) cannot be file names (first at row(s) {rows}: {reason}); "
    "fix those rows."
)


ERR_DUPLICATES = (
    "{source}: {count} row(s) list an image listed before (first at row(s) {rows}: {first}); "
    "remove the repeats: a repeated image can land in two splits."
)


ERR_FOLDER_OUTSIDE = (
    "{path} leads outside the dataset folder {root}; copy the files into the folder itself."
)


ERR_NOT_A_FILE = "{path} is not a regular file; point to the file itself, not a pipe or device."


ERR_FILES_MISSING = "{dataset}: {missing} not found in {where}; that folder must hold {expects}."


MAX_IMAGE_PIXELS = 50_000_000  # width × height an image may declare (a 8000 × 6000 photo fits)


MAX_IMAGE_BYTES = 256 * 2**20  # bytes an image file may have before it is opened


DEFAULT_VERIFY = 64  # images fully decoded (seeded sample) before a real dataset is returned


TOO_MANY_PIXELS = "{w} × {h} pixels, over the {cap:,} a dataset image may have"


def clip(value: object, limit: int = 200) -> str:
    """``str(value)`` cut to ``limit`` characters: a user's path may be a megabyte long."""
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _short(exc: BaseException, limit: int = 160) -> str:
    """The first line of an exception's message (or its type), at most ``limit`` characters."""
    lines = str(exc).strip().splitlines()
    text = lines[0] if lines else type(exc).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _reason(exc: BaseException) -> str:
    """Why a path is unusable, without repeating the (possibly huge) path itself."""
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return _short(exc, 80)


def inside(path: str | Path, root: str | Path) -> bool:
    """Whether the already resolved ``path`` is ``root`` or lies below it (both resolved)."""
    path, root = str(path), str(root)
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def resolved_root(root: str | Path) -> Path:
    """The dataset folder with every symlink resolved: what listed paths must stay inside."""
    return Path(os.path.realpath(root))


def regular_file(path: str | Path, *, cap: int, what: str) -> int:
    """Check that ``path`` is a regular file of at most ``cap`` bytes before reading it.

    Parameters
    ----------
    path : path
        Followed through symlinks (the target is what would be read).
    cap : int
        Largest size in bytes.
    what : str
        What the file is, for the message ("CIFAR-10 batch", "CSV file").

    Returns
    -------
    int
        The file's size in bytes.

    Raises
    ------
    FairpruneError
        A FIFO, device, folder or missing file, or one over ``cap``.
    """
    return regular_file_size(path, cap=cap, what=what, not_a_file=ERR_NOT_A_FILE)


def read_capped(path: str | Path, *, cap: int, what: str) -> bytes:
    """The bytes of a regular file of at most ``cap`` bytes (checked before reading)."""
    size = regular_file(path, cap=cap, what=what)
    with open(path, "rb") as f:
        data = f.read(size + 1)  # the size read, not the cap: no big buffer up front
    if len(data) > cap:
        raise FairpruneError(
            ERR_FILE_TOO_BIG.format(path=path, size=len(data) / 2**20, cap=cap / 2**20, what=what)
        )
    return data


def stays_inside(path: Path, root: Path) -> Path:
    """``path`` (a file or folder) resolved; it must stay inside the resolved ``root``."""
    real = resolved_root(path)
    if not inside(real, resolved_root(root)):
        raise FairpruneError(ERR_FOLDER_OUTSIDE.format(path=path, root=root))
    return real


def _rows_text(rows: Sequence[str], limit: int = 5) -> str:
    return ", ".join(str(r) for r in rows[:limit])


def listed_files(
    root: str | Path,
    listed: Sequence[str],
    *,
    source: str,
    rows: Sequence[str] | None = None,
    unique: bool = False,
) -> list[Path]:
    """``root / p`` for every listed relative path, after checking where each one leads.

    Each path is resolved (``..`` and symlinks included) and must stay inside the resolved
    ``root``, exist and be a regular file. The first problem found (unusable names, then paths
    leading outside, then missing files, then non-regular files) is one error naming the first
    offending rows.

    Parameters
    ----------
    root : path
        The dataset folder the user chose.
    listed : sequence of str
        Paths as the file lists them, relative to ``root`` (absolute paths must lead inside too).
    source : str
        The listing file's name, for the message.
    rows : sequence of str, optional
        A label per path for the message (file line numbers); default 1, 2, 3…
    unique : bool, default False
        Also refuse two rows that lead to the same file (after resolving).

    Returns
    -------
    list of Path
        ``root / p`` per listed path (not resolved, so ids and messages stay as listed).
    """
    root = Path(root)
    real_root = resolved_root(root)
    rows = [str(i + 1) for i in range(len(listed))] if rows is None else list(rows)
    bad_name, outside, missing, not_regular, repeated = [], [], [], [], []
    reasons, seen = {}, set()
    out = []
    for i, rel in enumerate(listed):
        path = root / rel
        out.append(path)
        try:
            real = os.path.realpath(path)
        except (OSError, ValueError) as exc:  # a NUL byte, a name the system refuses
            bad_name.append(i)
            reasons.setdefault("first", _reason(exc))
            continue
        if not inside(real, real_root):
            outside.append(i)
            continue
        try:
            st = os.stat(real)
        except (FileNotFoundError, NotADirectoryError):
            missing.append(i)
            continue
        except (OSError, ValueError) as exc:  # name too long, a loop of links…
            bad_name.append(i)
            reasons.setdefault("first", _reason(exc))
            continue
        if not stat.S_ISREG(st.st_mode):
            not_regular.append(i)
        elif unique and real in seen:
            repeated.append(i)
        seen.add(real)
    for found, message in ((bad_name, ERR_BAD_NAMES), (outside, ERR_OUTSIDE_ROOT)):
        if found:
            first = str(listed[found[0]])
            raise FairpruneError(
                message.format(
                    source=source,
                    count=len(found),
                    rows=_rows_text([rows[i] for i in found]),
                    first=first if len(first) <= 120 else first[:119] + "…",
                    root=root,
                    reason=reasons.get("first", ""),
                )
            )
    if missing:
        raise FairpruneError(
            ERR_IMAGES_MISSING.format(
                count=len(missing), source=source, root=root, first=listed[missing[0]]
            )
        )
    if not_regular:
        raise FairpruneError(
            ERR_NOT_REGULAR.format(
                source=source,
                count=len(not_regular),
                rows=_rows_text([rows[i] for i in not_regular]),
                first=listed[not_regular[0]],
            )
        )
    if repeated:
        raise FairpruneError(
            ERR_DUPLICATES.format(
                source=source,
                count=len(repeated),
                rows=_rows_text([rows[i] for i in repeated]),
                first=listed[repeated[0]],
            )
        )
    return out


def folder_listing(folder: Path, root: Path) -> tuple[set[str], dict[str, str]]:
    """One pass over ``folder``: names of usable files, and the others with why.

    Far faster than a ``stat`` per listed image (CelebA lists 202 599): ``os.scandir`` gives each
    entry's type from the directory itself, and only symlinks are resolved.

    Returns
    -------
    (set of str, dict of str → str)
        Regular files inside the resolved ``root``; and ``name → "outside"`` (a symlink leading
        out of ``root``) or ``name → "not regular"`` (folders, pipes, devices, dangling links).
    """
    real_root = resolved_root(root)
    ok, bad = set(), {}
    with os.scandir(folder) as entries:
        for entry in entries:
            if entry.is_symlink():
                target = os.path.realpath(entry.path)
                if not inside(target, real_root):
                    bad[entry.name] = "outside"
                    continue
                try:
                    regular = stat.S_ISREG(os.stat(target).st_mode)
                except OSError:
                    regular = False
            else:
                regular = entry.is_file(follow_symlinks=False)
            if regular:
                ok.add(entry.name)
            else:
                bad[entry.name] = "not regular"
    return ok, bad


def check_listed_names(
    names: Sequence[str],
    rows: Sequence[str],
    bad: dict[str, str],
    *,
    source: str,
    root: Path,
) -> None:
    """Raise for the first listed names that ``folder_listing`` found leading out or irregular."""
    for kind, message in (("outside", ERR_OUTSIDE_ROOT), ("not regular", ERR_NOT_REGULAR)):
        found = [i for i, n in enumerate(names) if bad.get(n) == kind]
        if found:
            raise FairpruneError(
                message.format(
                    source=source,
                    count=len(found),
                    rows=_rows_text([rows[i] for i in found]),
                    first=names[found[0]],
                    root=root,
                )
            )


def read_image(path: str | Path) -> Image.Image:
    """Open, check and fully decode one image as RGB; any failure is one clear error.

    The file must be a regular file of at most ``MAX_IMAGE_BYTES``, and its header may declare at
    most ``MAX_IMAGE_PIXELS`` pixels: both are checked before any pixel is decoded, so a
    decompression bomb (a small PNG whose header claims 60 000 × 60 000) allocates nothing.
    PIL's own ``DecompressionBombWarning``/``Error`` count as unreadable too.

    Returns
    -------
    PIL.Image.Image
        Decoded, mode RGB.
    """
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise ValueError("not a regular file")
        if st.st_size > MAX_IMAGE_BYTES:
            raise ValueError(f"{st.st_size / 2**20:.0f} MB, over {MAX_IMAGE_BYTES // 2**20} MB")
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h = im.size
                if w * h > MAX_IMAGE_PIXELS:
                    raise ValueError(TOO_MANY_PIXELS.format(w=w, h=h, cap=MAX_IMAGE_PIXELS))
                return im.convert("RGB")  # decodes every pixel: truncation shows here
    except Exception as exc:  # decoders raise a zoo (OSError, SyntaxError, struct.error…)
        raise FairpruneError(
            ERR_IMAGE_UNREADABLE.format(path=path, reason=_short(exc, 300))
        ) from None


def verify_images(paths: list[Path], *, sample: int | None = None, seed: int = 0) -> None:
    """Open and fully decode images (all of them, or a seeded sample) before training starts."""
    order = np.arange(len(paths))
    if sample is not None and sample < len(paths):
        order = np.random.default_rng(seed).choice(len(paths), sample, replace=False)
    for i in order:
        read_image(paths[int(i)])


def check_files(dataset: str, where: Path, names: list[str], expects: str) -> None:
    """Raise one error naming every expected file or folder (``name/``) missing in ``where``."""
    for n in names:  # something is there, but not a file: a FIFO, a device, a folder
        path = where / n
        if not n.endswith("/") and os.path.lexists(path) and not path.is_file():
            raise FairpruneError(ERR_NOT_A_FILE.format(path=path))
    missing = [
        n for n in names if not ((where / n).is_dir() if n.endswith("/") else (where / n).is_file())
    ]
    if missing:
        raise FairpruneError(
            ERR_FILES_MISSING.format(
                dataset=dataset, missing=", ".join(missing), where=where, expects=expects
            )
        )


ERR_VERIFY = 'verify must be "all" or a number of images >= 0, got {value!r}.'


def verify_count(verify) -> int | None:
    """``verify`` as a sample size (None: every image); one clear error for anything else."""
    if verify == "all":
        return None
    if isinstance(verify, bool) or not isinstance(verify, int | str):
        raise FairpruneError(ERR_VERIFY.format(value=verify))
    try:
        n = int(verify)
    except ValueError:
        raise FairpruneError(ERR_VERIFY.format(value=verify)) from None
    if n < 0:
        raise FairpruneError(ERR_VERIFY.format(value=verify))
    return n


def verify_sample(paths: list[Path], verify, seed: int) -> None:
    verify_images(paths, sample=verify_count(verify), seed=seed)
