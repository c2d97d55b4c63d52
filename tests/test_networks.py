"""Evaluation networks (book page Parity): parameter counts, shapes and the layer choices of IDC."""
import pytest
import torch
import torch.nn as nn

from ddgd.protocol.networks import NETWORKS, build, count_parameters


@pytest.mark.parametrize("name, size, expected", [
    ("resnetap-10", 224, 4_910_922),
    # Half width, by hand: stem 3*32*49 + 64; blocks 18,560 + 57,728 + 230,144 + 919,040; fc 2,570.
    ("resnetap-10-w32", 224, 1_232_810),
    ("resnet-18", 224, 11_181_642),
    ("convnet-6", 224, 754_570),
    ("convnet-3", 32, 320_010),
])
def test_parameter_counts_match_the_spec(name, size, expected):
    assert count_parameters(build(name, 10, 3, size)) == expected


@pytest.mark.parametrize("name", ["convnet-3", "resnetap-10"])
@pytest.mark.parametrize("size", [28, 32])
def test_small_grey_images_give_logits(name, size):
    net = build(name, 7, 1, size)
    assert net(torch.rand(2, 1, size, size)).shape == (2, 7)


def test_resnet18_on_one_channel_small_stem_and_the_legacy_warning():
    net = build("resnet-18", 10, 1, 32)  # IDC's small-image stem: conv 3x3 stride 1, no max-pool
    assert net.conv1.in_channels == 1 and net.conv1.kernel_size == (3, 3) and isinstance(net.maxpool, nn.Identity)
    assert net(torch.rand(2, 1, 32, 32)).shape == (2, 10)
    with pytest.warns(UserWarning, match="1x1"):  # the legacy network keeps the 7x7/2 stem and max-pool
        build("resnet-18", 10, 1, 32, style="legacy")


def test_every_norm_is_instance_norm():
    for name in NETWORKS:
        norms = [m for m in build(name, 10, 3, 64).modules() if isinstance(m, (nn.GroupNorm, nn.BatchNorm2d))]
        assert norms, name
        assert all(isinstance(m, nn.GroupNorm) and m.num_groups == m.num_channels and m.affine for m in norms), name


def test_resnetap_convolutions_have_stride_one_and_no_bias():
    convs = [m for m in build("resnetap-10", 10, 3, 224).modules() if isinstance(m, nn.Conv2d)]
    assert len(convs) == 1 + 8 + 3  # stem, two per block, three shortcut 1x1
    assert all(c.stride == (1, 1) and c.bias is None for c in convs)


def test_resnetap_stem_pools_by_input_size():
    pools = lambda net: [m.kernel_size for m in net.stem if isinstance(m, nn.AvgPool2d)]  # noqa: E731
    assert pools(build("resnetap-10", 10, 3, 224)) == [4]  # IDC 'large': 7x7 conv, 4x4 pool
    assert pools(build("resnetap-10", 10, 3, 128)) == [2]  # 'mid': 3x3 conv, 2x2 pool
    assert pools(build("resnetap-10", 10, 3, 64)) == []  # 'small': 3x3 conv
    assert pools(build("resnetap-10", 10, 3, 128, style="legacy")) == []


def test_convnet_uses_biased_convolutions_of_width_128():
    convs = [m for m in build("convnet-3", 10, 1, 32).modules() if isinstance(m, nn.Conv2d)]
    assert [c.out_channels for c in convs] == [128] * 3
    assert all(c.bias is not None and c.kernel_size == (3, 3) for c in convs)


def test_unknown_network_lists_the_valid_names():
    with pytest.raises(ValueError, match="convnet-3.*resnetap-10"):
        build("vgg-11", 10, 3, 32)


def test_bad_sizes_are_refused():
    with pytest.raises(ValueError, match="at least 64 px"):
        build("convnet-6", 10, 3, 32)
    with pytest.raises(ValueError, match="num_classes"):
        build("convnet-3", 0, 3, 32)
