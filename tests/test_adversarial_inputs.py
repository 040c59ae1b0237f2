"""Malformed dataset files and arguments, generated here (no binary fixture is committed).

Every loader (CSV, CelebA, Fitzpatrick17k, CIFAR-10, SynthDerm's options) and every command gets
inputs a careless or hostile person could hand it: wrong encodings, empty and header-only files,
odd labels, single classes, empty groups, duplicates, corrupt / truncated / zero-byte / bomb
images, paths leading out of the folder, FIFOs and devices, out-of-range levels, seeds, fractions
and sizes, unknown criteria, unwritable outputs. Each case runs the CLI in-process and asserts:

- exit 1 with exactly one ``error:`` line that is not ``main``'s catch-all (nobody foresaw it)
  or, for a malformed argument, argparse's usage error: exit 2, the usage line and one
  ``error:`` line;
- no traceback; no payload marker; nothing written outside the folders the user chose.

A handful run again as real subprocesses under an address-space limit (bombs, huge sizes), and
the two dashboard pages that take paths are driven through ``AppTest``.
"""

from __future__ import annotations

import gzip
import json
import os
import pickle
import re
import struct
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from fairprune.cli import main
from tests.data.test_real_datasets import _celeba, _cifar, _fitz
from tests.test_adversarial_checkpoints import GROWTH_LIMIT, Payload, run_limited

# ---------------------------------------------------------------------------- environment


class Env:
    """Folders of one case: the dataset root the user names, and a folder outside it."""

    def __init__(self, base: Path):
        self.base = base
        self.root = base / "ds"
        self.root.mkdir()
        self.outside = base / "outside"
        self.outside.mkdir()
        self.secret = self.outside / "secret.png"
        _png(self.secret, (8, 8), (1, 2, 3))
        self.marker = base / "PAYLOAD_RAN"

    def snapshot(self) -> list[tuple[str, int]]:
        """What lies outside the chosen folders (compared before and after each case)."""
        found = []
        for p in sorted(self.outside.rglob("*")):
            found.append((str(p.relative_to(self.outside)), p.lstat().st_size))
        return found


@pytest.fixture(autouse=True)
def _private_store(tmp_path, monkeypatch):
    """Defaults (models, results, data caches) point into the test's own folder."""
    monkeypatch.setenv("FAIRPRUNE_MODELS_DIR", str(tmp_path / "store" / "models"))
    monkeypatch.setenv("FAIRPRUNE_RESULTS", str(tmp_path / "store" / "results.sqlite"))
    monkeypatch.setenv("FAIRPRUNE_DATA_DIR", str(tmp_path / "store" / "data"))


# ------------------------------------------------------------------------- file builders


def _png(path: Path, size=(8, 8), colour=(10, 100, 200)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size[1], size[0], 3), colour, dtype=np.uint8)).save(path)
    return path


def _bomb_png(path: Path, w: int, h: int) -> Path:
    """A 60-byte PNG whose header claims w × h pixels (its data is a few zero bytes)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b"")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


GOOD_ROWS = [(f"img/{i:02d}.png", "ab"[i % 2], "xy"[(i // 2) % 2]) for i in range(16)]


def _csv_ds(env: Env, rows=GOOD_ROWS, header="path,label,group", text: str | None = None) -> Path:
    """A CSV dataset under env.root: images for every listed img/ path, and the CSV."""
    for i, row in enumerate(rows):
        p = env.root / row[0]
        if re.fullmatch(r"img/\d\d\.png", row[0]) and not p.exists() and not p.is_symlink():
            _png(p, (8, 8), (10 * i, 100, 200))
    path = env.root / "data.csv"
    if text is None:
        text = header + "\n" + "".join(",".join(map(str, r)) + "\n" for r in rows)
    path.write_text(text) if isinstance(text, str) else path.write_bytes(text)
    return path


def _csv_argv(env: Env, csv: Path | str | None = None, *options: str) -> list[str]:
    csv = env.root / "data.csv" if csv is None else csv
    argv = ["data", "summary", "--dataset", "csv", "--root", str(env.root), "--csv", str(csv)]
    for o in options:
        argv += ["--option", o]
    return argv


def _csv_case(rows=GOOD_ROWS, *options: str, header="path,label,group", text=None):
    def setup(env: Env) -> list[str]:
        _csv_ds(env, rows, header=header, text=text)
        return _csv_argv(env, None, *options)

    return setup


def _with_row(row: tuple, *options: str) -> Callable[[Env], list[str]]:
    """The good rows plus one hostile row (placed second, file line 3)."""
    return _csv_case([GOOD_ROWS[0], row, *GOOD_ROWS[1:]], *options)


def _with_file(name: str, make: Callable[[Env, Path], None], *options: str):
    """The good rows plus one row naming ``name``, a file that ``make`` creates under root."""

    def setup(env: Env) -> list[str]:
        make(env, env.root / name)
        _csv_ds(env, [GOOD_ROWS[0], (name, "a", "x"), *GOOD_ROWS[1:]])
        return _csv_argv(env, None, *options)

    return setup


def _link(target: Callable[[Env], str | Path]):
    def make(env: Env, p: Path) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.symlink_to(target(env))

    return make


def _fifo(env: Env, p: Path) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    os.mkfifo(p)


def _bytes(data: bytes):
    def make(env: Env, p: Path) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)

    return make


def _truncated_png(env: Env, p: Path) -> None:
    _png(p, (64, 64), (5, 5, 5))
    p.write_bytes(p.read_bytes()[:60])


def _truncated_jpeg(env: Env, p: Path) -> None:
    p.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), np.uint8)).save(
        p, "JPEG"
    )
    p.write_bytes(p.read_bytes()[: p.stat().st_size // 2])


def _sparse(size: int):
    def make(env: Env, p: Path) -> None:
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, "wb") as f:
            f.truncate(size)  # no data written: a hole the size check must refuse before reading

    return make


# ------------------------------------------------------------------------------- the cases
# name -> (setup(env) -> argv, expected exit status). 1: bad input found while running;
# 2: argparse's usage error.

Case = tuple[Callable[[Env], list[str]], int]
CASES: dict[str, Case] = {}


def add(name: str, setup: Callable[[Env], list[str]], rc: int = 1) -> None:
    assert name not in CASES, name
    CASES[name] = (setup, rc)


# --- CSV: the file itself
add("csv-empty-file", _csv_case(text=""))
add("csv-only-whitespace", _csv_case(text="\n\n   \n"))
add("csv-header-only", _csv_case(text="path,label,group\n"))
add("csv-utf16", _csv_case(text=("path,label,group\nimg/00.png,a,x\n").encode("utf-16")))
add("csv-latin1", _csv_case(text="path,label,group\nimg/00.png,caf\xe9,x\n".encode("latin-1")))
add("csv-binary-png", _csv_case(text=b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 8))
add("csv-gzip", _csv_case(text=gzip.compress(b"path,label,group\nimg/00.png,a,x\n")))
add("csv-nul-bytes", _csv_case(text=b"path,label,group\n\0\0\0,\0,\0\n"))
add("csv-unterminated-quote", _csv_case(text='path,label,group\n"img/00.png,a,x\n'))
add("csv-ragged-rows", _csv_case(text="path,label,group\nimg/00.png,a,x,1,2,3\n"))
add("csv-semicolons", _csv_case(text="path;label;group\nimg/00.png;a;x\n"))
add("csv-no-group-column", _csv_case(header="path,label,grp"))
add("csv-no-label-column", _csv_case(header="path,lbl,group"))
add("csv-no-path-column", _csv_case(header="file,label,group"))
add("csv-empty-label", _with_row(("img/90.png", "", "x")))
add("csv-blank-label", _with_row(("img/90.png", "   ", "x")))
add("csv-empty-group", _with_row(("img/90.png", "a", "")))
add("csv-empty-path", _with_row(("", "a", "x")))
add("csv-single-class", _csv_case([(p, "a", g) for p, _, g in GOOD_ROWS]))
add("csv-single-row", _csv_case(GOOD_ROWS[:1]))
add("csv-two-rows", _csv_case(GOOD_ROWS[:2]))
add("csv-group-missing-from-test",
    _csv_case([(p, y, g, "test" if g == "x" else "train") for p, y, g in GOOD_ROWS],
              header="path,label,group,split"))  # fmt: skip
add(
    "csv-split-unknown",
    _csv_case([(p, y, g, "holdout") for p, y, g in GOOD_ROWS], header="path,label,group,split"),
)
add(
    "csv-split-no-test",
    _csv_case([(p, y, g, "train") for p, y, g in GOOD_ROWS], header="path,label,group,split"),
)
add(
    "csv-split-no-train",
    _csv_case([(p, y, g, "test") for p, y, g in GOOD_ROWS], header="path,label,group,split"),
)
add("csv-duplicate-row", _csv_case([*GOOD_ROWS, GOOD_ROWS[3]]))
add("csv-duplicate-alias", _csv_case([*GOOD_ROWS, ("./img/../img/03.png", "a", "x")]))
add(
    "csv-duplicate-via-symlink",
    _with_file("img/alias.png", _link(lambda env: env.root / "img" / "00.png")),
)

# --- CSV: where the rows lead
add("csv-path-parent-traversal", _with_row(("../../../etc/passwd", "a", "x")))
add("csv-path-absolute-etc", _with_row(("/etc/passwd", "a", "x")))
add("csv-path-absolute-outside-image", lambda env: _with_row((str(env.secret), "a", "x"))(env))
add("csv-path-dotdot-outside-image", _with_row(("../outside/secret.png", "a", "x")))
add("csv-path-symlink-to-outside-image", _with_file("img/link.png", _link(lambda env: env.secret)))
add(
    "csv-path-symlinked-folder-outside",
    _with_file("img2", _link(lambda env: env.outside)),
)
add("csv-path-through-symlinked-folder",
    lambda env: (_link(lambda e: e.outside)(env, env.root / "ext"),
                 _with_row(("ext/secret.png", "a", "x"))(env))[1])  # fmt: skip
add("csv-path-symlink-to-etc", _with_file("img/etc.png", _link(lambda env: "/etc/passwd")))
add("csv-path-symlink-to-dev-zero", _with_file("img/zero.png", _link(lambda env: "/dev/zero")))
add("csv-path-fifo", _with_file("img/fifo.png", _fifo))
add("csv-path-directory", _with_file("img/dir.png", lambda env, p: p.mkdir(parents=True)))
add("csv-path-dangling-symlink", _with_file("img/dangling.png", _link(lambda env: env.base / "no")))
add("csv-path-symlink-loop", _with_file("img/loop.png", _link(lambda env: env.root / "img" / "loop.png")))  # fmt: skip
add("csv-path-missing", _with_row(("img/missing.png", "a", "x")))
add("csv-path-1mb", _with_row(("a" * 1_000_000, "a", "x")))
add("csv-path-long-component", _with_row(("img/" + "b" * 300 + ".png", "a", "x")))
add("csv-path-nul", _csv_case(text="path,label,group\nimg/00.png,a,x\nimg/0\x001.png,b,y\n"))
add("csv-path-dev-null", _with_row(("/dev/null", "a", "x")))
add("csv-path-proc", _with_row(("/proc/self/environ", "a", "x")))

# --- CSV: the images
add("img-bomb-60000", _with_file("img/bomb.png", lambda env, p: _bomb_png(p, 60000, 60000)))
add("img-bomb-9000", _with_file("img/big.png", lambda env, p: _bomb_png(p, 9000, 9000)))
add("img-bomb-wide", _with_file("img/wide.png", lambda env, p: _bomb_png(p, 2**31 - 1, 1)))
add("img-zero-size-header", _with_file("img/zero.png", lambda env, p: _bomb_png(p, 0, 0)))
add("img-zero-bytes", _with_file("img/empty.png", _bytes(b"")))
add("img-text", _with_file("img/text.png", _bytes(b"this is not an image\n")))
add("img-truncated-png", _with_file("img/trunc.png", _truncated_png))
add("img-truncated-jpeg", _with_file("img/trunc.jpg", _truncated_jpeg))
add("img-pickle", lambda env: _with_file("img/p.png", _bytes(pickle.dumps(Payload(env.marker, "exec"))))(env))  # fmt: skip
add("img-html", _with_file("img/x.png", _bytes(b"<html><script>alert(1)</script></html>")))
add("img-random-bytes", _with_file("img/r.png", _bytes(bytes(np.random.default_rng(1).integers(0, 256, 4096, np.uint8)))))  # fmt: skip
add("img-file-too-big", _with_file("img/huge.png", _sparse(300 * 2**20)))

# --- CSV: options
for _opt in ("image_size=abc", "image_size=0", "image_size=4", "image_size=40000",
             "image_size=3.5", "image_size=-64", "image_size=true", "root=/etc", "name=x",
             "image_size=[64]", "val_fraction=2", "val_fraction=-0.1", "val_fraction=nan",
             "val_fraction=abc", "test_fraction=1", "test_fraction=Infinity",
             "test_fraction=0",
             "verify=abc", "verify=-3", "verify=2.5", "verify=[1]", "limit=0", "limit=-5",
             "limit=abc", "limit=1e3", "test_limit=0", "group_columns=5", "group_columns=[]",
             "group_columns=[1,2]", "group_columns=missing", "group_columns=,",
             "bogus=1", "=5", "novalue"):  # fmt: skip
    add(f"csv-option-{_opt}", _csv_case(GOOD_ROWS, _opt))
add("csv-fractions-sum-to-1", _csv_case(GOOD_ROWS, "val_fraction=0.5", "test_fraction=0.5"))

# --- CSV: --csv and --root themselves
add("csv-arg-missing-file", lambda env: _csv_argv(env, env.root / "nope.csv"))
add("csv-arg-directory", lambda env: _csv_argv(env, env.outside))
add("csv-arg-fifo", lambda env: (_fifo(env, env.root / "f.csv"), _csv_argv(env, env.root / "f.csv"))[1])  # fmt: skip
add("csv-arg-dev-zero", lambda env: _csv_argv(env, "/dev/zero"))
add("csv-arg-too-big", lambda env: (_sparse(300 * 2**20)(env, env.root / "big.csv"), _csv_argv(env, env.root / "big.csv"))[1])  # fmt: skip
add("csv-arg-1mb-name", lambda env: _csv_argv(env, "c" * 1_000_000))
add("csv-arg-nul", lambda env: _csv_argv(env, "a\0b.csv"))
add("csv-arg-none", lambda env: ["data", "summary", "--dataset", "csv", "--root", str(env.root)])
add("root-missing", lambda env: ["data", "summary", "--dataset", "csv", "--root", str(env.base / "no"), "--csv", "x.csv"])  # fmt: skip
add("root-a-file", lambda env: ["data", "summary", "--dataset", "csv", "--root", str(env.secret), "--csv", "x.csv"])  # fmt: skip
add("root-1mb-name", lambda env: ["data", "summary", "--dataset", "csv", "--root", "r" * 1_000_000, "--csv", "x.csv"])  # fmt: skip
add("root-nul", lambda env: ["data", "summary", "--dataset", "csv", "--root", "a\0b", "--csv", "x.csv"])  # fmt: skip
for _ds in ("celeba", "fitzpatrick17k", "cifar10"):
    add(f"{_ds}-no-root", lambda env, d=_ds: ["data", "summary", "--dataset", d])
    add(f"{_ds}-empty-root", lambda env, d=_ds: ["data", "summary", "--dataset", d, "--root", str(env.root)])  # fmt: skip


# --- CelebA
def _celeba_case(mutate: Callable[[Env, Path], None], *options: str):
    def setup(env: Env) -> list[str]:
        _celeba(env.root)
        mutate(env, env.root)
        argv = ["data", "summary", "--dataset", "celeba", "--root", str(env.root)]
        for o in options:
            argv += ["--option", o]
        return argv

    return setup


def _edit_attrs(fn: Callable[[list[str]], list[str]]):
    def mutate(env: Env, root: Path) -> None:
        path = root / "list_attr_celeba.txt"
        path.write_text("\n".join(fn(path.read_text().splitlines())) + "\n")

    return mutate


def _edit_partition(fn: Callable[[list[str]], list[str]]):
    def mutate(env: Env, root: Path) -> None:
        path = root / "list_eval_partition.txt"
        path.write_text("\n".join(fn(path.read_text().splitlines())) + "\n")

    return mutate


def _replace(rel: str, make: Callable[[Env, Path], None]):
    def mutate(env: Env, root: Path) -> None:
        p = root / rel
        if p.exists() or p.is_symlink():
            p.unlink() if not p.is_dir() or p.is_symlink() else None
        make(env, p)

    return mutate


_NOOP = lambda env, root: None  # noqa: E731
add(
    "celeba-attrs-missing", _celeba_case(lambda env, root: (root / "list_attr_celeba.txt").unlink())
)
add("celeba-partition-missing", _celeba_case(lambda env, root: (root / "list_eval_partition.txt").unlink()))  # fmt: skip
add("celeba-images-missing", _celeba_case(lambda env, root: [p.unlink() for p in (root / "img_align_celeba").iterdir()]))  # fmt: skip
add("celeba-attrs-empty", _celeba_case(_edit_attrs(lambda lines: [])))
add("celeba-attrs-no-count", _celeba_case(_edit_attrs(lambda lines: lines[1:])))
add("celeba-attrs-count-text", _celeba_case(_edit_attrs(lambda lines: ["many", *lines[1:]])))
add("celeba-attrs-count-high", _celeba_case(_edit_attrs(lambda lines: ["99", *lines[1:]])))
add("celeba-attrs-value-2", _celeba_case(_edit_attrs(lambda lines: [*lines[:2], lines[2].replace("-1", " 2", 1), *lines[3:]])))  # fmt: skip
add("celeba-attrs-value-nan", _celeba_case(_edit_attrs(lambda lines: [*lines[:2], lines[2].replace("-1", "nan", 1), *lines[3:]])))  # fmt: skip
add("celeba-attrs-short-row", _celeba_case(_edit_attrs(lambda lines: [*lines[:2], lines[2].rsplit(None, 1)[0], *lines[3:]])))  # fmt: skip
add("celeba-attrs-repeated-image", _celeba_case(_edit_attrs(lambda lines: [str(int(lines[0]) + 1), *lines[1:], lines[2]])))  # fmt: skip
add("celeba-attrs-binary", _celeba_case(_replace("list_attr_celeba.txt", _bytes(bytes(range(256)) * 64))))  # fmt: skip
add("celeba-attrs-fifo", _celeba_case(_replace("list_attr_celeba.txt", _fifo)))
add("celeba-attrs-dev-zero", _celeba_case(_replace("list_attr_celeba.txt", _link(lambda env: "/dev/zero"))))  # fmt: skip
add("celeba-attrs-too-big", _celeba_case(_replace("list_attr_celeba.txt", _sparse(200 * 2**20))))
add("celeba-attrs-outside", _celeba_case(_replace("list_attr_celeba.txt", _link(lambda env: env.secret))))  # fmt: skip
add("celeba-partition-value-3", _celeba_case(_edit_partition(lambda lines: [lines[0].replace(" 0", " 3"), *lines[1:]])))  # fmt: skip
add("celeba-partition-short", _celeba_case(_edit_partition(lambda lines: lines[:-1])))
add("celeba-partition-extra", _celeba_case(_edit_partition(lambda lines: [*lines, "999999.jpg 0"])))
add("celeba-image-outside-symlink", _celeba_case(_replace("img_align_celeba/000003.jpg", _link(lambda env: env.secret))))  # fmt: skip
add("celeba-image-fifo", _celeba_case(_replace("img_align_celeba/000003.jpg", _fifo), "verify=all"))  # fmt: skip
add("celeba-image-dev-zero", _celeba_case(_replace("img_align_celeba/000003.jpg", _link(lambda env: "/dev/zero"))))  # fmt: skip
add("celeba-image-directory", _celeba_case(_replace("img_align_celeba/000003.jpg", lambda env, p: p.mkdir())))  # fmt: skip
add("celeba-image-bomb", _celeba_case(_replace("img_align_celeba/000003.jpg", lambda env, p: _bomb_png(p, 60000, 60000)), "verify=all"))  # fmt: skip
add("celeba-image-truncated", _celeba_case(_replace("img_align_celeba/000003.jpg", _truncated_jpeg), "verify=all"))  # fmt: skip
add("celeba-image-zero-bytes", _celeba_case(_replace("img_align_celeba/000003.jpg", _bytes(b"")), "verify=all"))  # fmt: skip
add("celeba-image-folder-outside", _celeba_case(lambda env, root: (
    os.rename(root / "img_align_celeba", env.outside / "faces"),
    (root / "img_align_celeba").symlink_to(env.outside / "faces"))))  # fmt: skip
for _opt in ("alpha=2", "beta=2", "alpha=0", "alpha=-1", "alpha=nan", "alpha=abc",
             "alpha=Infinity", "target=Nope", "group=Nope", "target=5", "verify=-1",
             "verify=some", "image_size=40000", "alpha=30"):  # fmt: skip
    _extra = ("beta=1",) if _opt.startswith("alpha") and _opt != "alpha=2" else ()
    add(f"celeba-option-{_opt}", _celeba_case(_NOOP, _opt, *_extra))
add("celeba-single-group", _celeba_case(_NOOP, "group=Eyeglasses"))


# --- Fitzpatrick17k
def _fitz_case(mutate: Callable[[Env, Path], None], *options: str):
    def setup(env: Env) -> list[str]:
        _fitz(env.root)
        mutate(env, env.root)
        argv = ["data", "summary", "--dataset", "fitzpatrick17k", "--root", str(env.root)]
        for o in options:
            argv += ["--option", o]
        return argv

    return setup


def _edit_fitz(fn: Callable[[pd.DataFrame], pd.DataFrame]):
    def mutate(env: Env, root: Path) -> None:
        path = root / "fitzpatrick17k.csv"
        fn(pd.read_csv(path, dtype=str, keep_default_na=False)).to_csv(path, index=False)

    return mutate


def _set(col: str, row: int, value: str):
    def fn(df: pd.DataFrame) -> pd.DataFrame:
        df.loc[row, col] = value
        return df

    return fn


add("fitz-csv-missing", _fitz_case(lambda env, root: (root / "fitzpatrick17k.csv").unlink()))
add("fitz-images-missing", _fitz_case(lambda env, root: [p.unlink() for p in (root / "images").iterdir()] and None))  # fmt: skip
add("fitz-csv-header-only", _fitz_case(_replace("fitzpatrick17k.csv", _bytes(b"md5hash,fitzpatrick_scale,three_partition_label\n"))))  # fmt: skip
add("fitz-csv-empty", _fitz_case(_replace("fitzpatrick17k.csv", _bytes(b""))))
add("fitz-csv-utf16", _fitz_case(_replace("fitzpatrick17k.csv", _bytes("md5hash,fitzpatrick_scale\n".encode("utf-16")))))  # fmt: skip
add("fitz-csv-fifo", _fitz_case(_replace("fitzpatrick17k.csv", _fifo)))
add("fitz-csv-outside", _fitz_case(_replace("fitzpatrick17k.csv", _link(lambda env: env.outside / "f.csv"))))  # fmt: skip
add("fitz-no-skin-column", _fitz_case(_edit_fitz(lambda df: df.drop(columns=["fitzpatrick_scale"]))))  # fmt: skip
add("fitz-no-label-column", _fitz_case(_edit_fitz(lambda df: df.drop(columns=["three_partition_label"]))))  # fmt: skip
add("fitz-skin-7", _fitz_case(_edit_fitz(_set("fitzpatrick_scale", 3, "7"))))
add("fitz-skin-text", _fitz_case(_edit_fitz(_set("fitzpatrick_scale", 3, "dark"))))
add("fitz-skin-float", _fitz_case(_edit_fitz(_set("fitzpatrick_scale", 3, "2.5"))))
add("fitz-skin-nan", _fitz_case(_edit_fitz(_set("fitzpatrick_scale", 3, "nan"))))
add("fitz-label-unknown", _fitz_case(_edit_fitz(_set("three_partition_label", 3, "cancer"))))
add("fitz-md5-empty", _fitz_case(_edit_fitz(_set("md5hash", 3, ""))))
add("fitz-all-unknown-skin", _fitz_case(_edit_fitz(lambda df: df.assign(fitzpatrick_scale="-1"))))
add("fitz-no-dark-skin", _fitz_case(_edit_fitz(lambda df: df.assign(fitzpatrick_scale=df["fitzpatrick_scale"].replace("6", "4")))))  # fmt: skip
add("fitz-image-outside-symlink", _fitz_case(_replace("images/h03.jpg", _link(lambda env: env.secret))))  # fmt: skip
add("fitz-image-fifo", _fitz_case(_replace("images/h03.jpg", _fifo)))
add("fitz-image-dev-zero", _fitz_case(_replace("images/h03.jpg", _link(lambda env: "/dev/zero"))))  # fmt: skip
add("fitz-image-bomb", _fitz_case(_replace("images/h03.jpg", lambda env, p: _bomb_png(p, 60000, 60000)), "verify=all"))  # fmt: skip
add("fitz-image-garbage", _fitz_case(_replace("images/h03.jpg", _bytes(b"garbage")), "verify=all"))  # fmt: skip
add("fitz-images-folder-outside", _fitz_case(lambda env, root: (
    os.rename(root / "images", env.outside / "imgs"),
    (root / "images").symlink_to(env.outside / "imgs"))))  # fmt: skip
add("fitz-split-file-bad", _fitz_case(_replace("fairprune_split_seed0.csv", _bytes(b"md5hash,split\nh00,holdout\n"))))  # fmt: skip
add("fitz-split-file-binary", _fitz_case(_replace("fairprune_split_seed0.csv", _bytes(bytes(range(256)) * 16))))  # fmt: skip
for _opt in ("light_train_fraction=0", "light_train_fraction=1.5", "val_fraction=1",
             "val_fraction=-1", "val_fraction=abc", "verify=-2", "image_size=0", "limit=0"):  # fmt: skip
    add(f"fitz-option-{_opt}", _fitz_case(_NOOP, _opt))


# --- CIFAR-10
def _cifar_case(mutate: Callable[[Env, Path], None], *options: str):
    def setup(env: Env) -> list[str]:
        _cifar(env.root)
        mutate(env, env.root / "cifar-10-batches-py")
        argv = ["data", "summary", "--dataset", "cifar10", "--root", str(env.root)]
        for o in options:
            argv += ["--option", o]
        return argv

    return setup


def _batch(name: str, obj_or_bytes, protocol: int = 2):
    def mutate(env: Env, folder: Path) -> None:
        data = obj_or_bytes(env) if callable(obj_or_bytes) else obj_or_bytes
        if not isinstance(data, bytes):
            data = pickle.dumps(data, protocol=protocol)
        (folder / name).write_bytes(data)

    return mutate


_GOOD_BATCH = {b"data": np.zeros((20, 3072), np.uint8), b"labels": [0] * 20,
               b"filenames": [b"f"] * 20}  # fmt: skip
for _name in ("data_batch_1", "data_batch_5", "test_batch", "batches.meta"):
    add(f"cifar-payload-{_name}", _cifar_case(_batch(_name, lambda env: {b"data": Payload(env.marker, "exec")})))  # fmt: skip
add("cifar-payload-system", _cifar_case(_batch("data_batch_2", lambda env: Payload(env.marker, "system"))))  # fmt: skip
add("cifar-payload-protocol-0", _cifar_case(_batch("data_batch_3", lambda env: [Payload(env.marker, "eval")], protocol=0)))  # fmt: skip
add("cifar-payload-protocol-5", _cifar_case(_batch("data_batch_4", lambda env: {b"x": Payload(env.marker, "popen")}, protocol=5)))  # fmt: skip
add("cifar-object-array", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"data": np.array([None] * 4, dtype=object)})))  # fmt: skip
add("cifar-garbage", _cifar_case(_batch("data_batch_1", bytes(range(256)) * 8)))
add("cifar-gzip", _cifar_case(_batch("data_batch_1", gzip.compress(b"x" * 100))))
add("cifar-empty-file", _cifar_case(_batch("data_batch_1", b"")))
add("cifar-a-list", _cifar_case(_batch("data_batch_1", [1, 2, 3])))
add("cifar-labels-out-of-range", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"labels": [10] * 20})))  # fmt: skip
add("cifar-labels-negative", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"labels": [-1] * 20})))  # fmt: skip
add("cifar-labels-huge", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"labels": [2**70] * 20})))  # fmt: skip
add("cifar-labels-text", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"labels": [b"cat"] * 20})))  # fmt: skip
add("cifar-labels-a-number", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"labels": 5})))
add("cifar-data-float", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"data": np.zeros((20, 3072), np.float32)})))  # fmt: skip
add("cifar-data-wrong-width", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"data": np.zeros((20, 100), np.uint8)})))  # fmt: skip
add("cifar-data-a-list", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"data": [[0] * 3072] * 20})))  # fmt: skip
add("cifar-count-mismatch", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"labels": [0] * 19})))  # fmt: skip
add("cifar-filenames-numbers", _cifar_case(_batch("data_batch_1", {**_GOOD_BATCH, b"filenames": list(range(20))})))  # fmt: skip
add("cifar-missing-key", _cifar_case(_batch("data_batch_1", {b"data": _GOOD_BATCH[b"data"]})))
add("cifar-meta-no-names", _cifar_case(_batch("batches.meta", {b"num_vis": 3072})))
add("cifar-meta-names-number", _cifar_case(_batch("batches.meta", {b"label_names": 10})))
add("cifar-meta-one-class", _cifar_case(_batch("batches.meta", {b"label_names": [b"cat"]})))
add("cifar-file-missing", _cifar_case(lambda env, folder: (folder / "test_batch").unlink()))
add("cifar-file-fifo", _cifar_case(_replace("data_batch_1", _fifo)))
add("cifar-file-dev-zero", _cifar_case(lambda env, folder: ((folder / "data_batch_1").unlink(), (folder / "data_batch_1").symlink_to("/dev/zero"))))  # fmt: skip
add("cifar-file-directory", _cifar_case(lambda env, folder: ((folder / "data_batch_1").unlink(), (folder / "data_batch_1").mkdir())))  # fmt: skip
add("cifar-file-too-big", _cifar_case(lambda env, folder: ((folder / "data_batch_1").unlink(), _sparse(100 * 2**20)(env, folder / "data_batch_1"))))  # fmt: skip
add("cifar-file-outside", _cifar_case(lambda env, folder: (os.rename(folder / "data_batch_1", env.outside / "b1"), (folder / "data_batch_1").symlink_to(env.outside / "b1"))))  # fmt: skip
for _opt in ("variant=noisy", "variant=5", "drop_fraction=2", "drop_fraction=-0.5",
             "square_fraction=1.5", "image_size=40000", "image_size=abc", "limit=-1"):  # fmt: skip
    add(f"cifar-option-{_opt}", _cifar_case(_NOOP, _opt))


# --- SynthDerm options (no files: every value comes from --option)
def _synth(*options: str):
    def setup(env: Env) -> list[str]:
        argv = ["data", "summary", "--dataset", "synthderm"]
        for o in options:
            argv += ["--option", o]
        return argv

    return setup


for _opt in ("image_size=abc", "image_size=0", "image_size=7", "image_size=40000",
             "image_size=3.5", "image_size=true", "n_train=-1", "n_train=abc", "n_train=0",
             "n_train=10000000", "n_val=-1", "n_test=0", "difficulty=2", "difficulty=nan",
             "difficulty=-1", "label_noise=0.9", "train_proportions=[1,2]",
             "train_proportions=[0,0,0]", "train_proportions=abc", "train_proportions=[-1,1,1]",
             "train_proportions=[NaN,1,1]", "lesion_darkening=[2,0,0]", "lesion_darkening=5",
             "limit=0", "limit=-5", "limit=abc", "test_limit=0", "variant=x", "csv=/etc/passwd",
             "n_train=1000000"):  # fmt: skip
    add(f"synth-option-{_opt}", _synth(_opt))
add("synth-too-many-pixels", _synth("n_train=100000", "image_size=64"))


# --- arguments argparse refuses (exit 2)
def _args(*argv: str):
    return lambda env: list(argv)


_DENSE = "models/none.safetensors"
for _flag, _values in {
    "--epochs": ["-1", "abc", "nan", "1.5", "0"],
    "--batch-size": ["0", "-4", "abc", "1e9"],
    "--lr": ["nan", "inf", "-1", "0", "abc"],
    "--seed": ["-1", "abc", str(2**33)],
    "--device": ["gpu", "cuda:abc", "tpu", ""],
    "--arch": ["evil"],
}.items():
    for _v in _values:
        add(f"train{_flag}={_v or 'empty'}", _args("train", _flag, _v), rc=2)
for _flag, _values in {
    "--target": ["0", "1", "2", "-0.5", "nan", "abc"],
    "--w-min": ["1.5", "-0.1", "nan"],
    "--gamma": ["-1", "inf", "abc"],
    "--criterion": ["bogus"],
}.items():
    for _v in _values:
        extra = [] if _flag == "--target" else ["--target", "0.5"]
        add(f"prune{_flag}={_v}", _args("prune", "--model", _DENSE, *extra, _flag, _v), rc=2)
for _flag, _values in {
    "--levels": ["0", "1", "1.5", "-0.5", "nan", "abc"],
    "--seeds": ["-1", "abc", str(2**33)],
    "--n-boot": ["-5", "abc"],
    "--criteria": ["bogus"],
    "--losses": ["bogus"],
    "--preset": ["bogus"],
    "--epochs": ["-2"],
}.items():
    for _v in _values:
        add(f"sweep{_flag}={_v}", _args("sweep", "--dense", _DENSE, _flag, _v), rc=2)
add("audit--n-boot=-5", _args("audit", _DENSE, "--n-boot", "-5"), rc=2)
add("audit--arch=evil", _args("audit", _DENSE, "--arch", "evil"), rc=2)
add("finetune--loss=bogus", _args("finetune", "--model", _DENSE, "--loss", "bogus"), rc=2)
add("data--dataset=bogus", _args("data", "summary", "--dataset", "bogus"), rc=2)
add("reproduce-bogus", _args("reproduce", "bogus", "--data-root", "x"), rc=2)
add("unknown-command", _args("explode"), rc=2)
add("unknown-flag", _args("models", "--explode"), rc=2)
add("export-no-out", _args("export"), rc=2)
add("prune-no-model", _args("prune", "--target", "0.5"), rc=2)
add("sweep-no-dense", _args("sweep"), rc=2)


# --- commands: bad input found while running (exit 1)
def _store_file(env: Env) -> Path:
    from fairprune.sweep.results import ResultsStore

    path = env.root / "r.sqlite"
    ResultsStore(path)
    return path


add("device-cuda-99", _args("train", "--device", "cuda:99", "--epochs", "1"))
add("device-mps", _args("train", "--device", "mps", "--epochs", "1"))
add("export-results-missing", lambda env: ["export", "--out", str(env.root / "o.csv"), "--results", str(env.root / "missing.sqlite")])  # fmt: skip
add("export-results-directory", lambda env: ["export", "--out", str(env.root / "o.csv"), "--results", str(env.root)])  # fmt: skip
add("export-results-garbage", lambda env: (_bytes(b"not sqlite" * 100)(env, env.root / "g.sqlite"), ["export", "--out", str(env.root / "o.csv"), "--results", str(env.root / "g.sqlite")])[1])  # fmt: skip
add("export-results-fifo", lambda env: (_fifo(env, env.root / "f.sqlite"), ["export", "--out", str(env.root / "o.csv"), "--results", str(env.root / "f.sqlite")])[1])  # fmt: skip
add("export-out-no-folder", lambda env: ["export", "--out", str(env.root / "no" / "o.csv"), "--results", str(_store_file(env))])  # fmt: skip
add("export-out-a-directory", lambda env: ["export", "--out", str(env.root), "--results", str(_store_file(env))])  # fmt: skip
add("export-out-under-a-file", lambda env: ["export", "--out", str(env.secret / "o.csv"), "--results", str(_store_file(env))])  # fmt: skip
add("export-out-fifo", lambda env: (_fifo(env, env.root / "o.csv"), ["export", "--out", str(env.root / "o.csv"), "--results", str(_store_file(env))])[1])  # fmt: skip
add("export-out-dev-full", lambda env: ["export", "--out", "/dev/full", "--results", str(_store_file(env))])  # fmt: skip
add("export-out-nul", lambda env: ["export", "--out", "a\0b.csv", "--results", str(_store_file(env))])  # fmt: skip
add("models-dir-a-file", lambda env: ["models", "--models-dir", str(env.secret)])
add("models-dir-under-a-file", lambda env: ["models", "--models-dir", str(env.secret / "m")])
add("models-dir-nul", lambda env: ["models", "--models-dir", "a\0b"])
_SMALL = ["--option", "limit=50", "--option", "test_limit=30", "--option", "n_val=0"]
add("audit-model-missing", lambda env: ["audit", str(env.root / "m.safetensors"), *_SMALL])
add("audit-model-unknown-type", lambda env: (_bytes(b"x")(env, env.root / "m.onnx"), ["audit", str(env.root / "m.onnx"), *_SMALL])[1])  # fmt: skip
add("audit-pt-without-arch", lambda env: (_bytes(b"x")(env, env.root / "m.pt"), ["audit", str(env.root / "m.pt"), *_SMALL])[1])  # fmt: skip
add("audit-split-bogus", lambda env: ["audit", str(env.root / "m.safetensors"), "--split", "nope", "--option", "limit=50", "--option", "test_limit=30", "--option", "n_val=0"])  # fmt: skip
add("prune-model-missing", lambda env: ["prune", "--model", str(env.root / "m.safetensors"), "--target", "0.5", "--models-dir", str(env.root / "s")])  # fmt: skip
add("finetune-model-missing", lambda env: ["finetune", "--model", str(env.root / "m.safetensors"), "--models-dir", str(env.root / "s"), "--option", "limit=50"])  # fmt: skip
add("sweep-dense-missing", lambda env: ["sweep", "--dense", str(env.root / "m.safetensors"), "--models-dir", str(env.root / "s"), "--results", str(env.root / "r.sqlite"), "--option", "limit=50", "--option", "test_limit=30", "--option", "n_val=0"])  # fmt: skip
add("train-name-traversal", lambda env: ["train", "--name", "../../escape", "--epochs", "1", "--models-dir", str(env.root / "s"), "--option", "limit=40", "--option", "n_val=0", "--option", "test_limit=30"])  # fmt: skip
add("train-name-slash", lambda env: ["train", "--name", "a/b", "--epochs", "1", "--models-dir", str(env.root / "s"), "--option", "limit=40", "--option", "n_val=0", "--option", "test_limit=30"])  # fmt: skip
add("reproduce-root-missing", lambda env: ["reproduce", "celeba", "--data-root", str(env.base / "no"), "--models-dir", str(env.root / "s"), "--results", str(env.root / "r.sqlite")])  # fmt: skip


# ---------------------------------------------------------------------------------- helpers


def _run(argv, capsys) -> tuple[int, str, str]:
    try:
        rc = main(argv)
    except SystemExit as exc:
        rc = exc.code
    out = capsys.readouterr()
    return rc, out.out, out.err


def _check(rc: int, expected: int, err: str) -> None:
    assert rc == expected, err[-3000:]
    assert "Traceback" not in err
    lines = err.splitlines()
    assert max(map(len, lines), default=0) <= 1000, "an error line a person can read"
    if expected == 1:
        assert len(lines) == 1, err[-3000:]
        assert lines[0].startswith("error: "), lines[0]
        assert not lines[0].startswith(("error: unexpected ", "error: out of memory")), lines[0]
    else:  # argparse: the usage line(s), then one "prog: error: ..." line
        assert lines[0].startswith("usage: python -m fairprune"), err
        assert sum("error:" in line for line in lines) == 1, err
        assert ": error: " in lines[-1], err


# ------------------------------------------------------------------------------------ tests


def test_the_suite_has_the_promised_size():
    assert len(CASES) >= 200
    assert len(CASES) == 343  # the README's reliability section states this count


@pytest.mark.timeout(60)  # a FIFO opened by mistake would block here forever
@pytest.mark.parametrize("name", sorted(CASES))
def test_one_line_exit_status_and_nothing_escapes(name, tmp_path, capsys):
    setup, expected = CASES[name]
    env = Env(tmp_path)
    argv = setup(env)
    before = env.snapshot()
    rc, out, err = _run(argv, capsys)
    _check(rc, expected, err)
    assert not env.marker.exists()
    assert env.snapshot() == before  # nothing created or changed outside the chosen folders
    assert not (env.root / "missing.sqlite").exists()


def test_the_good_fixtures_load(tmp_path, capsys):
    # the harness can tell success from failure: each loader's untouched fixture loads
    env = Env(tmp_path)
    _csv_ds(env)
    assert _run(_csv_argv(env, None, "image_size=8"), capsys)[0] == 0
    for name, make in (("celeba", _celeba), ("fitzpatrick17k", _fitz), ("cifar10", _cifar)):
        root = tmp_path / name
        make(root)
        rc, _, err = _run(["data", "summary", "--dataset", name, "--root", str(root)], capsys)
        assert rc == 0, err


def test_a_planted_split_symlink_is_never_written_through(tmp_path, capsys, monkeypatch):
    # a dangling symlink named like the split file, pointing out of the data folder
    env = Env(tmp_path)
    _fitz(env.root)
    target = env.outside / "created_by_fairprune.csv"
    (env.root / "fairprune_split_seed0.csv").symlink_to(target)
    rc, out, err = _run(["data", "summary", "--dataset", "fitzpatrick17k", "--root",
                         str(env.root), "--json"], capsys)  # fmt: skip
    assert rc == 0, err
    assert not target.exists()
    assert (env.root / "fairprune_split_seed0.csv").is_symlink()  # left as it was
    assert sum(r["n"] for r in json.loads(out)) == 25  # the split went to the cache folder
    # a FIFO under that name is skipped too (opening it would block forever)
    (env.root / "fairprune_split_seed0.csv").unlink()
    os.mkfifo(env.root / "fairprune_split_seed0.csv")
    rc, _, err = _run(["data", "summary", "--dataset", "fitzpatrick17k", "--root",
                       str(env.root), "--option", "verify=3"], capsys)  # fmt: skip
    assert rc == 0, err


LIMITED = ["img-bomb-60000", "img-bomb-9000", "csv-path-1mb", "synth-option-image_size=40000",
           "synth-too-many-pixels", "csv-arg-too-big"]  # fmt: skip


def test_bombs_and_huge_sizes_under_a_memory_limit(tmp_path):
    (tmp_path / "warm").mkdir()
    argvs = []
    for name in LIMITED:
        base = tmp_path / name
        base.mkdir()
        argvs.append(CASES[name][0](Env(base)))
    env = Env(tmp_path / "warm")
    _csv_ds(env)
    warmup = [_csv_argv(env, None, "image_size=8")]  # imports and a small dataset read first
    results, growth = run_limited(argvs, warmup)
    for name, (rc, err) in zip(LIMITED, results, strict=True):
        assert rc == 1, (name, err)
        _check(rc, 1, err)
    # decoding the 60 000² bomb would take 10 GB: refusing allocated next to nothing
    assert growth < GROWTH_LIMIT, f"peak resident memory grew {growth / 2**20:.0f} MiB"


# ------------------------------------------------------------------------------ dashboard


def _page(page: str, **state):
    from streamlit.testing.v1 import AppTest

    from tests.conftest import ROOT

    at = AppTest.from_file(str(ROOT / page), default_timeout=180)
    for k, v in state.items():
        at.session_state[k] = v
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _choose_csv(at, root: Path, csv: Path):
    at.selectbox(key="dataset_name").set_value("csv").run()
    at.text_input(key="dataset_root").input(str(root)).run()
    at.text_input(key="dataset_csv").input(str(csv)).run()
    at.button(key="dataset_apply").click().run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def test_dataset_page_reads_only_under_the_allowed_roots(tmp_path, monkeypatch):
    from fairprune.app import ui

    env = Env(tmp_path)
    csv = _csv_ds(env)
    allowed = tmp_path / "allowed"
    allowed.mkdir()
    monkeypatch.setenv("FAIRPRUNE_ALLOWED_ROOTS", str(allowed))
    at = _choose_csv(_page("pages/2_Dataset.py"), env.root, csv)
    assert [e.value for e in at.error] == [
        ui.ERR_NOT_ALLOWED.format(path=env.root, roots=str(allowed.resolve()))
    ]
    assert "fp_dataset_choice" not in at.session_state  # the demo is still the dataset
    # a symlink inside the allowed folder leading to the same data is outside too
    (allowed / "ds").symlink_to(env.root)
    at = _choose_csv(at, allowed / "ds", allowed / "ds" / "data.csv")
    assert at.error[0].value == ui.ERR_NOT_ALLOWED.format(
        path=allowed / "ds", roots=str(allowed.resolve())
    )


def test_dataset_page_shows_a_hostile_csv_in_one_line(tmp_path, monkeypatch):
    from fairprune.data.files import ERR_OUTSIDE_ROOT

    env = Env(tmp_path)
    csv = _csv_ds(env, [GOOD_ROWS[0], ("../outside/secret.png", "b", "y"), *GOOD_ROWS[1:]])
    monkeypatch.setenv("FAIRPRUNE_ALLOWED_ROOTS", str(env.root))
    at = _choose_csv(_page("pages/2_Dataset.py"), env.root, csv)
    assert [e.value for e in at.error] == [
        ERR_OUTSIDE_ROOT.format(
            source="data.csv", count=1, rows="3", root=env.root, first="../outside/secret.png"
        )  # fmt: skip
    ]
    assert len(at.get("image")) == 0  # the secret image is never shown


def test_page_error_boundary_logs_the_traceback_not_the_screen(tmp_path, monkeypatch, caplog):
    import fairprune.data
    from fairprune.app import ui

    def explode(*args, **kwargs):
        raise RuntimeError("internal detail /srv/secret/path")

    env = Env(tmp_path)
    csv = _csv_ds(env)
    monkeypatch.setenv("FAIRPRUNE_ALLOWED_ROOTS", str(env.root))
    monkeypatch.setattr(fairprune.data, "load_dataset", explode)
    with caplog.at_level("ERROR", logger="fairprune.app.ui"):
        at = _choose_csv(_page("pages/2_Dataset.py"), env.root, csv)
    assert [e.value for e in at.error] == [ui.ERR_PAGE_FAILED.format(kind="RuntimeError")]
    shown = "\n".join(str(e.value) for e in [*at.error, *at.markdown, *at.caption])
    assert "/srv/secret/path" not in shown
    (record,) = [r for r in caplog.records if r.name == "fairprune.app.ui"]
    assert record.exc_info and "internal detail /srv/secret/path" in str(record.exc_info[1])


def test_models_page_adds_only_files_inside_the_store(tmp_path, monkeypatch):
    from fairprune.app import ui
    from fairprune.nets.manifest import ERR_NOT_A_FILE, ERR_OUTSIDE_STORE

    env = Env(tmp_path)
    store = Path(os.environ["FAIRPRUNE_MODELS_DIR"])
    store.mkdir(parents=True)
    (env.outside / "m.pt").write_bytes(pickle.dumps(Payload(env.marker, "exec")))
    (store / "link.pt").symlink_to(env.outside / "m.pt")
    os.mkfifo(store / "pipe.pt")
    at = _page("pages/1_Models.py")
    expected = {
        "../outside/m.pt": ERR_OUTSIDE_STORE.format(path="../outside/m.pt", store=store),
        "link.pt": ERR_OUTSIDE_STORE.format(path="link.pt", store=store),
        str(env.outside / "m.pt"): ERR_OUTSIDE_STORE.format(path=env.outside / "m.pt", store=store),
        "pipe.pt": ERR_NOT_A_FILE.format(path=store / "pipe.pt"),
    }
    for typed, message in expected.items():
        at.text_input(key="models_path").input(typed).run()
        at.button(key="models_add_path").click().run()
        assert not at.exception
        assert [e.value for e in at.error] == [message]
    assert not env.marker.exists()
    assert sorted(p.name for p in store.iterdir()) == ["link.pt", "pipe.pt"]
    # the sidebar's store picker: another folder only under an allowed root
    monkeypatch.setenv("FAIRPRUNE_ALLOWED_ROOTS", str(store))
    at.text_input(key="ui_models_dir").input(str(env.outside)).run()
    assert at.sidebar.error[0].value == ui.ERR_NOT_ALLOWED.format(
        path=env.outside, roots=str(store.resolve())
    )
