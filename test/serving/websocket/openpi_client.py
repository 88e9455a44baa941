"""A robot-side client of the openpi WebSocket policy protocol, written from the documented wire
format (docs/serving.md), with Debian's python3-msgpack, python3-numpy and python3-websockets (10.x:
the asyncio API). It is what an openpi runtime does: read the metadata map sent on connect, send one
observation map per binary frame, read `{actions, server_timing}` back.

usage: openpi_client.py PORT [--api-key KEY] [--requests N] [--bad]
Prints one JSON line describing what came back.
"""

import argparse
import asyncio
import json

import msgpack
import numpy as np
import websockets


def pack_array(obj):
    # numpy arrays and scalars as openpi's msgpack_numpy writes them: bytes keys, dtype.str.
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in ("V", "O", "c"):
            raise ValueError(f"unsupported dtype {obj.dtype}")
        return {b"__ndarray__": True, b"data": obj.tobytes(), b"dtype": obj.dtype.str, b"shape": obj.shape}
    if isinstance(obj, np.generic):
        return {b"__npgeneric__": True, b"data": obj.item(), b"dtype": obj.dtype.str}
    return obj


def unpack_array(obj):
    if b"__ndarray__" in obj:
        return np.ndarray(buffer=obj[b"data"], dtype=np.dtype(obj[b"dtype"]), shape=obj[b"shape"])
    if b"__npgeneric__" in obj:
        return np.dtype(obj[b"dtype"]).type(obj[b"data"])
    return obj


def packb(obj):
    return msgpack.packb(obj, default=pack_array)


def unpackb(data):
    return msgpack.unpackb(data, object_hook=unpack_array)


def observation(metadata, step, rng):
    camera = metadata["cameras"][0]
    _, height, width = metadata["input_features"][camera]["shape"]
    name = camera[len("observation.images."):]
    state = rng.standard_normal(metadata["state_dim"]).astype(np.float32)
    if step % 2 == 0:
        # openpi's slash keys, a uint8 HWC frame, the prompt key.
        return {
            f"observation/{name}": rng.integers(0, 256, size=(height, width, 3), dtype=np.uint8),
            "observation/state": state,
            "prompt": "stack the blocks",
        }
    # LeRobot's keys, a float32 CHW image in [0, 1], the task key, queued actions as context.
    return {
        camera: rng.random((3, height, width), dtype=np.float32),
        "observation.state": state.astype(np.float64),
        "task": "stack the blocks",
        "action_context": np.zeros((3, metadata["action_dim"]), dtype=np.float32),
    }


async def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument("--api-key")
    parser.add_argument("--requests", type=int, default=2)
    parser.add_argument("--bad", action="store_true", help="send a malformed observation; report the error")
    args = parser.parse_args()
    headers = {"Authorization": f"Api-Key {args.api_key}"} if args.api_key else None
    uri = f"ws://127.0.0.1:{args.port}"
    report = {}
    try:
        async with websockets.connect(uri, compression=None, max_size=None, extra_headers=headers) as ws:
            metadata = unpackb(await ws.recv())
            report["metadata_keys"] = sorted(metadata.keys())
            if args.bad:
                await ws.send(packb({"observation/state": "not an array", "prompt": 3}))
                reply = await ws.recv()
                report["error_is_text"] = isinstance(reply, str)
                report["error"] = reply if isinstance(reply, str) else None
                try:
                    await ws.recv()
                except websockets.ConnectionClosed as closed:
                    report["close_code"] = closed.rcvd.code if closed.rcvd else None
            else:
                rng = np.random.default_rng(0)
                replies = []
                for step in range(args.requests):
                    await ws.send(packb(observation(metadata, step, rng)))
                    reply = await ws.recv()
                    if isinstance(reply, str):
                        raise RuntimeError(f"Error in inference server:\n{reply}")
                    out = unpackb(reply)
                    actions = out["actions"]
                    replies.append(
                        {
                            "shape": list(actions.shape),
                            "dtype": str(actions.dtype),
                            "finite": bool(np.isfinite(actions).all()),
                            "timing": sorted(out["server_timing"].keys()),
                        }
                    )
                report["replies"] = replies
                report["chunk_size"] = metadata["chunk_size"]
                report["action_dim"] = metadata["action_dim"]
    except websockets.InvalidStatusCode as refused:
        report["refused_status"] = refused.status_code
    print(json.dumps(report))


if __name__ == "__main__":
    asyncio.run(main())
