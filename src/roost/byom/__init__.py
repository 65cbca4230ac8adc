"""Bring your own model: convert scikit-learn, LightGBM, XGBoost, PyTorch and ONNX models into roost packages."""
