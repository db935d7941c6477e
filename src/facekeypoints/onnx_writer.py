"""A minimal writer of ONNX models, for graphs built at run time without the ``onnx`` package.

ONNX files are Protocol Buffers messages (``onnx.proto``). Only what a small feed-forward graph of
float tensors needs is written here: nodes with int, float and int-list attributes, float32 and
int64 initializers, and float32 inputs and outputs whose dimensions may be named (dynamic). ONNX
Runtime reads the bytes directly (``onnxruntime.InferenceSession(model_bytes)``); the tests check
them with ``onnx.checker`` where that package is installed.

>>> g = Graph()
>>> g.input("x", [1, 3, "h", "w"]); g.output("y", [1, 3, "h", "w"])
>>> g.node("Relu", ["x"], ["y"])
>>> model = g.model(opset=13)      # bytes of an ONNX ModelProto
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

import numpy as np

# Protocol Buffers wire types
_VARINT, _LEN, _FIXED32 = 0, 2, 5
# onnx.proto: TensorProto.DataType and AttributeProto.AttributeType values used here
FLOAT, INT64 = 1, 7
_ATTR_FLOAT, _ATTR_INT, _ATTR_INTS = 1, 2, 7
#: the ONNX IR version written (IR 7: ONNX 1.7, opsets up to 12-13; read by every ONNX Runtime we support)
IR_VERSION = 7


def _varint(value: int) -> bytes:
    value &= (1 << 64) - 1  # negative numbers as two's complement, 10 bytes
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def _int(number: int, value: int) -> bytes:
    return _key(number, _VARINT) + _varint(int(value))


def _bytes(number: int, value: bytes | str) -> bytes:
    data = value.encode() if isinstance(value, str) else bytes(value)
    return _key(number, _LEN) + _varint(len(data)) + data


def _float(number: int, value: float) -> bytes:
    return _key(number, _FIXED32) + struct.pack("<f", float(value))


def _attribute(name: str, value) -> bytes:
    """AttributeProto: name = 1, f = 2, i = 3, ints = 8, type = 20."""
    if isinstance(value, float):
        return _bytes(1, name) + _float(2, value) + _int(20, _ATTR_FLOAT)
    if isinstance(value, (int, np.integer)):
        return _bytes(1, name) + _int(3, int(value)) + _int(20, _ATTR_INT)
    ints = b"".join(_int(8, int(v)) for v in value)
    return _bytes(1, name) + ints + _int(20, _ATTR_INTS)


def _tensor(name: str, array: np.ndarray) -> bytes:
    """TensorProto: dims = 1, data_type = 2, name = 8, raw_data = 9 (little-endian)."""
    if array.dtype == np.float32:
        kind, raw = FLOAT, array.astype("<f4").tobytes()
    elif array.dtype == np.int64:
        kind, raw = INT64, array.astype("<i8").tobytes()
    else:
        raise TypeError(f"initializers must be float32 or int64, got {array.dtype}")
    dims = b"".join(_int(1, d) for d in array.shape)
    return dims + _int(2, kind) + _bytes(8, name) + _bytes(9, raw)


def _value_info(name: str, shape: list[int | str]) -> bytes:
    """ValueInfoProto(name = 1, type = 2) of a float32 tensor; a str dimension is named (dynamic)."""
    dims = b"".join(
        _bytes(1, _bytes(2, d) if isinstance(d, str) else _int(1, d))  # Dimension: dim_value 1, dim_param 2
        for d in shape
    )
    tensor_type = _int(1, FLOAT) + _bytes(2, dims)  # TypeProto.Tensor: elem_type 1, shape 2
    return _bytes(1, name) + _bytes(2, _bytes(1, tensor_type))  # TypeProto: tensor_type 1


@dataclass
class Graph:
    """An ONNX graph under construction: nodes in execution order, weights, inputs and outputs."""

    name: str = "graph"
    _nodes: list[bytes] = field(default_factory=list)
    _initializers: list[bytes] = field(default_factory=list)
    _inputs: list[bytes] = field(default_factory=list)
    _outputs: list[bytes] = field(default_factory=list)

    def input(self, name: str, shape: list[int | str]) -> None:
        """Declare a float32 graph input."""
        self._inputs.append(_value_info(name, shape))

    def output(self, name: str, shape: list[int | str]) -> None:
        """Declare a float32 graph output."""
        self._outputs.append(_value_info(name, shape))

    def constant(self, name: str, array: np.ndarray) -> str:
        """Add a weight (float32 or int64) and return its name."""
        self._initializers.append(_tensor(name, np.ascontiguousarray(array)))
        return name

    def node(self, op_type: str, inputs: list[str], outputs: list[str], **attributes) -> str:
        """Add an operator (NodeProto: input = 1, output = 2, name = 3, op_type = 4, attribute = 5);
        returns its first output's name."""
        body = b"".join(_bytes(1, i) for i in inputs) + b"".join(_bytes(2, o) for o in outputs)
        body += _bytes(3, f"{op_type}_{len(self._nodes)}") + _bytes(4, op_type)
        body += b"".join(_bytes(5, _attribute(k, v)) for k, v in attributes.items())
        self._nodes.append(body)
        return outputs[0]

    def model(self, opset: int = 13, producer: str = "facekeypoints") -> bytes:
        """The serialized ModelProto (ir_version = 1, producer_name = 2, graph = 7, opset_import = 8)."""
        graph = b"".join(_bytes(1, n) for n in self._nodes) + _bytes(2, self.name)
        graph += b"".join(_bytes(5, t) for t in self._initializers)
        graph += b"".join(_bytes(11, v) for v in self._inputs) + b"".join(_bytes(12, v) for v in self._outputs)
        opset_id = _bytes(1, "") + _int(2, opset)  # OperatorSetIdProto: domain 1, version 2
        return _int(1, IR_VERSION) + _bytes(2, producer) + _bytes(7, graph) + _bytes(8, opset_id)
