import radcnn


def test_all_is_sorted_and_every_name_resolves():
    assert radcnn.__all__ == sorted(radcnn.__all__)
    for name in radcnn.__all__:
        assert getattr(radcnn, name) is not None, name


def test_unknown_attribute_is_an_attribute_error():
    try:
        radcnn.does_not_exist  # noqa: B018
    except AttributeError as exc:
        assert "does_not_exist" in str(exc)
    else:
        raise AssertionError("expected AttributeError")
