"""`make run`: start the Streamlit server while the app warms up in the background.

Importing torch, torchvision and facenet-pytorch, and loading the face detector and the
two default models, takes most of a cold start on a small CPU. Started here, at launch,
that work overlaps with the server's own start-up instead of waiting for the first
visitor's page run; the Analyze page's first picture (the built-in sample) is then read and
explained, so the first visitor gets it from the cache. Arguments pass on to `streamlit run`.
"""

from __future__ import annotations

import logging
import sys
import threading
from pathlib import Path

APP = Path(__file__).resolve().parent.parent / "app.py"
WARM_UP_THREAD = "warm-up"
# Streamlit warns "missing ScriptRunContext" for each cached call made outside a page run.
_CONTEXT_LOGGER = "streamlit.runtime.scriptrunner_utils.script_run_context"


class _SkipWarmUpThread(logging.Filter):
    """Drops the warm-up thread's records: its calls are outside a page run on purpose."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != WARM_UP_THREAD


def warm_up() -> None:
    """Import what the first Analyze predictions need and load the detector and default models; then
    read the built-in sample (what the Analyze page shows first) and explain it with the page's
    default Grad-CAM, so the first visitor's page finds both in the result cache.

    The detector and models land in Streamlit's resource cache, shared by every session, where the
    first page run finds them; the sample's result and heatmaps in the shared result cache
    (resources.results). A failure here is only logged: the page then meets it and explains it.
    """
    context_logger = logging.getLogger(_CONTEXT_LOGGER)
    if not any(isinstance(f, _SkipWarmUpThread) for f in context_logger.filters):
        context_logger.addFilter(_SkipWarmUpThread())
    try:
        import ui.charts  # noqa: F401
        from core.explain.saliency import CAM_METHODS
        from core.models.registry import list_models
        from ui import resources
        from ui.display import default_pair, model_keys, sample_png

        resources.detector()
        cards = list_models()
        keys = model_keys(cards, list(default_pair([card["name"] for card in cards])))
        resources.models(keys)
        # The page's defaults: no mirror averaging, the first method, each model's own prediction.
        method = next(iter(CAM_METHODS))
        sample = sample_png()
        resources.analysis(sample, keys, False)
        if keys:
            resources.heatmaps(sample, keys, False, method, None)
    except Exception as error:  # noqa: BLE001 - the app must start whatever happens here
        print(f"warm-up stopped early: {error!r}", file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    from core.serving.memory import limit_heap_arenas

    limit_heap_arenas()  # before any thread: see app.py, which does it too for `streamlit run`
    threading.Thread(target=warm_up, name=WARM_UP_THREAD, daemon=True).start()
    from streamlit.web import cli

    sys.argv = ["streamlit", "run", str(APP), *(argv if argv is not None else sys.argv[1:])]
    return int(cli.main() or 0)


if __name__ == "__main__":
    sys.exit(main())
