"""Files of trained networks: checkpoints, exported safetensors, model folders, ONNX graphs and
the official code's checkpoints. This layer reads and writes them; it builds on the models
and sampling only."""
