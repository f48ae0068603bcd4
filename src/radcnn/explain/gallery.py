"""The HTML gallery: one row per image, the input and every method's overlay side by side.

The page is self-contained — every picture is inlined as a base64 PNG and the style sheet is inline — so it opens
offline, can be mailed or archived with a study, and never fetches anything. Rendered with Jinja2 (autoescaped:
file names and label names cannot inject markup).
"""

from __future__ import annotations

import base64
import datetime as _dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from radcnn.io import write_text_atomic

_TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{{ title }}</title>
<style>
 body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
 h1 { font-size: 1.3em; }
 p.meta { color: #555; font-size: 0.9em; }
 table { border-collapse: collapse; width: 100%; }
 th, td { padding: 4px; text-align: center; vertical-align: top; }
 th { font-size: 0.85em; background: #f0f0f0; position: sticky; top: 0; }
 td.info { text-align: left; font-size: 0.8em; min-width: 8em; max-width: 14em; overflow-wrap: anywhere; }
 img { width: 100%; max-width: {{ image_width }}px; min-width: 120px; height: auto; display: block; margin: auto; }
 .warn { color: #a40; }
 .scores { font-size: 0.75em; color: #333; }
 .positive { color: #b42318; } .negative { color: #0b5cad; }
</style>
</head>
<body>
<h1>{{ title }}</h1>
<p class="meta">{{ subtitle }}</p>
<table>
<thead><tr><th>image</th><th>input</th>{% for m in methods %}<th>{{ m }}</th>{% endfor %}</tr></thead>
<tbody>
{% for row in rows %}
<tr>
 <td class="info"><b>{{ row.name }}</b><br>target: {{ row.target }}<br>p = {{ "%.3f"|format(row.probability) }}
 {% if row.threshold is not none %}<br>threshold {{ "%.4g"|format(row.threshold) }}<br><b class="{{ row.decision }}">decision: {{ row.decision }}</b>
 {% else %}<br><span class="scores">no decision threshold given</span>{% endif %}
 {% for w in row.warnings %}<br><span class="warn">⚠ {{ w }}</span>{% endfor %}</td>
 <td><img alt="input {{ row.name }}" src="data:image/png;base64,{{ row.input_png }}">
   {% if "input" in row.notes %}<div class="scores">{{ row.notes["input"] }}</div>{% endif %}</td>
 {% for m in methods %}<td>{% if m in row.overlays %}<img alt="{{ m }} {{ row.name }}"
   src="data:image/png;base64,{{ row.overlays[m] }}">{% else %}—{% endif %}
   {% if m in row.notes %}<div class="scores">{{ row.notes[m] }}</div>{% endif %}</td>{% endfor %}
</tr>
{% endfor %}
</tbody>
</table>
<p class="meta">Colour: red/yellow = evidence for the target, blue = evidence against (signed methods).
Each method's maps share one colour scale across all images (printed under each map with its peak |map|), so a weak
map looks weak; scales differ between methods, so compare where, not how much, across methods.
The decision is positive when p ≥ threshold.</p>
</body>
</html>
"""


@dataclass
class GalleryRow:
    """One image of the gallery: PNG bytes of the input and of each method's overlay, plus captions."""

    name: str
    target: str
    probability: float
    input_png: bytes
    overlays: dict[str, bytes]
    warnings: Sequence[str] = ()
    notes: Mapping[str, str] = field(default_factory=dict)  # per method (or "input"): a caption under the picture
    threshold: float | None = None  # the model's decision threshold for the target (None: not known)

    @property
    def decision(self) -> str | None:
        return None if self.threshold is None else ("positive" if self.probability >= self.threshold else "negative")


def render_gallery(
    rows: Sequence[GalleryRow],
    methods: Sequence[str],
    *,
    title: str = "radcnn explanations",
    subtitle: str = "",
    image_width: int = 220,
) -> str:
    """The gallery as one HTML string with every image inlined."""
    from jinja2 import Environment

    env = Environment(autoescape=True, trim_blocks=True, lstrip_blocks=True)
    template = env.from_string(_TEMPLATE)
    encoded = [
        {
            "name": row.name,
            "target": row.target,
            "probability": float(row.probability),
            "warnings": list(row.warnings),
            "input_png": _b64(row.input_png),
            "overlays": {m: _b64(png) for m, png in row.overlays.items()},
            "notes": dict(row.notes),
            "threshold": row.threshold,
            "decision": row.decision,
        }
        for row in rows
    ]
    subtitle = subtitle or f"{len(rows)} image(s), {len(methods)} method(s); generated {_dt.date.today().isoformat()}"
    return template.render(
        title=title, subtitle=subtitle, methods=list(methods), rows=encoded, image_width=int(image_width)
    )


def write_gallery(rows: Sequence[GalleryRow], methods: Sequence[str], path: str | Path, **kwargs) -> Path:
    """Render and write the gallery atomically."""
    return write_text_atomic(path, render_gallery(rows, methods, **kwargs))


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")
