"""Minimal pure-python safetensors reader/writer (Debian has no python3-safetensors; SPEC §7).

Format: 8-byte little-endian u64 header length N, then N bytes of JSON
`{name: {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {str: str}}`
(padded with spaces to a multiple of 8), then the raw little-endian tensor data.
"""
import json
import struct

import numpy as np
import torch

# safetensors dtype name -> (torch dtype, numpy dtype used for the raw bytes, bytes per element)
_DTYPES = {
    "F64": (torch.float64, np.dtype("<f8")),
    "F32": (torch.float32, np.dtype("<f4")),
    "F16": (torch.float16, np.dtype("<f2")),
    "BF16": (torch.bfloat16, np.dtype("<i2")),  # raw bits; reinterpreted with Tensor.view
    "I64": (torch.int64, np.dtype("<i8")),
    "I32": (torch.int32, np.dtype("<i4")),
    "BOOL": (torch.bool, np.dtype("u1")),
    "U8": (torch.uint8, np.dtype("u1")),
}
_TORCH_TO_NAME = {v[0]: k for k, v in _DTYPES.items()}


def _to_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().contiguous()
    if t.dtype == torch.bfloat16:
        return t.view(torch.int16).numpy().astype("<i2").tobytes()
    if t.dtype == torch.bool:
        return t.numpy().astype("u1").tobytes()
    return t.numpy().astype(_DTYPES[_TORCH_TO_NAME[t.dtype]][1]).tobytes()


def save_file(tensors: dict, path: str, metadata: dict | None = None) -> None:
    """Write `tensors` (name -> torch.Tensor) to `path`; metadata values must be strings."""
    header = {}
    blobs = []
    offset = 0
    for name in sorted(tensors):
        t = tensors[name]
        if t.dtype not in _TORCH_TO_NAME:
            raise TypeError(f"{name}: unsupported dtype {t.dtype}")
        data = _to_bytes(t)
        header[name] = {
            "dtype": _TORCH_TO_NAME[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(data)],
        }
        blobs.append(data)
        offset += len(data)
    if metadata:
        for k, v in metadata.items():
            if not isinstance(v, str):
                raise TypeError(f"metadata {k!r} must be a string")
        header["__metadata__"] = dict(metadata)
    raw = json.dumps(header, separators=(",", ":")).encode("utf-8")
    raw += b" " * ((8 - len(raw) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(raw)))
        f.write(raw)
        for b in blobs:
            f.write(b)


def load_file(path: str) -> tuple[dict, dict]:
    """Read `path`; returns (name -> torch.Tensor, metadata dict)."""
    with open(path, "rb") as f:
        buf = f.read()
    (n,) = struct.unpack("<Q", buf[:8])
    header = json.loads(buf[8 : 8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", {}) or {}
    base = 8 + n
    out = {}
    for name, info in header.items():
        tdtype, npdtype = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        shape = info["shape"]
        count = int(np.prod(shape)) if shape else 1
        if end - begin != count * npdtype.itemsize or base + end > len(buf):
            raise ValueError(f"{path}: bad data_offsets for {name}")
        arr = np.frombuffer(buf, dtype=npdtype, count=count, offset=base + begin).reshape(shape).copy()
        t = torch.from_numpy(arr)
        if tdtype == torch.bfloat16:
            t = t.view(torch.bfloat16)
        elif tdtype == torch.bool:
            t = t.to(torch.bool)
        out[name] = t
    return out, metadata
