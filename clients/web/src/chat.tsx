// The chat view of one session: its header (rename, pin, delete), the history with
// paging upward, the live turn (text, reasoning, tool cards with confirmations and the
// model's questions) and the
// composer (Enter sends; while a turn runs: queue, steer or interrupt; stop).
import { useEffect, useLayoutEffect, useMemo, useRef, useState } from "preact/hooks";

import {
  BusyPolicy,
  ConfirmationDecision,
  SessionArchiveSchema,
  ToolCallStatus,
  connection,
  toJsonString,
} from "./api.js";
import { onMarkdownClick, renderMarkdown } from "./markdown.js";
import type { SessionList } from "./sessions.js";
import type { Attachment, FileChanged, InputRequest, Part } from "./api.js";
import type { ToolState, ViewMessage } from "./session.js";
import { SessionModel } from "./session.js";
import { StatusBadge, useModels } from "./sidebar.js";
import { idOf, useSubscription } from "./util.js";

export function ChatView({ name, list }: { name: string; list: SessionList }) {
  const model = useMemo(() => new SessionModel(name, () => connection.client), [name]);
  useEffect(() => {
    model.start();
    return () => model.close();
  }, [model]);
  useSubscription(model);

  const scroller = useRef<HTMLDivElement>(null);
  const pinnedToBottom = useRef(true);
  // While older messages load above, keep what is on screen where it is.
  const fromBottom = useRef<number | null>(null);
  useLayoutEffect(() => {
    const el = scroller.current;
    if (!el) return;
    if (fromBottom.current !== null && !model.loadingOlder) {
      el.scrollTop = el.scrollHeight - fromBottom.current;
      fromBottom.current = null;
    } else if (pinnedToBottom.current) {
      el.scrollTop = el.scrollHeight;
    }
  });
  const loadOlder = () => {
    const el = scroller.current;
    if (!model.olderToken || model.loadingOlder || !el) return;
    fromBottom.current = el.scrollHeight - el.scrollTop;
    void model.loadOlder();
  };

  if (model.deleted) {
    return (
      <main class="chat empty">
        <p>This session was moved to the trash.</p>
      </main>
    );
  }
  const messages = model.ordered().filter(SessionModel.visible);
  const referenced = new Set<string>();
  for (const m of model.messages.values())
    for (const p of m.parts) if (p.kind.case === "toolCall") referenced.add(p.kind.value.id);
  const orphanTools = [...model.tools.values()].filter((t) => !referenced.has(t.id));

  return (
    <main class="chat" aria-label="Chat">
      <ChatHeader model={model} list={list} />
      <div
        class="messages"
        data-resets={model.resets}
        ref={scroller}
        onScroll={(e) => {
          const el = e.currentTarget as HTMLDivElement;
          pinnedToBottom.current = el.scrollHeight - el.scrollTop - el.clientHeight < 40;
          if (el.scrollTop < 40 && model.historyLoaded) loadOlder();
        }}
        aria-live="off"
      >
        {model.olderToken && (
          <button type="button" class="link older" onClick={loadOlder} disabled={model.loadingOlder}>
            {model.loadingOlder ? "Loading…" : "Load older messages"}
          </button>
        )}
        {!model.historyLoaded && !model.error && <p class="hint">Loading history…</p>}
        {messages.map((m, i) => (
          <MessageView
            key={m.name}
            message={m}
            model={model}
            error={messages[i + 1]?.turn !== m.turn ? model.turnErrors.get(m.turn) : undefined}
          />
        ))}
        {orphanTools.map((t) => (
          <ToolCard key={t.id} tool={t} />
        ))}
        {model.compacted && (
          <p class="notice compacted" role="status">
            Earlier messages were summarised to keep the conversation within the model's context (
            {model.compacted.replacedMessages} messages, ~{String(model.compacted.tokensBefore)} → ~
            {String(model.compacted.tokensAfter)} tokens). History still shows them all.
          </p>
        )}
        {model.error && (
          <p class="error" role="alert">
            {model.error}
          </p>
        )}
      </div>
      <Composer model={model} />
    </main>
  );
}

function ChatHeader({ model, list }: { model: SessionModel; list: SessionList }) {
  const s = model.session ?? list.sessions.get(model.name);
  const [renaming, setRenaming] = useState(false);
  const [confirmDelete, setConfirmDelete] = useState(false);
  const [error, setError] = useState("");
  async function update(fields: { displayName?: string; pinned?: boolean }) {
    try {
      const updated = await connection.client.sessions.updateSession({
        session: { name: model.name, ...fields },
        updateMask: { paths: Object.keys(fields).map((k) => (k === "displayName" ? "display_name" : k)) },
      });
      model.session = updated;
      list.put(updated);
      setError("");
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  async function exportSession() {
    try {
      const archive = await connection.client.sessions.exportSession({ name: model.name });
      const json = toJsonString(SessionArchiveSchema, archive, { prettySpaces: 2 });
      const link = document.createElement("a");
      link.href = URL.createObjectURL(new Blob([json], { type: "application/json" }));
      link.download = `${(s?.displayName || "session").replace(/[^\w.-]+/g, "_")}.octo.json`;
      link.click();
      setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
      setError("");
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  async function remove() {
    try {
      await connection.client.sessions.deleteSession({ name: model.name });
      list.remove(model.name);
      location.hash = "#/";
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  return (
    <header class="chat-header">
      <a href="#/" class="back link" aria-label="Back to sessions">
        ‹
      </a>
      {renaming ? (
        <form
          class="rename"
          onSubmit={(e) => {
            e.preventDefault();
            const value = new FormData(e.target as HTMLFormElement).get("title");
            setRenaming(false);
            void update({ displayName: String(value ?? "").trim() });
          }}
        >
          <label class="visually-hidden" for="rename-input">
            Session title
          </label>
          <input id="rename-input" name="title" defaultValue={s?.displayName ?? ""} autoFocus />
          <button type="submit">Save</button>
          <button type="button" onClick={() => setRenaming(false)}>
            Cancel
          </button>
        </form>
      ) : (
        <h1 class="chat-title">{s?.displayName || "Untitled"}</h1>
      )}
      {s && <StatusBadge session={s} />}
      <div class="actions">
        {!renaming && (
          <button type="button" onClick={() => setRenaming(true)}>
            Rename
          </button>
        )}
        <button type="button" aria-pressed={!!s?.pinned} onClick={() => void update({ pinned: !s?.pinned })}>
          {s?.pinned ? "Unpin" : "Pin"}
        </button>
        <button type="button" onClick={() => void exportSession()} title="Download the whole session as JSON">
          Export
        </button>
        {confirmDelete ? (
          <span class="confirm-delete" role="group" aria-label="Confirm delete">
            Move to the trash?
            <button type="button" class="danger" onClick={() => void remove()}>
              Yes, delete
            </button>
            <button type="button" onClick={() => setConfirmDelete(false)}>
              Keep
            </button>
          </span>
        ) : (
          <button type="button" class="danger" onClick={() => setConfirmDelete(true)}>
            Delete
          </button>
        )}
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </header>
  );
}

function MessageView({ message: m, model, error }: { message: ViewMessage; model: SessionModel; error?: string }) {
  const role = m.role === 1 ? "user" : "assistant";
  const [forkError, setForkError] = useState("");
  async function fork() {
    try {
      const title = model.session?.displayName || "Untitled";
      const forked = await connection.client.sessions.forkSession({
        name: model.name,
        upToMessage: m.name,
        displayName: `${title} (fork)`,
      });
      location.hash = `#/s/${idOf(forked.name)}`;
    } catch (err) {
      setForkError(connection.failed(err));
    }
  }
  return (
    <article
      class={`message ${role}`}
      data-name={m.name}
      data-streaming={m.streaming ? "true" : "false"}
      aria-label={role === "user" ? "You" : "Assistant"}
    >
      {m.parts.map((p, i) => {
        if (!p) return null;
        switch (p.kind.case) {
          case "text":
            return role === "user" ? (
              <div key={i} class="text plain">
                {p.kind.value}
              </div>
            ) : (
              <div
                key={i}
                class="text markdown"
                onClick={onMarkdownClick}
                dangerouslySetInnerHTML={{ __html: renderMarkdown(p.kind.value) }}
              />
            );
          case "reasoning":
            return (
              <details key={i} class="reasoning">
                <summary>Reasoning</summary>
                <div class="plain">{p.kind.value}</div>
              </details>
            );
          case "toolCall": {
            const tool = model.tools.get(p.kind.value.id);
            return tool ? <ToolCard key={i} tool={tool} /> : null;
          }
          case "attachment":
            return <AttachmentView key={i} attachment={p.kind.value} />;
          default:
            return null;
        }
      })}
      {m.incomplete && <p class="hint">(incomplete: the turn was interrupted)</p>}
      {role === "assistant" && !m.streaming && (
        <div class="message-actions">
          <button type="button" class="link" onClick={() => void fork()} title="A new session with the history up to here">
            Fork from here
          </button>
        </div>
      )}
      {forkError && (
        <p class="error" role="alert">
          {forkError}
        </p>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </article>
  );
}

/** Images the browser shows inline (as data: URLs: the CSP allows no other source). */
const INLINE_IMAGES = new Set(["image/png", "image/jpeg", "image/gif", "image/webp"]);

function AttachmentView({ attachment: a }: { attachment: Attachment }) {
  const name = a.filename || a.mimeType;
  if (a.source.case === "data" && INLINE_IMAGES.has(a.mimeType)) {
    let binary = "";
    for (const byte of a.source.value) binary += String.fromCharCode(byte);
    return <img class="attachment-image" alt={name} src={`data:${a.mimeType};base64,${btoa(binary)}`} />;
  }
  const size = a.source.case === "data" ? ` (${formatBytes(a.source.value.length)})` : "";
  return (
    <div class="attachment">
      📎 {name}
      {size}
    </div>
  );
}

function formatBytes(n: number): string {
  return n < 1024 ? `${n} B` : n < 1024 * 1024 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1024 / 1024).toFixed(1)} MB`;
}

const TOOL_STATUS: Record<number, string> = {
  [ToolCallStatus.AWAITING_CONFIRMATION]: "awaiting approval",
  [ToolCallStatus.RUNNING]: "running",
  [ToolCallStatus.SUCCEEDED]: "done",
  [ToolCallStatus.FAILED]: "failed",
  [ToolCallStatus.DENIED]: "denied",
  [ToolCallStatus.CANCELLED]: "cancelled",
};

function ToolCard({ tool }: { tool: ToolState }) {
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  async function respond(decision: ConfirmationDecision) {
    if (!tool.confirmation) return;
    setBusy(true);
    try {
      await connection.client.chat.respondToConfirmation({ name: tool.confirmation, decision });
      setError("");
    } catch (err) {
      setError(connection.failed(err));
    } finally {
      setBusy(false);
    }
  }
  let args = tool.args;
  try {
    args = JSON.stringify(JSON.parse(tool.args), null, 2);
  } catch {
    /* shown as sent */
  }
  return (
    <section class={`tool-card status-${tool.status}`} data-tool-call={tool.id} aria-label={`Tool call ${tool.tool}`}>
      <header>
        <span class="tool-name">{tool.tool || "tool"}</span>
        <span class="tool-status" data-status={tool.status}>
          {TOOL_STATUS[tool.status] ?? ""}
        </span>
        {tool.exitCode !== undefined && <span class="exit-code">exit {tool.exitCode}</span>}
        {tool.durationMs !== undefined && <span class="duration">{(tool.durationMs / 1000).toFixed(2)} s</span>}
      </header>
      <pre class="tool-args">{args}</pre>
      {tool.confirmation && (
        <div class="confirm" role="group" aria-label="Approve this tool call">
          {tool.reason && <p>{tool.reason}</p>}
          <button type="button" class="primary" disabled={busy} onClick={() => void respond(ConfirmationDecision.ALLOW)}>
            Allow
          </button>
          <button type="button" class="danger" disabled={busy} onClick={() => void respond(ConfirmationDecision.DENY)}>
            Deny
          </button>
          <button type="button" disabled={busy} onClick={() => void respond(ConfirmationDecision.ALLOW_ALWAYS)}>
            Always allow {tool.tool}
          </button>
        </div>
      )}
      {tool.input && <Question request={tool.input} />}
      {tool.output && <pre class={`tool-output ${tool.isError ? "is-error" : ""}`}>{tool.output}</pre>}
      {tool.changes.map((c) => (
        <FileChangeView key={c.path} change={c} />
      ))}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </section>
  );
}

const CHANGE_KIND: Record<number, string> = { 1: "created", 2: "modified", 3: "deleted" };

/** A file a tool call created or changed: its path, and its diff folded away. */
function FileChangeView({ change }: { change: FileChanged }) {
  const kind = CHANGE_KIND[change.kind] ?? "changed";
  return (
    <details class="file-change" data-path={change.path} data-kind={kind}>
      <summary>
        <span class="file-change-kind">{kind}</span> <code>{change.path}</code>{" "}
        <span class="hint">{Number(change.size)} bytes</span>
      </summary>
      {change.diff ? (
        <pre class="diff">
          {change.diff.split("\n").map((line, i) => (
            <span key={i} class={line.startsWith("+") ? "add" : line.startsWith("-") ? "del" : undefined}>
              {line}
              {"\n"}
            </span>
          ))}
          {change.diffTruncated && <span class="hint">… (diff cut)</span>}
        </pre>
      ) : (
        <p class="hint">No diff (binary content or too large).</p>
      )}
    </details>
  );
}

/** The model's question (`ask_user`): a button per choice, a text field where free text is allowed. */
function Question({ request }: { request: InputRequest }) {
  const [text, setText] = useState("");
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  async function answer(value: string) {
    if (!value.trim() || busy) return;
    setBusy(true);
    try {
      await connection.client.chat.respondToInput({ name: request.name, answer: value });
      setError("");
    } catch (err) {
      setError(connection.failed(err));
    } finally {
      setBusy(false);
    }
  }
  return (
    <div class="confirm ask" role="group" aria-label="Answer the question">
      <p class="question">{request.question}</p>
      {request.choices.map((choice) => (
        <button type="button" key={choice} disabled={busy} onClick={() => void answer(choice)}>
          {choice}
        </button>
      ))}
      {request.allowFreeText && (
        <form
          onSubmit={(e) => {
            e.preventDefault();
            void answer(text);
          }}
        >
          <input
            aria-label="Your answer"
            value={text}
            disabled={busy}
            onInput={(e) => setText((e.target as HTMLInputElement).value)}
          />
          <button type="submit" class="primary" disabled={busy || !text.trim()}>
            Answer
          </button>
        </form>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}

function Composer({ model }: { model: SessionModel }) {
  const [text, setText] = useState("");
  const [policy, setPolicy] = useState<BusyPolicy>(BusyPolicy.ENQUEUE);
  const [error, setError] = useState("");
  const [sending, setSending] = useState(false);
  const [turnModel, setTurnModel] = useState("");
  const [files, setFiles] = useState<File[]>([]);
  const models = useModels();
  const running = model.running;
  async function send() {
    const value = text.trim();
    if ((!value && files.length === 0) || sending) return;
    setSending(true);
    try {
      const parts: Part[] = value ? [{ kind: { case: "text", value } } as Part] : [];
      for (const file of files) {
        parts.push({
          kind: {
            case: "attachment",
            value: {
              mimeType: file.type || "application/octet-stream",
              filename: file.name,
              source: { case: "data", value: new Uint8Array(await file.arrayBuffer()) },
            },
          },
        } as Part);
      }
      await connection.client.chat.sendMessage({
        session: model.name,
        parts,
        onBusy: running ? policy : BusyPolicy.ENQUEUE,
        model: turnModel,
      });
      setText("");
      setFiles([]);
      setError("");
    } catch (err) {
      setError(connection.failed(err));
    } finally {
      setSending(false);
    }
  }
  async function stop() {
    if (!model.activeTurn) return;
    try {
      await connection.client.chat.cancelTurn({ name: model.activeTurn.name });
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  async function clearQueue() {
    try {
      await connection.client.chat.clearQueue({ session: model.name });
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  return (
    <form
      class="composer"
      onSubmit={(e) => {
        e.preventDefault();
        void send();
      }}
    >
      {model.queued.length > 0 && (
        <div class="queue" aria-label="Queued messages">
          <span>{model.queued.length} queued</span>
          <button type="button" class="link" onClick={() => void clearQueue()}>
            Clear queue
          </button>
        </div>
      )}
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {files.length > 0 && (
        <ul class="files" aria-label="Attached files">
          <li class="hint">Up to 10 MB a file by default (the server's max_attachment_bytes).</li>
          {files.map((f, i) => (
            <li key={`${f.name}-${i}`}>
              📎 {f.name} ({formatBytes(f.size)})
              <button
                type="button"
                class="link"
                aria-label={`Remove ${f.name}`}
                onClick={() => setFiles(files.filter((_, j) => j !== i))}
              >
                ✕
              </button>
            </li>
          ))}
        </ul>
      )}
      <div class="composer-row">
        <label class="visually-hidden" for="composer-input">
          Message
        </label>
        <textarea
          id="composer-input"
          rows={2}
          placeholder={running ? "A turn is running: your message follows the choice on the right" : "Message (Enter sends, Shift+Enter for a new line)"}
          value={text}
          onInput={(e) => setText((e.target as HTMLTextAreaElement).value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.isComposing) {
              e.preventDefault();
              void send();
            }
          }}
        />
        <div class="composer-actions">
          {models.length > 1 && (
            <>
              <label class="visually-hidden" for="turn-model">
                Model for this turn
              </label>
              <select id="turn-model" value={turnModel} onChange={(e) => setTurnModel((e.target as HTMLSelectElement).value)}>
                <option value="">Session's model</option>
                {models.map((m) => (
                  <option key={m.name} value={m.name}>
                    {m.displayName || idOf(m.name)}
                  </option>
                ))}
              </select>
            </>
          )}
          {running && (
            <>
              <label class="visually-hidden" for="busy-policy">
                While a turn runs
              </label>
              <select
                id="busy-policy"
                value={String(policy)}
                onChange={(e) => setPolicy(Number((e.target as HTMLSelectElement).value) as BusyPolicy)}
              >
                <option value={BusyPolicy.ENQUEUE}>Queue</option>
                <option value={BusyPolicy.STEER}>Steer</option>
                <option value={BusyPolicy.INTERRUPT}>Interrupt</option>
              </select>
            </>
          )}
          <input
            id="attach-files"
            class="visually-hidden"
            type="file"
            multiple
            onChange={(e) => {
              const input = e.target as HTMLInputElement;
              setFiles([...files, ...Array.from(input.files ?? [])]);
              input.value = "";
            }}
          />
          <label for="attach-files" class="attach" title="Images and files, up to 10 MB each by default (the server's max_attachment_bytes)">
            Attach
          </label>
          <button type="submit" class="primary" disabled={sending || (!text.trim() && files.length === 0)}>
            Send
          </button>
          {running && (
            <button type="button" class="danger" onClick={() => void stop()}>
              Stop
            </button>
          )}
        </div>
      </div>
    </form>
  );
}
