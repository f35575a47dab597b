// The live state of one open session, kept exact across dropped connections:
//
// - Open: StreamEvents(after 0) gives a snapshot (its last sequence L and the message
//   being streamed, as of L) and then live events after L; ListMessages gives the stored
//   history, merged by message name. A message started after L is rebuilt from its
//   `messageStarted` (which clears whatever a stored checkpoint held), so a checkpoint and
//   its deltas never add up twice.
// - Drop: resubscribe after the last sequence seen: the server replays every later event
//   exactly once; events at or below it are ignored anyway. A `streamReset` (the resume
//   point is no longer retained) reloads from scratch.
// - Older history: ListMessages pages (newest first) as the view asks for them.
import type {
  Confirmation,
  ContextCompacted,
  FileChanged,
  InputRequest,
  Message,
  OctoClient,
  Part,
  Session,
  SessionEvent,
  ToolCallRecord,
  Turn,
} from "./api.js";
import { Code, ConnectError, Role, TurnStatus, ToolCallStatus, connection, isAbort } from "./api.js";

export interface ToolState {
  id: string;
  tool: string;
  args: string;
  output: string;
  status: ToolCallStatus;
  exitCode?: number;
  durationMs?: number;
  isError: boolean;
  /** `sessions/{s}/confirmations/{c}` while the call waits for an answer. */
  confirmation?: string;
  reason?: string;
  /** The model's question (an `ask_user` call) while it waits for the user's answer. */
  input?: InputRequest;
  /** Files the call created or changed (`fileChanged` events), in order. */
  changes: FileChanged[];
}

export interface ViewMessage {
  name: string;
  role: Role;
  turn: string;
  parts: Part[];
  incomplete: boolean;
  /** Still receiving deltas. */
  streaming: boolean;
}

const PAGE = 50;

export class SessionModel {
  session?: Session;
  messages = new Map<string, ViewMessage>();
  tools = new Map<string, ToolState>();
  activeTurn?: Turn;
  queued: Turn[] = [];
  turnErrors = new Map<string, string>();
  lastSequence = 0n;
  olderToken = "";
  historyLoaded = false;
  loadingOlder = false;
  error = "";
  deleted = false;
  /** The latest compaction seen while open (`contextCompacted`), shown as a notice. */
  compacted?: ContextCompacted;
  /** How many times a `streamReset` made the view reload (shown as data-resets). */
  resets = 0;
  /** Bumped on every change, for views. */
  version = 0;
  private abort?: AbortController;
  private listeners = new Set<() => void>();
  private closed = false;
  private scheduled = false;

  constructor(
    readonly name: string,
    private client: () => OctoClient,
  ) {}

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Coalesces notifications to one per animation frame (a fast stream, few paints). */
  private changed() {
    this.version++;
    if (this.scheduled) return;
    this.scheduled = true;
    requestAnimationFrame(() => {
      this.scheduled = false;
      for (const l of this.listeners) l();
    });
  }

  start() {
    void this.run();
  }

  close() {
    this.closed = true;
    this.abort?.abort();
  }

  /** Ordered messages (names are time-ordered ids). */
  ordered(): ViewMessage[] {
    return [...this.messages.values()].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  private reset() {
    this.messages.clear();
    this.tools.clear();
    this.turnErrors.clear();
    this.lastSequence = 0n;
    this.olderToken = "";
    this.historyLoaded = false;
    this.activeTurn = undefined;
    this.queued = [];
  }

  private async run() {
    let delay = 250;
    let fresh = true;
    while (!this.closed) {
      this.abort = new AbortController();
      const resuming = !fresh;
      try {
        const stream = this.client().chat.streamEvents(
          { session: this.name, afterSequence: resuming ? this.lastSequence : 0n },
          { signal: this.abort.signal },
        );
        let reload = false;
        for await (const event of stream) {
          delay = 250;
          connection.setState("online");
          if (event.kind.case === "streamReset") {
            reload = true;
            break;
          }
          this.apply(event, resuming);
          if (event.kind.case === "snapshot" && !resuming) void this.loadHistory();
          if (this.deleted) return;
        }
        if (reload) {
          this.abort.abort();
          this.reset();
          this.resets++;
          fresh = true;
          continue;
        }
        // The server ended the stream (shutting down): resume.
        fresh = false;
      } catch (err) {
        if (this.closed || (isAbort(err) && this.abort.signal.aborted)) return;
        if (err instanceof ConnectError && (err.code === Code.NotFound || err.code === Code.InvalidArgument)) {
          this.error = connection.failed(err);
          this.changed();
          return;
        }
        const message = connection.failed(err);
        if (err instanceof ConnectError && err.code === Code.Unauthenticated) {
          this.error = message;
          this.changed();
          return;
        }
        connection.setState("reconnecting");
        // Nothing seen yet: start over rather than resume from nothing.
        fresh = fresh && this.lastSequence === 0n;
      }
      await new Promise((ok) => setTimeout(ok, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }

  private async loadHistory() {
    try {
      const [page, turns] = await Promise.all([
        this.client().chat.listMessages({ parent: this.name, pageSize: PAGE }),
        this.client().chat.listTurns({ parent: this.name, pageSize: PAGE }),
      ]);
      // Failed turns' errors show in place, under the turn's last message.
      for (const turn of turns.turns) {
        if (turn.status === TurnStatus.FAILED && turn.error && !this.turnErrors.has(turn.name)) {
          this.turnErrors.set(turn.name, `${turn.error.reason}: ${turn.error.message}`);
        }
      }
      this.mergeHistory(page.messages);
      this.olderToken = page.nextPageToken;
      this.historyLoaded = true;
      this.changed();
    } catch (err) {
      this.error = connection.failed(err);
      this.changed();
    }
  }

  async loadOlder() {
    if (!this.olderToken || this.loadingOlder) return;
    this.loadingOlder = true;
    this.changed();
    try {
      const page = await this.client().chat.listMessages({
        parent: this.name,
        pageSize: PAGE,
        pageToken: this.olderToken,
      });
      this.mergeHistory(page.messages);
      this.olderToken = page.nextPageToken;
    } catch (err) {
      this.error = connection.failed(err);
    } finally {
      this.loadingOlder = false;
      this.changed();
    }
  }

  /** Stored messages, each only when the live stream has not already given it. */
  private mergeHistory(messages: Message[]) {
    for (const m of messages) {
      if (this.messages.has(m.name)) continue;
      this.put(m, false);
    }
  }

  private put(m: Message, streaming: boolean) {
    this.messages.set(m.name, {
      name: m.name,
      role: m.role,
      turn: m.turn,
      parts: m.parts.map((p) => ({ ...p, kind: { ...p.kind } }) as Part),
      incomplete: m.incomplete,
      streaming,
    });
    for (const part of m.parts) {
      if (part.kind.case === "toolCall") {
        const call = part.kind.value;
        this.tool(call.id, call.tool, call.argumentsJson);
      } else if (part.kind.case === "toolResult") {
        // From history (or the live tool message): the live record, when seen, is exact.
        const result = part.kind.value;
        const tool = this.tool(result.toolCallId, "", "");
        if (!tool.output) tool.output = result.output;
        if (tool.status === ToolCallStatus.UNSPECIFIED) {
          tool.isError = result.isError;
          tool.status = result.isError ? ToolCallStatus.FAILED : ToolCallStatus.SUCCEEDED;
        }
      }
    }
  }

  private tool(id: string, name: string, args: string): ToolState {
    let tool = this.tools.get(id);
    if (!tool) {
      tool = { id, tool: name, args, output: "", status: ToolCallStatus.UNSPECIFIED, isError: false, changes: [] };
      this.tools.set(id, tool);
    }
    if (name) tool.tool = name;
    if (args) tool.args = args;
    return tool;
  }

  private record(record: ToolCallRecord, durationMs?: number) {
    const call = record.call;
    if (!call) return;
    const tool = this.tool(call.id, call.tool, call.argumentsJson);
    tool.status = record.status;
    tool.exitCode = record.exitCode;
    if (durationMs !== undefined) tool.durationMs = durationMs;
    if (record.result) {
      tool.isError = record.result.isError;
      // The streamed output is kept; a call that streamed nothing shows its result.
      if (!tool.output) tool.output = record.result.output;
    }
    if (tool.status !== ToolCallStatus.AWAITING_CONFIRMATION) tool.confirmation = undefined;
    if (tool.status !== ToolCallStatus.RUNNING) tool.input = undefined;
  }

  private input(r: InputRequest) {
    const tool = this.tool(r.toolCallId, "ask_user", "");
    tool.input = r;
  }

  private confirmation(c: Confirmation) {
    if (!c.toolCall) return;
    const tool = this.tool(c.toolCall.id, c.toolCall.tool, c.toolCall.argumentsJson);
    tool.confirmation = c.name;
    tool.reason = c.reason;
    tool.status = ToolCallStatus.AWAITING_CONFIRMATION;
  }

  /** Applies one event; `resuming`: the snapshot's partial message is already known. */
  apply(event: SessionEvent, resuming: boolean) {
    const seq = event.sequence;
    if (seq !== 0n) {
      if (seq <= this.lastSequence) return; // already applied
      this.lastSequence = seq;
    }
    const k = event.kind;
    switch (k.case) {
      case "snapshot": {
        const s = k.value;
        this.session = s.session;
        this.activeTurn = s.activeTurn;
        this.queued = [...s.queuedTurns];
        for (const tool of this.tools.values()) {
          tool.confirmation = undefined;
          tool.input = undefined;
        }
        for (const c of s.pendingConfirmations) this.confirmation(c);
        for (const r of s.pendingInputRequests) this.input(r);
        if (!resuming) {
          this.lastSequence = s.lastSequence;
          if (s.partialMessage?.name) this.put(s.partialMessage, true);
        }
        break;
      }
      case "turnQueued":
        if (k.value.turn) this.queued = [...this.queued.filter((t) => t.name !== k.value.turn!.name), k.value.turn];
        break;
      case "turnStarted":
        this.activeTurn = k.value.turn;
        this.queued = this.queued.filter((t) => t.name !== k.value.turn?.name);
        break;
      case "messageStarted":
        this.messages.set(k.value.message, {
          name: k.value.message,
          role: k.value.role,
          turn: event.turn,
          parts: [],
          incomplete: false,
          streaming: true,
        });
        break;
      case "contentStarted": {
        const m = this.messages.get(k.value.message);
        if (m && !m.parts[k.value.index]) {
          m.parts[k.value.index] = {
            kind: k.value.kind === 2 ? { case: "reasoning", value: "" } : { case: "text", value: "" },
          } as Part;
        }
        break;
      }
      case "textDelta":
      case "reasoningDelta": {
        const m = this.messages.get(k.value.message);
        if (!m) break;
        const part = m.parts[k.value.index];
        const wanted = k.case === "textDelta" ? "text" : "reasoning";
        if (part && part.kind.case === wanted) {
          part.kind.value += k.value.text;
        } else {
          m.parts[k.value.index] = { kind: { case: wanted, value: k.value.text } } as Part;
        }
        break;
      }
      case "toolCallStarted": {
        const call = k.value.toolCall;
        if (call) this.tool(call.id, call.tool, call.argumentsJson).status = ToolCallStatus.RUNNING;
        break;
      }
      case "toolCallOutput": {
        const tool = this.tool(k.value.toolCallId, "", "");
        tool.output += k.value.text;
        break;
      }
      case "toolCallFinished":
        if (k.value.record) {
          const d = k.value.duration;
          this.record(k.value.record, d ? Number(d.seconds) * 1000 + Math.round(d.nanos / 1e6) : undefined);
        }
        break;
      case "confirmationRequested":
        if (k.value.confirmation) this.confirmation(k.value.confirmation);
        break;
      case "confirmationResolved":
        for (const tool of this.tools.values()) {
          if (tool.confirmation === k.value.confirmation) {
            tool.confirmation = undefined;
            if (tool.status === ToolCallStatus.AWAITING_CONFIRMATION) {
              tool.status = k.value.decision === 2 ? ToolCallStatus.DENIED : ToolCallStatus.RUNNING;
            }
          }
        }
        break;
      case "inputRequested":
        if (k.value.inputRequest) this.input(k.value.inputRequest);
        break;
      case "inputResolved":
        for (const tool of this.tools.values()) {
          if (tool.input?.name === k.value.inputRequest) tool.input = undefined;
        }
        break;
      case "fileChanged": {
        const tool = this.tool(k.value.toolCallId, "", "");
        tool.changes = [...tool.changes.filter((c) => c.path !== k.value.path), k.value];
        break;
      }
      case "contextCompacted":
        this.compacted = k.value;
        break;
      case "messageCompleted":
        if (k.value.message) this.put(k.value.message, false);
        break;
      case "turnFinished": {
        const turn = k.value.turn;
        if (turn) {
          if (this.activeTurn?.name === turn.name) this.activeTurn = undefined;
          this.queued = this.queued.filter((t) => t.name !== turn.name);
          if (turn.status === TurnStatus.FAILED && turn.error) {
            this.turnErrors.set(turn.name, `${turn.error.reason}: ${turn.error.message}`);
          }
          for (const m of this.messages.values()) if (m.turn === turn.name) m.streaming = false;
          for (const r of turn.toolCalls) this.record(r);
        }
        break;
      }
      case "sessionUpdated":
        this.session = k.value.session;
        break;
      case "sessionDeleted":
        this.deleted = true;
        break;
      case "error":
        this.error = `${k.value.reason}: ${k.value.message}`;
        break;
    }
    this.changed();
  }

  get running(): boolean {
    return !!this.activeTurn;
  }

  get pendingConfirmations(): ToolState[] {
    return [...this.tools.values()].filter((t) => t.confirmation);
  }

  /** Whether a message is a user's or assistant's (tool results fill the cards instead). */
  static visible(m: ViewMessage): boolean {
    return m.role === Role.USER || m.role === Role.ASSISTANT;
  }
}
