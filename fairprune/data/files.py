"""Reading the files a dataset lists: existence, decoding, the errors they raise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from fairprune.errors import FairpruneError

ERR_IMAGES_MISSING = "{count} image(s) listed in {source} are missing under {root}, first: {first}."


ERR_IMAGE_UNREADABLE = "unreadable image {path} ({reason}); replace or remove it and its row."


def verify_images(paths: list[Path], *, sample: int | None = None, seed: int = 0) -> None:
    """Open and fully decode images (all of them, or a seeded sample) before training starts."""
    order = np.arange(len(paths))
    if sample is not None and sample < len(paths):
        order = np.random.default_rng(seed).choice(len(paths), sample, replace=False)
    for i in order:
        p = paths[int(i)]
        try:
            with Image.open(p) as im:
                im.load()
        except (OSError, UnidentifiedImageError) as exc:
            raise FairpruneError(ERR_IMAGE_UNREADABLE.format(path=p, reason=exc)) from None


ERR_FILES_MISSING = "{dataset}: {missing} not found in {where}; that folder must hold {expects}."


DEFAULT_VERIFY = 64  # images fully decoded (seeded sample) before a real dataset is returned


def _check_files(dataset: str, where: Path, names: list[str], expects: str) -> None:
    """Raise one error naming every expected file or folder (``name/``) missing in ``where``."""
    missing = [
        n for n in names if not ((where / n).is_dir() if n.endswith("/") else (where / n).is_file())
    ]
    if missing:
        raise FairpruneError(
            ERR_FILES_MISSING.format(
                dataset=dataset, missing=", ".join(missing), where=where, expects=expects
            )
        )


def _verify_sample(paths: list[Path], verify, seed: int) -> None:
    verify_images(paths, sample=None if verify == "all" else int(verify), seed=seed)
