// The connection to Octo: the typed gRPC-Web client of clients/typescript on this page's
// own origin, the bearer token (kept in localStorage, so for this origin only), and the
// connection state every view shows.
import { Code, ConnectError, createWebClient, errorDetails } from "../../typescript/src/web.js";
import type { OctoClient, WebClientOptions } from "../../typescript/src/web.js";

type Interceptor = NonNullable<WebClientOptions["interceptors"]>[number];

export * from "../../typescript/src/web.js";

const TOKEN_KEY = "octo.token";

export type ConnectionState = "connecting" | "online" | "reconnecting" | "offline" | "unauthenticated";

type Listener = () => void;

class Connection {
  client: OctoClient;
  token: string;
  state: ConnectionState = "connecting";
  /** Why the token was asked for: empty at first, a message after a refusal. */
  authMessage = "";
  private listeners = new Set<Listener>();

  constructor() {
    this.token = safeStorage()?.getItem(TOKEN_KEY) ?? "";
    this.client = this.makeClient();
  }

  private makeClient(): OctoClient {
    // Any answer from the server (a unary reply, a stream's headers) means online;
    // streams report their own drops (see session.ts, sessions.ts).
    const online: Interceptor = (next) => async (req) => {
      const res = await next(req);
      this.setState("online");
      return res;
    };
    return createWebClient({ baseUrl: location.origin, token: this.token || undefined, interceptors: [online] });
  }

  subscribe(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private emit() {
    for (const l of this.listeners) l();
  }

  setState(state: ConnectionState) {
    if (this.state === "unauthenticated" && state !== "online") return;
    if (state !== this.state) {
      this.state = state;
      this.emit();
    }
  }

  /** Stores a new token (empty: forget it) and reconnects everything. */
  setToken(token: string) {
    this.token = token.trim();
    const storage = safeStorage();
    if (this.token) storage?.setItem(TOKEN_KEY, this.token);
    else storage?.removeItem(TOKEN_KEY);
    this.client = this.makeClient();
    this.authMessage = "";
    this.state = "connecting";
    this.emit();
  }

  /**
   * Looks at an error of any call: UNAUTHENTICATED asks for a token (saying why when one
   * was sent); anything else is returned as a message for the view to show.
   */
  failed(err: unknown): string {
    const details = errorDetails(err);
    if (details.code === Code.Unauthenticated) {
      this.authMessage = this.token
        ? "The server refused this token. Check it and try again."
        : "This server requires a token.";
      this.state = "unauthenticated";
      this.emit();
    }
    return describe(err);
  }
}

/** A person-readable line for an error. */
export function describe(err: unknown): string {
  if (err instanceof ConnectError || (err as { code?: unknown })?.code !== undefined) {
    const d = errorDetails(err);
    const fields = d.fieldViolations.map((v) => `${v.field}: ${v.description}`).join("; ");
    return `${d.message || d.codeName}${fields && !d.message.includes(fields) ? ` (${fields})` : ""}`;
  }
  return err instanceof Error ? err.message : String(err);
}

export function isAbort(err: unknown): boolean {
  return err instanceof ConnectError && err.code === Code.Canceled;
}

function safeStorage(): Storage | undefined {
  try {
    return window.localStorage;
  } catch {
    return undefined;
  }
}

export const connection = new Connection();
