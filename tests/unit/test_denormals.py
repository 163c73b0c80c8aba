"""flush_denormals: flushed inside the block, the caller's setting restored after it."""

import pytest
import torch

from rlapprox.core.denormals import denormals_flushed, flush_denormals


@pytest.fixture
def can_flush():
    if not torch.set_flush_denormal(False):
        pytest.skip("this CPU cannot flush denormals (torch.set_flush_denormal is x86 only)")
    yield
    torch.set_flush_denormal(False)


@pytest.mark.parametrize("before", [False, True])
def test_block_flushes_and_restores_the_previous_setting(can_flush, before):
    torch.set_flush_denormal(before)
    with flush_denormals():
        assert denormals_flushed()
        assert torch.tensor([1e-40]).mul(3.0).item() == 0.0
        with flush_denormals(False):
            assert not denormals_flushed()
            assert torch.tensor([1e-40]).mul(3.0).item() == pytest.approx(3e-40, rel=1e-3)
        assert denormals_flushed()
    assert denormals_flushed() == before


def test_setting_is_restored_when_the_block_raises(can_flush):
    with pytest.raises(RuntimeError, match="boom"), flush_denormals():
        raise RuntimeError("boom")
    assert not denormals_flushed()
