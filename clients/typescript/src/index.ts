/**
 * Octo client core: the generated services and messages (protobuf-es 2.x), typed clients
 * for @connectrpc/connect 2.x over any transport, streaming helpers and error details.
 * Transports: `@octo-agents/octo-client/node` (gRPC over HTTP/2, or gRPC-Web) and
 * `@octo-agents/octo-client/web` (gRPC-Web from browsers).
 */
import { Code, ConnectError, createClient } from "@connectrpc/connect";
import type { Client, Interceptor, Transport } from "@connectrpc/connect";
import { create } from "@bufbuild/protobuf";

import { ChatService } from "./gen/octo/v1/chat_service_pb.js";
import { FileService } from "./gen/octo/v1/file_service_pb.js";
import type { ChatRequest } from "./gen/octo/v1/chat_service_pb.js";
import type { SessionEvent } from "./gen/octo/v1/event_pb.js";
import { PartSchema } from "./gen/octo/v1/message_pb.js";
import { ModelService } from "./gen/octo/v1/model_pb.js";
import { ScheduleService } from "./gen/octo/v1/schedule_pb.js";
import { SessionService } from "./gen/octo/v1/session_service_pb.js";
import { WebhookService } from "./gen/octo/v1/webhook_service_pb.js";
import {
  BadRequestSchema,
  ErrorInfoSchema,
  ResourceInfoSchema,
  RetryInfoSchema,
} from "./gen/google/rpc/error_details_pb.js";
import type {
  BadRequest_FieldViolation,
  ErrorInfo,
  ResourceInfo,
  RetryInfo,
} from "./gen/google/rpc/error_details_pb.js";

export * from "./gen/octo/v1/chat_service_pb.js";
export * from "./gen/octo/v1/error_reason_pb.js";
export * from "./gen/octo/v1/event_pb.js";
export * from "./gen/octo/v1/file_service_pb.js";
export * from "./gen/octo/v1/message_pb.js";
export * from "./gen/octo/v1/model_pb.js";
export * from "./gen/octo/v1/schedule_pb.js";
export * from "./gen/octo/v1/session_pb.js";
export * from "./gen/octo/v1/session_service_pb.js";
export * from "./gen/octo/v1/webhook_service_pb.js";
export * from "./gen/google/rpc/error_details_pb.js";
export { Code, ConnectError } from "@connectrpc/connect";
/** Canonical proto3 JSON of any message, e.g. `toJsonString(SessionArchiveSchema, archive)`. */
export { fromJsonString, toJsonString } from "@bufbuild/protobuf";

/** Typed clients of every Octo service over one transport. */
export interface OctoClient {
  sessions: Client<typeof SessionService>;
  chat: Client<typeof ChatService>;
  models: Client<typeof ModelService>;
  schedules: Client<typeof ScheduleService>;
  webhooks: Client<typeof WebhookService>;
  /** A session's working dir: list, stat, download (HttpBody chunks), chunked upload. */
  files: Client<typeof FileService>;
}

/** The typed clients of every service over `transport`. */
export function createOctoClient(transport: Transport): OctoClient {
  return {
    sessions: createClient(SessionService, transport),
    chat: createClient(ChatService, transport),
    models: createClient(ModelService, transport),
    schedules: createClient(ScheduleService, transport),
    webhooks: createClient(WebhookService, transport),
    files: createClient(FileService, transport),
  };
}

/** An interceptor sending `authorization: Bearer <token>` (nothing when token is empty). */
export function bearerToken(token: string | undefined): Interceptor {
  return (next) => async (req) => {
    if (token) req.header.set("authorization", `Bearer ${token}`);
    return next(req);
  };
}

/** Options of {@link chat}. */
export interface ChatOptions {
  /** Aborting stops the stream (not the turn: ChatService.CancelTurn does that). */
  signal?: AbortSignal;
  /** What to do while a turn runs (BusyPolicy); the server default is ENQUEUE. */
  onBusy?: ChatRequest["onBusy"];
  /** A model for this turn only, `models/{model}`. */
  model?: string;
  timeoutMs?: number;
}

/**
 * Sends a text message and yields the turn's events; the stream ends after the terminal
 * `turnFinished`. Errors are thrown as ConnectError (see {@link errorDetails}).
 */
export function chat(
  client: OctoClient,
  session: string,
  text: string,
  options: ChatOptions = {},
): AsyncIterable<SessionEvent> {
  return endsOnBreak(options.signal, (signal) =>
    client.chat.chat(
      {
        session: sessionName(session),
        parts: [create(PartSchema, { kind: { case: "text", value: text } })],
        onBusy: options.onBusy,
        model: options.model ?? "",
      },
      { signal, timeoutMs: options.timeoutMs },
    ),
  );
}

/**
 * Streams a snapshot, every event after `afterSequence`, then live events. It does not
 * end by itself: abort the signal (or `break`) when done.
 */
export function streamEvents(
  client: OctoClient,
  session: string,
  afterSequence: bigint | number = 0n,
  options: { signal?: AbortSignal } = {},
): AsyncIterable<SessionEvent> {
  return endsOnBreak(options.signal, (signal) =>
    client.chat.streamEvents(
      { session: sessionName(session), afterSequence: BigInt(afterSequence) },
      { signal },
    ),
  );
}

/**
 * A call's stream that ends the call when the consumer stops early (`break`, `return` or
 * an exception in a `for await` body), not only when `signal` aborts. Connect's own
 * stream iterators do not forward `return()`, so without this the request stays open
 * (the server still counts the stream) and, in Node.js, keeps the process alive.
 */
export function endsOnBreak<T>(
  signal: AbortSignal | undefined,
  start: (signal: AbortSignal) => AsyncIterable<T>,
): AsyncIterable<T> {
  return {
    [Symbol.asyncIterator](): AsyncIterator<T> {
      const controller = new AbortController();
      const forward = () => controller.abort(signal?.reason);
      if (signal?.aborted) forward();
      else signal?.addEventListener("abort", forward, { once: true });
      const release = () => signal?.removeEventListener("abort", forward);
      const inner = start(controller.signal)[Symbol.asyncIterator]();
      return {
        async next() {
          try {
            const result = await inner.next();
            if (result.done) release();
            return result;
          } catch (err) {
            release();
            throw err;
          }
        },
        async return(value?: unknown) {
          release();
          controller.abort();
          return { done: true, value: value as T };
        },
      };
    },
  };
}

/** `sessions/{id}` from a bare id or a name. */
export function sessionName(session: string): string {
  return session.startsWith("sessions/") ? session : `sessions/${session}`;
}

/** Whether an event ends its turn (`turnFinished`) or its session (`sessionDeleted`). */
export function isTerminal(event: SessionEvent): boolean {
  return event.kind.case === "turnFinished" || event.kind.case === "sessionDeleted";
}

/** The concatenated text deltas of some events. */
export function textOf(events: Iterable<SessionEvent>): string {
  let text = "";
  for (const e of events) if (e.kind.case === "textDelta") text += e.kind.value.text;
  return text;
}

/** Reads `stream` until `stop` holds for an event (included) or the stream ends. */
export async function collectUntil(
  stream: AsyncIterable<SessionEvent>,
  stop: (event: SessionEvent) => boolean = isTerminal,
): Promise<SessionEvent[]> {
  const events: SessionEvent[] = [];
  for await (const event of stream) {
    events.push(event);
    if (stop(event)) break;
  }
  return events;
}

/** An error's gRPC status and its google.rpc details. */
export interface OctoErrorDetails {
  code: Code;
  /** The Code's name, e.g. "NotFound". */
  codeName: string;
  message: string;
  /** ErrorInfo (domain "octo.v1", a stable reason such as SESSION_NOT_FOUND). */
  errorInfo?: ErrorInfo;
  reason: string;
  /** BadRequest field violations of an INVALID_ARGUMENT. */
  fieldViolations: BadRequest_FieldViolation[];
  /** ResourceInfo of a NOT_FOUND / ALREADY_EXISTS / ABORTED. */
  resourceInfo?: ResourceInfo;
  retryInfo?: RetryInfo;
}

/** The status and decoded details of any error thrown by an Octo call. */
export function errorDetails(err: unknown): OctoErrorDetails {
  const e = ConnectError.from(err);
  const errorInfo = e.findDetails(ErrorInfoSchema)[0];
  return {
    code: e.code,
    codeName: Code[e.code],
    message: e.rawMessage,
    errorInfo,
    reason: errorInfo?.reason ?? "",
    fieldViolations: e.findDetails(BadRequestSchema).flatMap((b) => b.fieldViolations),
    resourceInfo: e.findDetails(ResourceInfoSchema)[0],
    retryInfo: e.findDetails(RetryInfoSchema)[0],
  };
}
