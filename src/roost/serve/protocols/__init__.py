"""Wire protocols of the inference server: KServe V2 (v2) and TF-Serving REST (tfserving)."""
