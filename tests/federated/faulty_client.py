"""A ClientApp for the robustness test: radcnn's own ClientApp, except that client 1's process dies in the middle
of its training round and client 2 returns NaN weights. (A module, so Ray's worker processes can import it.)"""

from __future__ import annotations

import os

import numpy as np
from flwr.app import Array, ArrayRecord
from flwr.clientapp import ClientApp

from radcnn.federated import client_app as radcnn_client

app = ClientApp()


@app.train()
def train(msg, context):
    partition = int(context.node_config["partition-id"])
    if partition == 1:
        os._exit(1)  # the client process dies in the middle of the round
    reply = radcnn_client.train(msg, context)
    if partition == 2:
        arrays = reply.content["arrays"]
        poisoned = {k: Array(np.full(v.shape, np.nan, np.float32)) for k, v in arrays.items()}
        reply.content["arrays"] = ArrayRecord(poisoned)
    return reply


app.evaluate()(radcnn_client.evaluate)
