"""The MLflow REST API of the team server: what the stock `mlflow` 3.x client calls for tracking, the model registry
and the artifact proxy, answered from roost's store with roost's permissions (docs/server.md, "MLflow clients")."""

__all__ = ["artifacts", "experiments", "models", "routes", "runs"]
