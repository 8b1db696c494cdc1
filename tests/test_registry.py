import pytest

from paced.registry import Registry


def test_registry_did_you_mean_and_available():
    reg: Registry[int] = Registry("kernel")
    reg.add("beta", 1)
    reg.add("uniform", 2)
    with pytest.raises(ValueError) as err:
        reg.get("betta")
    msg = str(err.value)
    assert "unknown kernel 'betta'" in msg
    assert "Did you mean 'beta'?" in msg
    assert "Available: beta, uniform" in msg


def test_registry_no_close_match_lists_available():
    reg: Registry[int] = Registry("thing")
    reg.add("alpha", 1)
    with pytest.raises(ValueError, match="Available: alpha") as err:
        reg.get("zzzzzz")
    assert "Did you mean" not in str(err.value)


def test_registry_duplicate_and_decorator():
    reg: Registry[object] = Registry("thing")

    @reg.register("f")
    def f() -> int:
        return 3

    assert reg.get("f") is f and "f" in reg and len(reg) == 1 and list(reg) == ["f"]
    with pytest.raises(ValueError, match="already registered"):
        reg.add("f", 1)


def test_public_registries_suggest():
    from paced import DIVERGENCES, KERNELS

    with pytest.raises(ValueError, match="Did you mean 'forward_kl'"):
        DIVERGENCES.get("foward_kl")
    assert KERNELS.names() == ["beta", "hard_filter", "inverse", "learnability", "uniform"]
    assert DIVERGENCES.names() == ["adaptive_kl", "forward_kl", "jsd", "reverse_kl"]
