"""Federated learning on Flower: hospitals train one model together without moving images.

Flower's three-part split: `task` (weights, local training and evaluation through radcnn's own data, model,
training and metrics code), `client_app` (the ClientApp), `server_app` (the ServerApp, which writes a normal radcnn
run directory plus per-round history). `config.FederatedConfig` is the one typed, defaulted configuration,
parsed once from Flower's run config. `partition` splits a dataset between clients (by site, Dirichlet label skew,
quantity skew); `strategy` guards aggregation (NaN or misshapen updates are rejected, never averaged);
`simulate` runs everything on Flower's simulation engine; `deploy` prepares TLS certificates, the Flower app folder
and the SuperLink/SuperNode command lines of the deployment engine. Needs the ``federated`` extra (flwr).
"""
