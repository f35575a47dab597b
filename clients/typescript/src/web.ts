/** Octo from browsers: gRPC-Web over fetch (Octo answers CORS for allowed origins). */
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import type { Interceptor, Transport } from "@connectrpc/connect";

import { bearerToken, createOctoClient } from "./index.js";
import type { OctoClient } from "./index.js";

export * from "./index.js";

export interface WebClientOptions {
  /** e.g. `http://127.0.0.1:50051`; another origin needs it in `cors_allowed_origins`. */
  baseUrl: string;
  /** Sent as `authorization: Bearer <token>`. */
  token?: string;
  interceptors?: Interceptor[];
}

/** A gRPC-Web transport to Octo for browsers. */
export function createWebTransport(options: WebClientOptions): Transport {
  return createGrpcWebTransport({
    baseUrl: options.baseUrl,
    interceptors: [bearerToken(options.token), ...(options.interceptors ?? [])],
  });
}

/** Typed clients of every Octo service for browsers. */
export function createWebClient(options: WebClientOptions): OctoClient {
  return createOctoClient(createWebTransport(options));
}
