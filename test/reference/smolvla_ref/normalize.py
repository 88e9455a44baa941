"""LeRobot's feature normalisation (the Normalize / Unnormalize modules, and the processor pipelines'
normaliser steps), restated for the fixtures: float32 tensor arithmetic, one operation at a time.

MEAN_STD: (x - mean) / (std + eps), inverse x * std + mean (no eps).
MIN_MAX: (x - min) / (max - min + eps) * 2 - 1 (to [-1, 1]), inverse (x + 1) / 2 * (max - min) + min.
IDENTITY: unchanged. Statistics broadcast over the feature's trailing axes: (D) for a vector, (C, 1, 1)
for a camera (per channel)."""
import torch

EPS = 1e-8


def normalize(x: torch.Tensor, mode: str, stats: dict, eps: float = EPS) -> torch.Tensor:
    if mode == "IDENTITY":
        return x
    if mode == "MEAN_STD":
        return (x - stats["mean"]) / (stats["std"] + eps)
    if mode == "MIN_MAX":
        return (x - stats["min"]) / (stats["max"] - stats["min"] + eps) * 2 - 1
    raise ValueError(mode)


def unnormalize(y: torch.Tensor, mode: str, stats: dict) -> torch.Tensor:
    if mode == "IDENTITY":
        return y
    if mode == "MEAN_STD":
        return y * stats["std"] + stats["mean"]
    if mode == "MIN_MAX":
        return (y + 1) / 2 * (stats["max"] - stats["min"]) + stats["min"]
    raise ValueError(mode)
