import base64
import re

import matplotlib
import numpy as np

from radcnn.explain.gallery import GalleryRow, render_gallery
from radcnn.explain.overlay import colour_limits, render_grid, render_image, render_overlay

PNG = b"\x89PNG\r\n\x1a\n"


def _image_and_map():
    yy, xx = np.mgrid[:32, :32]
    image = (0.3 + 0.4 * np.exp(-((yy - 10) ** 2 + (xx - 20) ** 2) / 20)).astype(np.float32)
    return image, (image - 0.3).astype(np.float32)


def test_colour_limits_are_symmetric_for_signed_maps_and_start_at_zero_otherwise():
    low, high, signed = colour_limits(np.array([0.0, 1.0, 2.0]))
    assert (low, signed) == (0.0, False) and 1.9 < high <= 2.0  # robust maximum: the 99.5th percentile
    low, high, signed = colour_limits(np.linspace(-1, 3, 1000))
    assert signed and low == -high and high > 2.5
    assert colour_limits(np.zeros(5)) == (0.0, 1.0, False)


def test_overlays_are_pngs_and_leave_matplotlib_settings_alone():
    image, attribution = _image_and_map()
    before = dict(matplotlib.rcParams)
    backend = matplotlib.get_backend()
    for png in (
        render_overlay(image, attribution, title="gradcam — nodule p = 0.930"),
        render_overlay(image, -attribution + 0.1, title="signed"),
        render_image(image, title="input", boxes=[(15, 5, 25, 15)]),
        render_grid([(image, {"a": attribution, "b": -attribution}, "img")], boxes=[[(15, 5, 25, 15)]]),
    ):
        assert png.startswith(PNG) and len(png) > 2000
    assert dict(matplotlib.rcParams) == before and matplotlib.get_backend() == backend


def test_gallery_is_self_contained_and_escapes_names():
    image, attribution = _image_and_map()
    overlay = render_overlay(image, attribution)
    rows = [
        GalleryRow("<script>alert(1)</script>.png", "nodule", 0.93, render_image(image), {"gradcam": overlay}),
        GalleryRow("b.dcm", "nodule", 0.12, render_image(image), {"gradcam": overlay, "lime": overlay}, ["range"]),
    ]
    html = render_gallery(rows, ["gradcam", "lime"], title="t")
    assert "<script>alert" not in html and "&lt;script&gt;" in html
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(images) == 2 + 3
    assert all(base64.b64decode(data).startswith(PNG) for data in images)
    assert not re.search(r'(src|href)="(https?:)?//', html), "nothing is fetched from the network"
    assert "0.930" in html and "⚠ range" in html
