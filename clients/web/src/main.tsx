// Octo's web UI: the shell (header, connection state, token prompt, hash routes) around
// the sessions sidebar and chat, the models page and the schedules page.
import "./style.css";

import { render } from "preact";
import { useEffect, useMemo, useState } from "preact/hooks";

import { connection } from "./api.js";
import { ChatView } from "./chat.js";
import { ModelsPage } from "./models.js";
import { SchedulesPage } from "./schedules.js";
import { SessionList } from "./sessions.js";
import { Sidebar } from "./sidebar.js";
import { useSubscription } from "./util.js";

type Route = { page: "chats"; session?: string } | { page: "models" } | { page: "schedules" };

function parseRoute(hash: string): Route {
  const path = hash.replace(/^#\/?/, "");
  if (path === "models") return { page: "models" };
  if (path === "schedules") return { page: "schedules" };
  const m = /^s\/([\w-]+)$/.exec(path);
  return { page: "chats", session: m ? `sessions/${m[1]}` : undefined };
}

function useRoute(): Route {
  const [route, setRoute] = useState(() => parseRoute(location.hash));
  useEffect(() => {
    const onHash = () => setRoute(parseRoute(location.hash));
    addEventListener("hashchange", onHash);
    return () => removeEventListener("hashchange", onHash);
  }, []);
  return route;
}

const STATE_TEXT = {
  connecting: "Connecting…",
  online: "Connected",
  reconnecting: "Reconnecting…",
  offline: "Offline",
  unauthenticated: "Token needed",
};

function TokenPrompt() {
  const [token, setToken] = useState("");
  return (
    <main class="token-page">
      <form
        class="card token-form"
        onSubmit={(e) => {
          e.preventDefault();
          connection.setToken(token);
        }}
      >
        <h1>Octo needs a token</h1>
        <p role="alert" class={connection.token ? "error" : ""} id="token-message">
          {connection.authMessage}
        </p>
        <label for="token-input">Access token</label>
        <input
          id="token-input"
          type="password"
          autocomplete="current-password"
          value={token}
          onInput={(e) => setToken((e.target as HTMLInputElement).value)}
          required
        />
        <p class="hint">Kept in this browser for this server's address only.</p>
        <button type="submit" class="primary">
          Connect
        </button>
      </form>
    </main>
  );
}

function App() {
  useSubscription(connection);
  const route = useRoute();
  // One list (and watch) per client: a new token makes a new one.
  const list = useMemo(() => new SessionList(), [connection.client]);
  useEffect(() => {
    if (connection.state === "unauthenticated") return;
    list.start();
    return () => list.close();
  }, [list, connection.state === "unauthenticated"]);

  if (connection.state === "unauthenticated") return <TokenPrompt />;
  const chats = route.page === "chats";
  return (
    <div class={`shell ${chats && route.session ? "has-session" : ""}`}>
      <header class="topbar">
        <a class="brand" href="#/">
          Octo
        </a>
        <nav aria-label="Pages">
          <a href="#/" aria-current={chats ? "page" : undefined}>
            Chats
          </a>
          <a href="#/models" aria-current={route.page === "models" ? "page" : undefined}>
            Models
          </a>
          <a href="#/schedules" aria-current={route.page === "schedules" ? "page" : undefined}>
            Schedules
          </a>
        </nav>
        <span class={`conn conn-${connection.state}`} role="status" aria-live="polite" data-state={connection.state}>
          {STATE_TEXT[connection.state]}
        </span>
        {connection.token && (
          <button class="link" type="button" onClick={() => connection.setToken("")} title="Forget the stored token">
            Sign out
          </button>
        )}
      </header>
      {chats ? (
        <div class="workspace">
          <Sidebar list={list} current={route.session} />
          {route.session ? (
            <ChatView key={`${route.session}`} name={route.session} list={list} />
          ) : (
            <main class="empty">
              <p>Pick a session, or start a new one.</p>
            </main>
          )}
        </div>
      ) : route.page === "models" ? (
        <ModelsPage />
      ) : (
        <SchedulesPage />
      )}
    </div>
  );
}

const root = document.getElementById("app")!;
root.textContent = "";
render(<App />, root);
