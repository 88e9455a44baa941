"""Independent PyTorch reference of SmolVLA (LeRobot) with the delta expert and CLS head (see ../README.md)."""
