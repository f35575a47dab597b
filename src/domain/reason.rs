//! The one registry of error reasons: the stable strings clients switch on, in
//! `google.rpc.ErrorInfo.reason` (domain `octo.v1`) of every error status, in
//! `ErrorEvent.reason` and in `TurnError.reason`. Every reason the code gives is a
//! constant here; `proto/octo/v1/error_reason.proto` documents each one as
//! `ERROR_REASON_<reason>` for clients. tests/reasons.rs checks both ways: every constant
//! (and every `<RESOURCE>_NOT_FOUND` / `_ALREADY_EXISTS` that `Error::reason` derives) is
//! in the proto, and no reason-shaped string literal in `src/` bypasses this module.

// ---- Request errors (Error variants without a reason of their own) ----
/// INVALID_ARGUMENT: field violations say which fields and why.
pub const INVALID_ARGUMENT: &str = "INVALID_ARGUMENT";
/// ABORTED: the resource changed since the client read it (etag mismatch).
pub const ETAG_MISMATCH: &str = "ETAG_MISMATCH";
/// UNAUTHENTICATED: no token, or a wrong one.
pub const UNAUTHENTICATED: &str = "UNAUTHENTICATED";
/// UNIMPLEMENTED.
pub const NOT_IMPLEMENTED: &str = "NOT_IMPLEMENTED";
/// INTERNAL: a fault of the server; the log has the cause.
pub const INTERNAL: &str = "INTERNAL";

// ---- Sessions and turns ----
/// FAILED_PRECONDITION: a turn runs; send with another on_busy policy, or wait.
pub const SESSION_BUSY: &str = "SESSION_BUSY";
/// RESOURCE_EXHAUSTED: the session's queue of turns is full.
pub const QUEUE_FULL: &str = "QUEUE_FULL";
/// FAILED_PRECONDITION: the session is in the trash; restore it first.
pub const SESSION_DELETED: &str = "SESSION_DELETED";
/// FAILED_PRECONDITION: only a session in the trash can be purged.
pub const SESSION_NOT_DELETED: &str = "SESSION_NOT_DELETED";
/// DEADLINE_EXCEEDED (SendMessageAndWait): the turn goes on; follow it by its name.
pub const TURN_STILL_RUNNING: &str = "TURN_STILL_RUNNING";
/// Turn error: the turn made `max_steps` model requests.
pub const STEP_LIMIT: &str = "STEP_LIMIT";
/// Turn error: the server stopped while the turn ran.
pub const SERVER_SHUTDOWN: &str = "SERVER_SHUTDOWN";
/// Turn error: the server restarted while the turn ran (found at start).
pub const SERVER_RESTARTED: &str = "SERVER_RESTARTED";
/// Turn error: the server running the turn died; another took the session over.
pub const SERVER_LOST: &str = "SERVER_LOST";
/// Error event / UNAVAILABLE: the conversation could not be summarised (compaction).
pub const COMPACTION_FAILED: &str = "COMPACTION_FAILED";

// ---- Models and providers ----
/// FAILED_PRECONDITION: no model is configured, so no turn can run.
pub const NO_MODEL_CONFIGURED: &str = "NO_MODEL_CONFIGURED";
/// FAILED_PRECONDITION: the model cannot be used as configured (e.g. its key is missing).
pub const MODEL_MISCONFIGURED: &str = "MODEL_MISCONFIGURED";
/// FAILED_PRECONDITION: sessions or schedules use the model; delete with force.
pub const MODEL_IN_USE: &str = "MODEL_IN_USE";
/// FAILED_PRECONDITION: exactly one model is the default; choose another first.
pub const DEFAULT_MODEL_REQUIRED: &str = "DEFAULT_MODEL_REQUIRED";
/// FAILED_PRECONDITION: exactly one profile is the default; choose another first.
pub const DEFAULT_PROFILE_REQUIRED: &str = "DEFAULT_PROFILE_REQUIRED";
/// Error event: the session's model is gone; the turn used the default model.
pub const MODEL_FALLBACK: &str = "MODEL_FALLBACK";
/// Turn error: the provider could not be reached, was overloaded or rate-limited.
pub const PROVIDER_UNAVAILABLE: &str = "PROVIDER_UNAVAILABLE";
/// Turn error: the provider refused the key.
pub const PROVIDER_UNAUTHENTICATED: &str = "PROVIDER_UNAUTHENTICATED";
/// Turn error: the provider refused the request or the model id.
pub const PROVIDER_INVALID_REQUEST: &str = "PROVIDER_INVALID_REQUEST";
/// Turn error: the provider did not answer in time.
pub const PROVIDER_TIMEOUT: &str = "PROVIDER_TIMEOUT";
/// Turn error: the provider's answer broke its wire format.
pub const PROVIDER_PROTOCOL: &str = "PROVIDER_PROTOCOL";
/// Turn error: a provider failure of no other kind.
pub const PROVIDER_ERROR: &str = "PROVIDER_ERROR";

// ---- Files ----
/// FAILED_PRECONDITION: the file is larger than a download may be.
pub const FILE_TOO_LARGE: &str = "FILE_TOO_LARGE";
/// FAILED_PRECONDITION: the file cannot be read (permissions, a special file).
pub const FILE_NOT_ACCESSIBLE: &str = "FILE_NOT_ACCESSIBLE";
/// FAILED_PRECONDITION: the session's working dir does not exist on this server.
pub const WORKING_DIR_UNAVAILABLE: &str = "WORKING_DIR_UNAVAILABLE";

// ---- Schedules, webhooks and triggers ----
/// RESOURCE_EXHAUSTED (HTTP 413): a trigger call's body is larger than 1 MiB.
pub const PAYLOAD_TOO_LARGE: &str = "PAYLOAD_TOO_LARGE";
/// UNAVAILABLE: another server took the schedule run over; this one may not settle it.
pub const RUN_TAKEN_OVER: &str = "RUN_TAKEN_OVER";
/// FAILED_PRECONDITION: the delivery was delivered already; nothing to retry.
pub const WEBHOOK_DELIVERED: &str = "WEBHOOK_DELIVERED";

// ---- The server, the cluster and the storage ----
/// RESOURCE_EXHAUSTED: the server serves `max_connections` connections already.
pub const TOO_MANY_CONNECTIONS: &str = "TOO_MANY_CONNECTIONS";
/// RESOURCE_EXHAUSTED: the server serves `max_streams` streams already.
pub const TOO_MANY_STREAMS: &str = "TOO_MANY_STREAMS";
/// PERMISSION_DENIED: the Host header is not one this server answers to.
pub const HOST_NOT_ALLOWED: &str = "HOST_NOT_ALLOWED";
/// PERMISSION_DENIED: a browser page of another origin.
pub const ORIGIN_NOT_ALLOWED: &str = "ORIGIN_NOT_ALLOWED";
/// UNAVAILABLE: the session moved to another server meanwhile; retry.
pub const NOT_OWNER: &str = "NOT_OWNER";
/// UNAVAILABLE: this server's lease on the session lapsed; retry.
pub const LEASE_LOST: &str = "LEASE_LOST";
/// UNAVAILABLE: too many concurrent changes to the resource; retry.
pub const CONTENDED: &str = "CONTENDED";
/// UNAVAILABLE: the server owning the session cannot be reached.
pub const PEER_UNREACHABLE: &str = "PEER_UNREACHABLE";
/// PERMISSION_DENIED: a server-to-server call to a server not in a cluster.
pub const NOT_A_CLUSTER: &str = "NOT_A_CLUSTER";
/// FAILED_PRECONDITION (at start): another server uses the database without a cluster.
pub const DATABASE_IN_USE: &str = "DATABASE_IN_USE";
/// INVALID_ARGUMENT (at start): the database URL asks for TLS, which is not built in.
pub const POSTGRES_TLS_UNSUPPORTED: &str = "POSTGRES_TLS_UNSUPPORTED";

/// Every reason above. `Error::reason` also derives `<RESOURCE>_NOT_FOUND` and
/// `<RESOURCE>_ALREADY_EXISTS` from `Resource`.
pub const ALL: &[&str] = &[
    INVALID_ARGUMENT,
    ETAG_MISMATCH,
    UNAUTHENTICATED,
    NOT_IMPLEMENTED,
    INTERNAL,
    SESSION_BUSY,
    QUEUE_FULL,
    SESSION_DELETED,
    SESSION_NOT_DELETED,
    TURN_STILL_RUNNING,
    STEP_LIMIT,
    SERVER_SHUTDOWN,
    SERVER_RESTARTED,
    SERVER_LOST,
    COMPACTION_FAILED,
    NO_MODEL_CONFIGURED,
    MODEL_MISCONFIGURED,
    MODEL_IN_USE,
    DEFAULT_MODEL_REQUIRED,
    DEFAULT_PROFILE_REQUIRED,
    MODEL_FALLBACK,
    PROVIDER_UNAVAILABLE,
    PROVIDER_UNAUTHENTICATED,
    PROVIDER_INVALID_REQUEST,
    PROVIDER_TIMEOUT,
    PROVIDER_PROTOCOL,
    PROVIDER_ERROR,
    FILE_TOO_LARGE,
    FILE_NOT_ACCESSIBLE,
    WORKING_DIR_UNAVAILABLE,
    PAYLOAD_TOO_LARGE,
    RUN_TAKEN_OVER,
    WEBHOOK_DELIVERED,
    TOO_MANY_CONNECTIONS,
    TOO_MANY_STREAMS,
    HOST_NOT_ALLOWED,
    ORIGIN_NOT_ALLOWED,
    NOT_OWNER,
    LEASE_LOST,
    CONTENDED,
    PEER_UNREACHABLE,
    NOT_A_CLUSTER,
    DATABASE_IN_USE,
    POSTGRES_TLS_UNSUPPORTED,
];
