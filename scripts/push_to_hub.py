"""Publish a checkpoint as a trust_remote_code hub repo, with its model card.

    python scripts/push_to_hub.py --repo-id you/signed-click-iis --dry-run     # list what would be uploaded
    python scripts/push_to_hub.py --repo-id you/signed-click-iis                # upload (needs a token + network)

Builds the hub folder with `hf_iis.hub_export.export_hub_folder` (weights, configs with auto_map and
custom_pipelines, the code files) plus the card (default: the checkpoint's README.md), then uploads it with one
`HfApi.upload_folder` call (`model.push_to_hub` would overwrite the card with a stub).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from hf_iis.checkpoint_paths import resolve_checkpoint
from hf_iis.cli_checks import USAGE_ERRORS, ArgumentParser, check_output_dir, report
from hf_iis.hub_export import export_hub_folder

PROG = "push_to_hub.py"


def check_inputs(model: str | None, card: Path | None) -> tuple[Path, Path]:
    """(checkpoint folder, card file), both existing; raised as one-line errors before anything is built."""
    folder = Path(resolve_checkpoint(model))
    card_path = card if card is not None else folder / "README.md"
    if not card_path.is_file():
        raise FileNotFoundError(
            f"no model card at {card_path}; make one with scripts/make_model_card.py or pass --card"
        )
    return folder, card_path


def build_folder(model: str | None, card: Path | None, out: Path) -> Path:
    folder, card_path = check_inputs(model, card)
    return export_hub_folder(folder, out, model_card=card_path.read_text())


def list_files(folder: Path) -> list[tuple[str, int]]:
    return sorted((str(p.relative_to(folder)), p.stat().st_size) for p in folder.rglob("*") if p.is_file())


def _http_client_errors() -> tuple[type[BaseException], ...]:
    """The base error classes of whichever HTTP clients huggingface_hub may use here (httpx, httpx2, requests)."""
    import importlib

    found = []
    for module, name in (("httpx", "HTTPError"), ("httpx2", "HTTPError"), ("requests", "RequestException")):
        try:
            found.append(getattr(importlib.import_module(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(found)


def main(argv: list[str] | None = None) -> int:
    parser = ArgumentParser(prog=PROG, description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repo-id", required=True)
    parser.add_argument("--model", default=None, help="checkpoint folder (default: the embedded default model)")
    parser.add_argument("--card", type=Path, default=None, help="model card markdown (default: <model>/README.md)")
    parser.add_argument("--private", action="store_true")
    parser.add_argument("--dry-run", action="store_true", help="build the folder and list it; upload nothing")
    parser.add_argument("--keep", type=Path, default=None, help="also keep the built folder here")
    try:  # every argument is checked before the folder is built or the network is touched
        args = parser.parse_args(argv)
        from huggingface_hub.utils import validate_repo_id

        validate_repo_id(args.repo_id)  # HFValidationError, a ValueError, names the accepted form
        check_inputs(args.model, args.card)
        if args.keep is not None:
            check_output_dir(args.keep, "--keep")
    except USAGE_ERRORS as error:
        return report(PROG, error)

    with tempfile.TemporaryDirectory() as tmp:
        folder = build_folder(args.model, args.card, Path(args.keep) if args.keep else Path(tmp) / "hub")
        files = list_files(folder)
        print(f"{'would upload' if args.dry_run else 'uploading'} {len(files)} files to {args.repo_id}:")
        for name, size in files:
            print(f"  {name}  ({size:,} bytes)")
        if args.dry_run:
            return 0
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError

        api = HfApi()
        try:
            api.create_repo(args.repo_id, repo_type="model", private=args.private, exist_ok=True)
            commit = api.upload_folder(repo_id=args.repo_id, folder_path=str(folder), repo_type="model",
                                       commit_message="Upload hf_iis signed-click segmenter")
        except (HfHubHTTPError, OSError, *_http_client_errors()) as error:  # no network, bad token, no access:
            # the folder is built and listed above, so say why the upload did not happen and stop
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            print(f"push_to_hub.py: error: could not upload to {args.repo_id}: {reason}\n"
                  "  check the network and `huggingface-cli login` (or HF_TOKEN); --dry-run works offline",
                  file=sys.stderr)
            return 1
        print(f"uploaded: {getattr(commit, 'commit_url', commit)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
