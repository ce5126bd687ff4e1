"""The saliency comparison through AppTest: one face's two maps on the Analyze page, the Saliency page.

Models come from tiny_registry (random tiny_a and tiny_b); real MTCNN and real grad-cam.
"""

from __future__ import annotations

from tests.helpers import (  # noqa: F401 (autouse fixtures)
    fresh_app,
    navigation_from_app_py,
    no_errors,
    open_page,
)


def chart_titles(app) -> list[str]:
    import json

    titles = []
    for chart in app.get("plotly_chart"):
        spec = json.loads(chart.proto.spec)
        titles += [a.get("text", "") for a in spec["layout"].get("annotations", [])]
    return titles


def test_analyze_compares_where_the_two_models_look(tiny_registry: list[str]) -> None:
    app = open_page("pages/analyze.py")
    no_errors(app)
    assert any("Where the two models look" in md.value for md in app.markdown)
    titles = chart_titles(app)
    assert "A · tiny_a" in titles and "B · tiny_b" in titles and "B − A" in titles
    captions = [c for image in app.get("image") for c in image.captions]
    assert "Model A · tiny_a on the whole photo" in captions
    assert "Model B · tiny_b on the whole photo" in captions
