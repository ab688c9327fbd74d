"""Layer 3: exporting a model for other runtimes (ONNX)."""
