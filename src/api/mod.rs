//! gRPC services: thin translation between proto and the runtime.
