/**
 * Octo from Node.js: gRPC over HTTP/2 (h2c for http:// URLs, TLS for https://) or
 * gRPC-Web over HTTP/1.1.
 */
import { createGrpcTransport, createGrpcWebTransport } from "@connectrpc/connect-node";
import type { Interceptor, Transport } from "@connectrpc/connect";

import { bearerToken, createOctoClient } from "./index.js";
import type { OctoClient } from "./index.js";

export * from "./index.js";

export interface NodeClientOptions {
  /** e.g. `http://127.0.0.1:50051`. */
  baseUrl: string;
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  /** `grpc` (default; HTTP/2) or `grpc-web` (HTTP/1.1). */
  protocol?: "grpc" | "grpc-web";
  interceptors?: Interceptor[];
}

/** A transport to Octo for Node.js. */
export function createNodeTransport(options: NodeClientOptions): Transport {
  const interceptors = [bearerToken(options.token), ...(options.interceptors ?? [])];
  if (options.protocol === "grpc-web") {
    return createGrpcWebTransport({ baseUrl: options.baseUrl, httpVersion: "1.1", interceptors });
  }
  return createGrpcTransport({ baseUrl: options.baseUrl, interceptors });
}

/** Typed clients of every Octo service for Node.js. */
export function createNodeClient(options: NodeClientOptions): OctoClient {
  return createOctoClient(createNodeTransport(options));
}
