"""The Shoal coordinator: the gRPC server in front of the grid."""

__version__ = "0.1.0"
