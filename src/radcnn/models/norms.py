"""Rebuilding a model whose BatchNorm layers were replaced by GroupNorm for DP-SGD.

Opacus's `ModuleValidator.fix` (used by `radcnn.training.dp.fix_model`) replaces every BatchNorm by
``GroupNorm(gcd(32, C), C, affine=bn.affine)``: per-sample gradients are undefined for BatchNorm, which mixes the
samples of a batch. A model trained that way records ``model_kwargs["norm"] = "group"`` in its ModelSpec, and
`radcnn.models.checkpoint.build_from_spec` applies the same replacement here, in plain torch, so that loading,
evaluating and serving a DP-trained model does not need Opacus installed. `radcnn.training.dp_fit` checks, for
every DP run, that this rebuild has exactly the tensors of Opacus's fixed model.
"""

from __future__ import annotations

import math

from torch import nn

GROUP_NORM = "group"


def batchnorm_to_groupnorm(model: nn.Module) -> nn.Module:
    """Replace every BatchNorm1d/2d/3d in `model` (in place) the way Opacus's fixer does; returns `model`."""
    for name, child in list(model.named_children()):
        if isinstance(child, nn.modules.batchnorm._BatchNorm):
            groups = math.gcd(32, child.num_features)
            setattr(model, name, nn.GroupNorm(groups, child.num_features, affine=child.affine))
        else:
            batchnorm_to_groupnorm(child)
    return model
