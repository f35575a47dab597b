// The sessions sidebar: search, a new-session form, and the live list with status badges.
import { useEffect, useState } from "preact/hooks";

import type { Model, Session } from "./api.js";
import {
  PermissionMode,
  SessionArchiveSchema,
  SessionStatus,
  connection,
  describe,
  fromJsonString,
} from "./api.js";
import type { SessionList } from "./sessions.js";
import { ago, idOf, useSubscription } from "./util.js";

export function Sidebar({ list, current }: { list: SessionList; current?: string }) {
  useSubscription(list);
  const [query, setQuery] = useState("");
  const [creating, setCreating] = useState(false);
  useEffect(() => {
    if (query === list.query) return;
    const timer = setTimeout(() => void list.search(query), 200);
    return () => clearTimeout(timer);
  }, [query]);
  const sessions = list.ordered();
  return (
    <aside class="sidebar" aria-label="Sessions">
      <div class="sidebar-tools">
        <button type="button" class="primary" onClick={() => setCreating(!creating)} aria-expanded={creating}>
          New session
        </button>
        <label class="visually-hidden" for="session-search">
          Search sessions
        </label>
        <input
          id="session-search"
          type="search"
          placeholder="Search"
          value={query}
          onInput={(e) => setQuery((e.target as HTMLInputElement).value)}
        />
      </div>
      {creating && <NewSession list={list} onDone={() => setCreating(false)} />}
      <ImportSession list={list} />
      {list.error && (
        <p class="error" role="alert">
          {list.error}
        </p>
      )}
      <ul class="session-list" data-loaded={list.loaded ? "true" : "false"}>
        {sessions.map((s) => (
          <SessionItem key={s.name} session={s} current={s.name === current} />
        ))}
      </ul>
      {list.loaded && sessions.length === 0 && <p class="hint">{list.query ? "No session matches." : "No sessions yet."}</p>}
      {list.nextToken && (
        <button type="button" class="link more" onClick={() => void list.more()}>
          Load more sessions
        </button>
      )}
    </aside>
  );
}

function SessionItem({ session: s, current }: { session: Session; current: boolean }) {
  return (
    <li class={`session-item ${current ? "current" : ""}`}>
      <a href={`#/s/${idOf(s.name)}`} aria-current={current ? "page" : undefined} data-name={s.name}>
        <span class="title">
          {s.pinned && (
            <span class="pin" aria-label="Pinned" title="Pinned">
              ★
            </span>
          )}
          {s.displayName || "Untitled"}
        </span>
        <span class="meta">
          <StatusBadge session={s} />
          <span class="time">{ago(s.lastActiveTime ?? s.updateTime)}</span>
        </span>
        {s.lastMessagePreview && <span class="preview">{s.lastMessagePreview}</span>}
      </a>
    </li>
  );
}

export function StatusBadge({ session: s }: { session: Session }) {
  return (
    <>
      {s.status === SessionStatus.RUNNING && <span class="badge running">running</span>}
      {s.status === SessionStatus.AWAITING_CONFIRMATION && <span class="badge waiting">needs approval</span>}
      {s.status === SessionStatus.AWAITING_INPUT && <span class="badge waiting">asks you</span>}
      {s.queueDepth > 0 && <span class="badge">{s.queueDepth} queued</span>}
    </>
  );
}

export function useModels(): Model[] {
  const [models, setModels] = useState<Model[]>([]);
  useEffect(() => {
    connection.client.models
      .listModels({ pageSize: 500 })
      .then((r) => setModels(r.models))
      .catch((err) => connection.failed(err));
  }, []);
  return models;
}

function NewSession({ list, onDone }: { list: SessionList; onDone: () => void }) {
  const models = useModels();
  const [error, setError] = useState("");
  const [busy, setBusy] = useState(false);
  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    const text = (k: string) => String(form.get(k) ?? "").trim();
    setBusy(true);
    try {
      const session = await connection.client.sessions.createSession({
        session: {
          displayName: text("title"),
          model: text("model"),
          permissionMode: Number(text("mode")) as PermissionMode,
          workingDir: text("workdir"),
          systemPrompt: text("prompt"),
        },
      });
      list.put(session);
      onDone();
      location.hash = `#/s/${idOf(session.name)}`;
    } catch (err) {
      setError(describe(err));
      connection.failed(err);
    } finally {
      setBusy(false);
    }
  }
  return (
    <form class="card new-session" onSubmit={submit} aria-label="New session">
      <label for="ns-title">Title</label>
      <input id="ns-title" name="title" placeholder="What is this about?" />
      <label for="ns-model">Model</label>
      <select id="ns-model" name="model">
        <option value="">Server default</option>
        {models.map((m) => (
          <option key={m.name} value={m.name}>
            {m.displayName || idOf(m.name)}
            {m.isDefault ? " (default)" : ""}
          </option>
        ))}
      </select>
      <label for="ns-mode">Permissions</label>
      <select id="ns-mode" name="mode">
        <option value={PermissionMode.ASK}>Ask before writes and commands</option>
        <option value={PermissionMode.AUTO_APPROVE}>Auto-approve everything</option>
        <option value={PermissionMode.READ_ONLY}>Read only</option>
      </select>
      <label for="ns-workdir">Working directory (inside the workspace)</label>
      <input id="ns-workdir" name="workdir" placeholder="default" />
      <label for="ns-prompt">System prompt</label>
      <textarea id="ns-prompt" name="prompt" rows={2} placeholder="Server default" />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="row">
        <button type="submit" class="primary" disabled={busy}>
          Create
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}

/** Restores a session from an exported JSON file (ImportSession). */
function ImportSession({ list }: { list: SessionList }) {
  const [error, setError] = useState("");
  async function pick(e: Event) {
    const input = e.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    try {
      const archive = fromJsonString(SessionArchiveSchema, await file.text(), { ignoreUnknownFields: true });
      const session = await connection.client.sessions.importSession({ archive });
      list.put(session);
      setError("");
      location.hash = `#/s/${idOf(session.name)}`;
    } catch (err) {
      setError(err instanceof SyntaxError ? `Not an exported session: ${err.message}` : describe(err));
      connection.failed(err);
    } finally {
      input.value = "";
    }
  }
  return (
    <div class="import">
      <input id="import-file" class="visually-hidden" type="file" accept=".json,application/json" onChange={pick} />
      <label for="import-file" class="link">
        Import a session (.json)
      </label>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
    </div>
  );
}
