"""MONAI's 2-D classification networks, registered with a 1-channel input and a configurable head.

MONAI's networks are used as they are (no re-implementation); each builder only fixes the 2-D, single-channel
radiograph setting. DenseNet-121 is the CheXNet architecture (Rajpurkar et al. 2017).
"""

from __future__ import annotations

from torch import nn

from radcnn.models.registry import MODELS


@MODELS.register("resnet18", summary="ResNet-18 (MONAI), 2-D", tags=("monai",))
def build_resnet18(in_channels: int = 1, num_outputs: int = 1, **_: object) -> nn.Module:
    from monai.networks.nets import resnet18

    return resnet18(spatial_dims=2, n_input_channels=in_channels, num_classes=num_outputs)


@MODELS.register("resnet50", summary="ResNet-50 (MONAI), 2-D", tags=("monai",))
def build_resnet50(in_channels: int = 1, num_outputs: int = 1, **_: object) -> nn.Module:
    from monai.networks.nets import resnet50

    return resnet50(spatial_dims=2, n_input_channels=in_channels, num_classes=num_outputs)


@MODELS.register("densenet121", summary="DenseNet-121 (MONAI), the CheXNet architecture", tags=("monai",))
def build_densenet121(in_channels: int = 1, num_outputs: int = 1, **_: object) -> nn.Module:
    from monai.networks.nets import DenseNet121

    return DenseNet121(spatial_dims=2, in_channels=in_channels, out_channels=num_outputs)


@MODELS.register("efficientnet_b0", summary="EfficientNet-B0 (MONAI), 2-D", tags=("monai",))
def build_efficientnet_b0(in_channels: int = 1, num_outputs: int = 1, **_: object) -> nn.Module:
    from monai.networks.nets import EfficientNetBN

    return EfficientNetBN(
        "efficientnet-b0", pretrained=False, spatial_dims=2, in_channels=in_channels, num_classes=num_outputs
    )
