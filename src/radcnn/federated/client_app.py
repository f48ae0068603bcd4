"""The ClientApp: unpack the server's message, call `radcnn.federated.task`, pack the reply.

Everything a client needs comes in the message: the global weights, the run's settings and the radcnn config
(ConfigRecord), so the same ClientApp runs under the simulation engine and on a SuperNode. The SuperNode's node
config says which client this is: ``partition-id`` and ``num-partitions`` (the simulation engine sets both), or
``data-source`` for a site that trains on its own data instead of a partition of a shared source.

A client whose data make a different model than the server's (other labels, architecture or input size), or
whose partition has no labelled training image, fails with a message naming what differs; Flower returns that
message to the server as the reply's error, and the server's guard logs it (see strategy.py).
"""

from __future__ import annotations

import logging

from radcnn.errors import ConfigError
from radcnn.federated import task
from radcnn.federated.config import RECORD_CONFIG, RECORD_SPEC, FederatedConfig
from radcnn.models.checkpoint import build_from_spec
from radcnn.models.spec import ModelSpec

log = logging.getLogger(__name__)

# Keys Flower's strategies add to the ConfigRecord beside radcnn's settings.
FLOWER_KEYS = frozenset({"server-round", "proximal-mu"})


def parse_message(msg, context):
    """(settings, radcnn config, server's spec, this client's data, server round) from a message + node config."""
    record = dict(msg.content["config"])
    fed = FederatedConfig.from_mapping(
        {k: v for k, v in record.items() if k not in FLOWER_KEYS | {RECORD_CONFIG, RECORD_SPEC}},
        where="settings sent by the server",
    )
    if RECORD_CONFIG not in record or RECORD_SPEC not in record:
        raise ConfigError("the server's message has no radcnn config or model spec; is the server radcnn's ServerApp?")
    config = task.config_from_text(record[RECORD_CONFIG])
    server_spec = ModelSpec.from_json(record[RECORD_SPEC])
    node = dict(context.node_config)
    own_source = str(node.get("data-source", ""))
    if "partition-id" not in node and not own_source:
        raise ConfigError(
            "this SuperNode's node config names no data: give partition-id=K num-partitions=N (a partition of the "
            "shared source) or data-source=PATH (this site's own data)"
        )
    partition_id = int(node.get("partition-id", 0))
    num_partitions = int(node.get("num-partitions", 1))
    data = task.client_data(config, fed, partition_id, num_partitions, own_source=own_source)
    task.check_spec(server_spec, data.spec, where=f"client {partition_id} ({data.name})")
    return fed, server_spec, data, int(record.get("server-round", 0)), partition_id


def _global_model(msg, spec: ModelSpec):
    model = build_from_spec(spec)
    arrays = msg.content["arrays"]
    task.set_weights(model, {k: v.numpy() for k, v in arrays.items()}, source="the global model sent by the server")
    return model


def train(msg, context):
    from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord, RecordDict

    fed, spec, data, server_round, partition_id = parse_message(msg, context)
    model = _global_model(msg, spec)
    mu = float(msg.content["config"].get("proximal-mu", 0.0)) if fed.strategy == "fedprox" else 0.0
    seed = (data.config.train.seed if fed.seed < 0 else fed.seed) + 1000 * server_round + partition_id
    metrics = task.local_train(model, data, fed, mu=mu, seed=seed, server_round=server_round)
    metrics["num-examples"] = len(data.train)
    log.info("client %s: round %d trained on %d images, loss %.4f", data.name, server_round, len(data.train),
             metrics["train_loss"])  # fmt: skip
    content = RecordDict(
        {
            "arrays": ArrayRecord(model.state_dict()),
            "metrics": MetricRecord(metrics),
            "config": ConfigRecord({"client-name": data.name}),
        }
    )
    return Message(content=content, reply_to=msg)


def evaluate(msg, context):
    from flwr.app import ConfigRecord, Message, MetricRecord, RecordDict

    _fed, spec, data, _round, _partition = parse_message(msg, context)
    metrics: dict[str, float] = {"num-examples": 0}
    if len(data.val):
        model = _global_model(msg, spec)
        result = task.evaluate_model(model, data.val, spec)
        metrics = {k: float(v) for k, v in result.items() if v == v}  # NaN (undefined AUC) is left out
        metrics["num-examples"] = len(data.val)
    content = RecordDict({"metrics": MetricRecord(metrics), "config": ConfigRecord({"client-name": data.name})})
    return Message(content=content, reply_to=msg)


def make_client_app():
    from flwr.clientapp import ClientApp

    app = ClientApp()
    app.train()(train)
    app.evaluate()(evaluate)
    return app


app = make_client_app()
