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


def test_a_shared_scale_keeps_a_weak_map_faint_beside_a_strong_one():
    import io

    from PIL import Image

    from radcnn.explain.overlay import map_peak, shared_limits

    image, strong = _image_and_map()
    weak = strong * 0.02  # a normal film at p = 0.002: the same shape, a fiftieth of the attribution
    limits = shared_limits([strong, weak])
    assert limits == colour_limits(np.concatenate([strong.ravel(), weak.ravel()]))
    assert map_peak(weak) == np.abs(weak).max() and map_peak(np.full(3, np.nan)) == 0.0

    def colour(png: bytes) -> float:  # how far the image area departs from gray: the overlay's visible colour
        picture = Image.open(io.BytesIO(png)).convert("RGB")
        width, height = picture.size  # the image axes span x 0.02-0.78 and y 0.04-0.88 of the figure
        box = (int(0.03 * width), int(0.13 * height), int(0.77 * width), int(0.95 * height))
        rgb = np.asarray(picture.crop(box), dtype=np.float64)
        return float(np.abs(rgb - rgb.mean(axis=2, keepdims=True)).mean())

    own_scale = colour(render_overlay(image, weak))
    shared = colour(render_overlay(image, weak, limits=limits))
    strong_shared = colour(render_overlay(image, strong, limits=limits))
    # On its own scale the weak map glows as much as the strong one; on the shared scale it almost vanishes.
    assert own_scale > 0.5 * strong_shared
    assert shared < 0.2 * strong_shared


def test_gallery_rows_show_threshold_and_decision():
    image, attribution = _image_and_map()
    overlay = render_overlay(image, attribution)
    rows = [
        GalleryRow("a.png", "nodule", 0.93, render_image(image), {"gradcam": overlay}, threshold=0.41),
        GalleryRow("b.png", "nodule", 0.002, render_image(image), {"gradcam": overlay}, threshold=0.41),
    ]
    assert [row.decision for row in rows] == ["positive", "negative"]
    html = render_gallery(rows, ["gradcam"], title="t")
    assert html.count("threshold 0.41") == 2
    assert "decision: positive" in html and "decision: negative" in html


def test_written_explanations_share_one_scale_and_record_peaks(tmp_path):
    import json

    from radcnn.explain.output import write_explanations
    from radcnn.explain.run import ImageExplanation

    image, strong = _image_and_map()
    items = [
        ImageExplanation("a.png", image, "nodule", 0, 0.93, {"gradcam": strong}),
        ImageExplanation("b.png", image, "nodule", 0, 0.002, {"gradcam": strong * 0.02}),
    ]
    out = write_explanations(items, tmp_path / "out", thresholds={"nodule": 0.5})
    summary = json.loads(out.summary.read_text())
    scale = summary["colour_scales"]["gradcam"]
    assert (scale["vmin"], scale["vmax"]) == colour_limits(np.concatenate([strong.ravel(), 0.02 * strong.ravel()]))[:2]
    peaks = [image["map_peaks"]["gradcam"] for image in summary["images"]]
    assert peaks[1] == np.float32(0.02 * strong).max() and peaks[0] > 40 * peaks[1]
    assert [image["decision"] for image in summary["images"]] == ["positive", "negative"]
    html = out.gallery.read_text()
    assert "decision: negative" in html and "peak |map|" in html and "shared scale" in html
