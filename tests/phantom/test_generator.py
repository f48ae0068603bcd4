"""The phantom: determinism, anatomy-consistent ground truth, follow-ups, sites."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from radcnn.errors import ConfigError, UnknownNameError
from radcnn.phantom.generator import PhantomConfig, render_study, sample_patient
from radcnn.phantom.lesions import CONSOLIDATION, NODULE
from radcnn.phantom.sites import SITES, acquire, get_site, resolve_sites, site_names

SIZE = 96


@pytest.fixture(scope="module")
def population():
    """Patients 0..39 of seed 3 with every study rendered (about 100 images)."""
    patients = [sample_patient(3, i) for i in range(40)]
    return [(p, [render_study(p, k, SIZE) for k in range(len(p.studies))]) for p in patients]


def _images(population):
    return [image for _, images in population for image in images]


def test_same_seed_same_pixels_different_seed_different():
    a = render_study(sample_patient(7, 2), 0, SIZE)
    b = render_study(sample_patient(7, 2), 0, SIZE)
    c = render_study(sample_patient(8, 2), 0, SIZE)
    assert a.image.tobytes() == b.image.tobytes()
    assert np.array_equal(a.lesion_mask, b.lesion_mask) and a.boxes == b.boxes
    assert not np.array_equal(a.image, c.image)


def test_patient_does_not_depend_on_population_size_or_sites():
    one = sample_patient(5, 10, sites=["site_a"])
    other = sample_patient(5, 10, sites=["site_b", "site_c"])
    assert one.anatomy == other.anatomy and one.nodules == other.nodules and one.studies == other.studies
    assert one.site.name == "site_a" and other.site.name in ("site_b", "site_c")


def test_image_follows_the_intensity_convention(population):
    image = population[0][1][0]
    assert image.image.dtype == np.float32 and image.image.shape == (SIZE, SIZE)
    assert image.image.min() >= 0.0 and image.image.max() <= 1.0
    # Lungs (air) are darker than the abdomen under the diaphragm (soft tissue).
    assert image.image[image.lung_mask].mean() < image.image[-SIZE // 8 :, SIZE // 3 : 2 * SIZE // 3].mean() - 0.15


def test_lesions_lie_inside_the_lungs(population):
    for image in _images(population):
        inside = image.lesion_mask > 0
        assert not np.any(inside & ~image.lung_mask)


def test_boxes_are_the_bounding_boxes_of_the_instance_masks(population):
    checked = 0
    for image in _images(population):
        assert image.lesion_mask.max() == len(image.boxes)
        for k, box in enumerate(image.boxes, start=1):
            rows, cols = np.nonzero(image.lesion_mask == k)
            assert (box.x0, box.y0, box.x1, box.y1) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
            checked += 1
    assert checked > 20


def test_zero_to_three_nodules_and_labels_match_boxes(population):
    counts = []
    for _, images in population:
        for image in images:
            nodules = sum(box.label == NODULE for box in image.boxes)
            counts.append(nodules)
            assert image.labels[NODULE] == int(nodules > 0)
            assert image.labels[CONSOLIDATION] == int(any(b.label == CONSOLIDATION for b in image.boxes))
    assert max(counts) <= 3 and min(counts) == 0 and set(counts) >= {0, 1, 2}


def test_nodules_persist_across_follow_ups(population):
    followed = [(p, images) for p, images in population if p.nodules and len(images) > 1]
    assert followed
    for _patient, images in followed:
        assert all(image.labels[NODULE] for image in images)
        first = [b for b in images[0].boxes if b.label == NODULE]
        last = [b for b in images[-1].boxes if b.label == NODULE]
        assert len(first) == len(last)
        for a, b in zip(first, last, strict=True):  # roughly in place: centres within an eighth of the image
            shift = np.hypot((a.x0 + a.x1 - b.x0 - b.x1) / 2, (a.y0 + a.y1 - b.y0 - b.y1) / 2)
            assert shift < SIZE / 8
            assert b.size_mm >= a.size_mm  # nodules do not shrink


def test_findings_vary_in_size_and_some_nodules_overlie_ribs(population):
    nodules = [b for image in _images(population) for b in image.boxes if b.label == NODULE]
    sizes = [b.size_mm for b in nodules]
    low, high = PhantomConfig().nodule_diameter_mm
    assert low <= min(sizes) < low * 1.3 and max(sizes) > (low + high) / 2
    assert any(b.over_rib for b in nodules) and not all(b.over_rib for b in nodules)


def test_prevalence_follows_the_config():
    patients = [sample_patient(11, i, config=PhantomConfig(nodule_prevalence=0.0)) for i in range(15)]
    assert not any(p.nodules for p in patients)
    patients = [sample_patient(11, i, config=PhantomConfig(nodule_prevalence=1.0)) for i in range(15)]
    assert sum(bool(p.nodules) for p in patients) >= 13  # placement can fail only in a tiny lung


def test_follow_ups_have_increasing_dates_and_ages():
    patient = next(p for p in (sample_patient(0, i) for i in range(20)) if len(p.studies) >= 3)
    dates = [s.date for s in patient.studies]
    assert dates == sorted(dates) and len(set(dates)) == len(dates)
    assert [s.age for s in patient.studies] == sorted(s.age for s in patient.studies)
    assert len({s.accession for s in patient.studies}) == len(patient.studies)


def test_sites_differ_in_the_stated_characteristics():
    assert len(SITES) >= 3 and site_names() == sorted(SITES)
    assert {s.photometric for s in SITES.values()} == {"MONOCHROME1", "MONOCHROME2"}
    assert {s.bits_stored for s in SITES.values()} == {12, 14, 16}
    assert {s.modality for s in SITES.values()} == {"CR", "DX"}
    assert len({(s.manufacturer, s.model_name) for s in SITES.values()}) == len(SITES)
    assert len({s.photons for s in SITES.values()}) == len(SITES)  # noise levels differ


def test_site_noise_is_visible_in_the_image():
    flat = np.full((128, 128), 0.6, np.float32)
    body = np.ones_like(flat, bool)
    noisy, clean = (min(SITES.values(), key=lambda s: s.photons), max(SITES.values(), key=lambda s: s.photons))

    def spread(site):
        ramp = flat + np.linspace(0, 0.5, 128, dtype=np.float32)[None, :]  # a ramp gives the window a range
        image = acquire(ramp, body, site, exposure=1.0, window_jitter=(0, 0), rng=np.random.default_rng(0))
        return np.std(np.diff(image, axis=0))

    assert spread(noisy) > 1.3 * spread(clean)


def test_site_selection_and_errors():
    assert [s.name for s in resolve_sites("site_a, site_c")] == ["site_a", "site_c"]
    assert resolve_sites(None) == tuple(SITES[n] for n in site_names())
    with pytest.raises(UnknownNameError, match="site_a, site_b, site_c"):
        get_site("site_z")
    with pytest.raises(UnknownNameError):
        resolve_sites("site_a,nowhere")
    with pytest.raises(ConfigError):
        resolve_sites("site_a,site_a")
    with pytest.raises(ConfigError):
        resolve_sites("")


def test_bad_config_and_arguments_are_refused():
    with pytest.raises(ConfigError, match="nodule_prevalence"):
        PhantomConfig(nodule_prevalence=1.5)
    with pytest.raises(ConfigError, match="studies_per_patient"):
        PhantomConfig(studies_per_patient=(0.5, 0.6))
    with pytest.raises(ConfigError, match="nodule_diameter_mm"):
        PhantomConfig(nodule_diameter_mm=(10.0, 5.0))
    patient = sample_patient(0, 0)
    with pytest.raises(ConfigError, match="studies"):
        render_study(patient, len(patient.studies), SIZE)
    with pytest.raises(ConfigError, match="32"):
        render_study(patient, 0, 16)


def test_lung_mask_is_two_plausible_lungs(population):
    image = population[0][1][0]
    labelled, n = ndimage.label(image.lung_mask)
    sizes = sorted(np.bincount(labelled.ravel())[1:], reverse=True)
    assert n >= 2 and sizes[1] > 0.05 * SIZE * SIZE  # two big fields (left smaller: the heart)
    cols = np.nonzero(labelled == np.argmax(np.bincount(labelled.ravel())[1:]) + 1)[1]
    assert cols.max() < SIZE // 2 or cols.min() > SIZE // 2  # each field stays on its side
