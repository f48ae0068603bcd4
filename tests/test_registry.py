import pytest

from radcnn.errors import UnknownNameError
from radcnn.registry import Registry


def test_register_get_build_and_names():
    reg = Registry("widget")

    @reg.register("b", summary="the b")
    def make_b(x=1):
        return ("b", x)

    @reg.register("a")
    def make_a():
        """First line is the summary."""
        return "a"

    assert reg.names() == ["a", "b"]
    assert reg.build("b", x=2) == ("b", 2)
    assert reg.get("a").info.summary == "First line is the summary."
    assert "a" in reg and len(reg) == 2


def test_duplicates_and_unknown_names():
    reg = Registry("widget")
    reg.register("a")(lambda: 1)
    with pytest.raises(ValueError, match="twice"):
        reg.register("a")(lambda: 2)
    with pytest.raises(UnknownNameError, match="unknown widget 'z'; valid names: a"):
        reg.get("z")
