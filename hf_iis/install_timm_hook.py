"""Install (or remove) the start-up hook that lets any Python process of this environment `import timm` without a
loadable torchvision (see `_timm_hook.py`); `make install` runs it.

    python -m hf_iis.install_timm_hook            # writes <site-packages>/hf_iis_timm_hook.pth
    python -m hf_iis.install_timm_hook --remove
"""

from __future__ import annotations

import argparse
import sysconfig
from pathlib import Path

PTH_NAME = "hf_iis_timm_hook.pth"


def pth_path() -> Path:
    return Path(sysconfig.get_paths()["purelib"]) / PTH_NAME


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--remove", action="store_true")
    args = parser.parse_args()
    target = pth_path()
    if args.remove:
        target.unlink(missing_ok=True)
        print(f"removed {target}")
        return
    hook = Path(__file__).resolve().parent / "_timm_hook.py"
    # a .pth line that starts with "import" is executed at start-up; runpy keeps the hook's names out of site
    target.write_text(f"import runpy; runpy.run_path({str(hook)!r})\n")
    print(f"wrote {target}")


if __name__ == "__main__":
    main()
