"""Wire protocols of the inference server: KServe V2 (v2) and TF-Serving REST (tfserving)."""

__all__ = ["tfserving", "v2"]
