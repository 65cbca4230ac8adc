"""KServe V2 / Open Inference Protocol over gRPC (`inference.GRPCInferenceService`), served next to HTTP."""

from roost.serve.grpc.server import start_server

__all__ = ["start_server"]
