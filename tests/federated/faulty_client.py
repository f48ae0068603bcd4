"""A ClientApp for the robustness test: radcnn's own ClientApp, except that client 1's process dies in the middle
of its training round, client 2 returns NaN weights and client 3 (an outdated install that disagrees with the
server on the model) returns a ResNet-18's weights. (A module, so Ray's worker processes can import it.)"""

from __future__ import annotations

import os

import numpy as np
from flwr.app import Array, ArrayRecord
from flwr.clientapp import ClientApp

from radcnn.federated import client_app as radcnn_client
from radcnn.models.checkpoint import build_from_spec
from radcnn.models.spec import ModelSpec

app = ClientApp()


@app.train()
def train(msg, context):
    partition = int(context.node_config["partition-id"])
    if partition == 1:
        os._exit(1)  # the client process dies in the middle of the round
    if partition == 3:
        # trains site_a's partition like client 0, then answers with another architecture's tensors
        context.node_config = {**context.node_config, "partition-id": 0}
        reply = radcnn_client.train(msg, context)
        other = build_from_spec(ModelSpec(architecture="resnet18", input_size=(32, 32), label_names=("nodule",)))
        reply.content["arrays"] = ArrayRecord(other.state_dict())
        return reply
    reply = radcnn_client.train(msg, context)
    if partition == 2:
        arrays = reply.content["arrays"]
        poisoned = {k: Array(np.full(v.shape, np.nan, np.float32)) for k, v in arrays.items()}
        reply.content["arrays"] = ArrayRecord(poisoned)
    return reply


app.evaluate()(radcnn_client.evaluate)
