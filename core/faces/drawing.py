"""Draw each face's label onto a picture: the outline of its crop square and a filled strip of text."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

Outline = Sequence[float] | Sequence[tuple[float, float]]


def draw_labels(picture: Image.Image, labels: Sequence[tuple[Outline, str, bool]]) -> None:
    """Draw (outline, label, models agree) onto a picture in place: green where the models agree, yellow
    where they don't, each label on a filled strip above its outline (below at the top edge).

    An outline is a box (x1, y1, x2, y2) or the corners of a polygon, such as a face's turned crop square.
    """
    draw = ImageDraw.Draw(picture)
    line = max(2, round(max(picture.size) / 300))
    font = ImageFont.load_default(size=max(12, round(max(picture.size) / 40)))
    for outline, label, agree in labels:
        colour = (46, 204, 113) if agree else (241, 196, 15)
        if isinstance(outline[0], tuple | list):
            corners = [(float(x), float(y)) for x, y in outline]  # type: ignore[misc]
            draw.polygon(corners, outline=colour, width=line)
            xs, ys = zip(*corners, strict=True)
            x1, y1, x2, y2 = min(xs), min(ys), max(xs), max(ys)
        else:
            x1, y1, x2, y2 = (float(v) for v in outline)  # type: ignore[arg-type]
            draw.rectangle((x1, y1, x2, y2), outline=colour, width=line)
        left, top, right, bottom = draw.textbbox((x1, y1), label, font=font)
        y = y1 - (bottom - top) - 2 * line if y1 - (bottom - top) - 2 * line > 0 else y2 + line
        draw.rectangle((x1, y, x1 + right - left + 2 * line, y + bottom - top + 2 * line), fill=colour)
        draw.text((x1 + line, y + line - (top - y1)), label, fill=(0, 0, 0), font=font)
