// The session list: ListSessions for the first page (pinned first, then most recent
// activity), kept live by WatchSessions (no polling). A dropped watch reconnects and
// reloads the list; a `reset` change reloads it too. A search asks the server
// (ListSessions.query) and keeps its results live the same way.
import type { Session } from "./api.js";
import { connection, isAbort } from "./api.js";
import { timeOf } from "./util.js";

const PAGE = 100;

export class SessionList {
  sessions = new Map<string, Session>();
  nextToken = "";
  loaded = false;
  error = "";
  query = "";
  private listeners = new Set<() => void>();
  private abort?: AbortController;
  private closed = false;
  private generation = 0;

  subscribe(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private changed() {
    for (const l of this.listeners) l();
  }

  /** Pinned first, then the most recently active. */
  ordered(): Session[] {
    return [...this.sessions.values()].sort(
      (a, b) =>
        Number(b.pinned) - Number(a.pinned) ||
        timeOf(b.lastActiveTime ?? b.updateTime) - timeOf(a.lastActiveTime ?? a.updateTime) ||
        (a.name < b.name ? 1 : -1),
    );
  }

  start() {
    void this.watch();
  }

  close() {
    this.closed = true;
    this.abort?.abort();
  }

  async search(query: string) {
    this.query = query;
    await this.reload();
  }

  async reload() {
    const generation = ++this.generation;
    try {
      const page = await connection.client.sessions.listSessions({ pageSize: PAGE, query: this.query });
      if (generation !== this.generation) return;
      this.sessions = new Map(page.sessions.map((s) => [s.name, s]));
      this.nextToken = page.nextPageToken;
      this.loaded = true;
      this.error = "";
    } catch (err) {
      if (generation !== this.generation) return;
      this.error = connection.failed(err);
    }
    this.changed();
  }

  async more() {
    if (!this.nextToken) return;
    try {
      const page = await connection.client.sessions.listSessions({
        pageSize: PAGE,
        pageToken: this.nextToken,
        query: this.query,
      });
      for (const s of page.sessions) this.sessions.set(s.name, s);
      this.nextToken = page.nextPageToken;
    } catch (err) {
      this.error = connection.failed(err);
    }
    this.changed();
  }

  /** Applies a change we made ourselves right away (the watch confirms it). */
  put(session: Session) {
    this.sessions.set(session.name, session);
    this.changed();
  }

  remove(name: string) {
    this.sessions.delete(name);
    this.changed();
  }

  private async watch() {
    let delay = 250;
    while (!this.closed) {
      this.abort = new AbortController();
      try {
        const stream = connection.client.sessions.watchSessions({}, { signal: this.abort.signal });
        // The list loads once the watch is open, so no change falls between the two.
        const opened = this.reload();
        for await (const change of stream) {
          delay = 250;
          connection.setState("online");
          const c = change.change;
          if (c.case === "created") {
            if (!this.query) this.sessions.set(c.value.name, c.value);
          } else if (c.case === "updated") {
            if (!this.query || this.sessions.has(c.value.name)) this.sessions.set(c.value.name, c.value);
          } else if (c.case === "deleted") {
            this.sessions.delete(c.value);
          } else if (c.case === "reset") {
            void this.reload();
          }
          this.changed();
        }
        await opened;
      } catch (err) {
        if (this.closed || isAbort(err)) return;
        this.error = connection.failed(err);
        if (connection.state === "unauthenticated") {
          this.changed();
          return;
        }
        connection.setState("reconnecting");
        this.changed();
      }
      await new Promise((ok) => setTimeout(ok, delay));
      delay = Math.min(delay * 2, 5000);
    }
  }
}
