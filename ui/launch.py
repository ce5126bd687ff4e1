"""`make run`: start the Streamlit server while the heavy libraries import in the background.

Importing torch, torchvision, facenet-pytorch and grad-cam takes most of a cold start on a
small CPU. Started here, at launch, that work overlaps with the server's own start-up
instead of waiting for the first visitor's page run. Arguments pass on to `streamlit run`.
"""

from __future__ import annotations

import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app.py"


def warm_imports() -> None:
    """Import what the first Analyze run needs; the page then finds it in sys.modules."""
    import core.charts  # noqa: F401
    import core.pipeline  # noqa: F401
    import core.regions  # noqa: F401


def main(argv: list[str] | None = None) -> int:
    threading.Thread(target=warm_imports, name="warm-imports", daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(argv if argv is not None else sys.argv[1:])]
    return int(cli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
