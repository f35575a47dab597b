"""Generated protobuf and gRPC code of the Octo API (octo.v1)."""
