"""Built-in encoders (registered by the plugin manager): `cnn`, `cnn_lstm`, `cnn_attn_lstm`, `cnn_transformer`,
`patch_transformer`.

Each maps `(B, leads, T) -> (B, embed_dim)` for the lead count and length given at construction. The first four
share the residual convolutional front end in `frontend`, which shortens the time axis before any LSTM or
attention; `patch_transformer` cuts each lead into patches instead and exposes the token API that masked
modelling and JEPA need (`ecgcl.interfaces.Encoder`).
"""

from __future__ import annotations

from ecgcl.hookspecs import hookimpl
from ecgcl.plugins.encoders.cnn import CNNEncoder
from ecgcl.plugins.encoders.lstm import CNNAttnLSTMEncoder, CNNLSTMEncoder
from ecgcl.plugins.encoders.patch_transformer import PatchTransformerEncoder
from ecgcl.plugins.encoders.transformer import CNNTransformerEncoder


@hookimpl
def register_encoders(registry):
    registry.add("cnn", CNNEncoder, kind="encoder")
    registry.add("cnn_lstm", CNNLSTMEncoder, kind="encoder")
    registry.add("cnn_attn_lstm", CNNAttnLSTMEncoder, kind="encoder")
    registry.add("cnn_transformer", CNNTransformerEncoder, kind="encoder")
    registry.add("patch_transformer", PatchTransformerEncoder, kind="encoder")


__all__ = ["CNNAttnLSTMEncoder", "CNNEncoder", "CNNLSTMEncoder", "CNNTransformerEncoder", "PatchTransformerEncoder",
           "register_encoders"]
