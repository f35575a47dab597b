// The browser demo page: gRPC-Web through the TypeScript client, and the JSON mapping
// through fetch and EventSource. Query parameters: server (Octo's base URL), token,
// sse (base URL for EventSource; defaults to server). Tests drive it through window.octoPage.
import { chat, createWebClient, errorDetails } from "../src/web.js";

const params = new URLSearchParams(location.search);
const server = params.get("server") ?? "http://127.0.0.1:50051";
const token = params.get("token") ?? "";
const sseBase = params.get("sse") ?? server;
const octo = createWebClient({ baseUrl: server, token });
const MISSING = "sessions/019a0000-0000-7000-8000-000000000000";

const el = (id: string) => document.getElementById(id)!;
el("server").textContent = server;

/** Streams a chat over gRPC-Web, rendering each text delta as it arrives. */
async function runChat(prompt: string, model = "") {
  const output = el("output");
  const status = el("status");
  output.textContent = "";
  status.textContent = "streaming";
  const session = await octo.sessions.createSession({ session: { displayName: "browser" } });
  const updates: string[] = [];
  for await (const event of chat(octo, session.name, prompt, { model })) {
    if (event.kind.case === "textDelta") {
      output.textContent += event.kind.value.text;
      updates.push(output.textContent ?? "");
    }
  }
  status.textContent = "done";
  return { session: session.name, text: output.textContent, updates };
}

/** A NOT_FOUND over gRPC-Web: status and details, rendered. */
async function runError() {
  try {
    await octo.sessions.getSession({ name: MISSING });
    throw new Error("expected NOT_FOUND");
  } catch (err) {
    const d = errorDetails(err);
    const shown = {
      code: d.code,
      codeName: d.codeName,
      message: d.message,
      reason: d.reason,
      domain: d.errorInfo?.domain ?? "",
      resourceType: d.resourceInfo?.resourceType ?? "",
      resourceName: d.resourceInfo?.resourceName ?? "",
    };
    el("error").textContent = `${d.codeName} (${d.code}) ${d.reason}: ${shown.resourceType} ${shown.resourceName}`;
    return shown;
  }
}

/** The JSON mapping: fetch for unary calls, EventSource for the event stream. */
const sse = {
  opens: 0,
  errors: 0,
  deltas: 0,
  ids: [] as number[],
  deltasPerConnection: [] as number[],
  lastIdAtError: "",
  text: "",
  done: false,
  errorStatus: 0,
  errorBody: null as unknown,
};

async function runJson(prompt: string, model = "") {
  const headers = { authorization: `Bearer ${token}`, "content-type": "application/json" };
  const log = el("sse-log");
  const out = el("sse-output");
  el("sse-status").textContent = "connecting";

  // Unary calls with fetch: create a session, and read an error's google.rpc.Status.
  const created = await fetch(`${server}/v1/sessions`, {
    method: "POST",
    headers,
    body: JSON.stringify({ displayName: "browser json" }),
  });
  const session = (await created.json()) as { name: string };
  const missing = await fetch(`${server}/v1/${MISSING}`, { headers });
  sse.errorStatus = missing.status;
  sse.errorBody = await missing.json();

  // The stream with EventSource (access_token: EventSource cannot send headers). On a
  // dropped connection it reconnects by itself and sends Last-Event-ID; Octo resumes after it.
  const source = new EventSource(
    `${sseBase}/v1/${session.name}/events?access_token=${encodeURIComponent(token)}`,
  );
  let lastId = "";
  let sent = false;
  await new Promise<void>((resolve, reject) => {
    source.onopen = () => {
      sse.opens += 1;
      sse.deltasPerConnection.push(0);
      el("sse-status").textContent = `connected (${sse.opens})`;
    };
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) reject(new Error("EventSource closed"));
      sse.errors += 1;
      sse.lastIdAtError = lastId;
      log.textContent += `connection lost after id ${lastId}; reconnecting\n`;
      el("sse-status").textContent = "reconnecting";
    };
    source.onmessage = async (message) => {
      if (message.lastEventId) lastId = message.lastEventId;
      const event = JSON.parse(message.data);
      if (event.sequence) sse.ids.push(Number(event.sequence));
      if (event.snapshot && !sent) {
        // Subscribed: now send the message (a unary JSON call).
        sent = true;
        const reply = await fetch(`${server}/v1/${session.name}/messages`, {
          method: "POST",
          headers,
          body: JSON.stringify({ parts: [{ text: prompt }], model }),
        });
        if (!reply.ok) reject(new Error(`SendMessage: ${reply.status} ${await reply.text()}`));
      } else if (event.textDelta) {
        sse.deltas += 1;
        sse.deltasPerConnection[sse.deltasPerConnection.length - 1] += 1;
        sse.text += event.textDelta.text;
        out.textContent = sse.text;
      } else if (event.turnFinished) {
        sse.done = true;
        source.close();
        el("sse-status").textContent = "done";
        resolve();
      }
    };
  });
  return { session: session.name, ...sse };
}

/**
 * What a hostile page tries against Octo (test/security.test.mjs): each way a browser
 * can send a request, then the drive-by itself, an AUTO_APPROVE session whose model runs
 * `command` in a shell. Returns what the page could observe of each attempt.
 */
async function attack(command: string) {
  const outcome: Record<string, string> = {};
  const attempt = async (name: string, run: () => Promise<string>) => {
    try {
      outcome[name] = await run();
    } catch (err) {
      outcome[name] = `blocked: ${err instanceof Error ? err.message : String(err)}`;
    }
  };
  const autoApprove = JSON.stringify({ permissionMode: "PERMISSION_MODE_AUTO_APPROVE" });
  let session = "";

  // fetch with JSON: a CORS request with a preflight.
  await attempt("fetchJson", async () => {
    const reply = await fetch(`${server}/v1/sessions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: autoApprove,
    });
    const body = (await reply.json()) as { name?: string };
    session = body.name ?? "";
    return `${reply.status} ${session}`;
  });
  // fetch with text/plain in no-cors mode: sent without a preflight, answer unreadable.
  await attempt("fetchTextPlain", async () => {
    const reply = await fetch(`${server}/v1/sessions`, {
      method: "POST",
      mode: "no-cors",
      headers: { "content-type": "text/plain" },
      body: autoApprove,
    });
    return `sent (${reply.type})`;
  });
  // gRPC-Web through the TypeScript client.
  await attempt("grpcWeb", async () => {
    const created = await octo.sessions.createSession({ session: { displayName: "grpc-web" } });
    return `created ${created.name}`;
  });
  // EventSource on the live session list.
  await attempt(
    "eventSource",
    () =>
      new Promise((resolve) => {
        const source = new EventSource(`${server}/v1/sessions:watch`);
        source.onopen = () => {
          source.close();
          resolve("open");
        };
        source.onerror = () => {
          source.close();
          resolve("blocked: error");
        };
      }),
  );
  // A form post (text/plain) into a hidden frame: its body parses as JSON.
  await attempt(
    "formPost",
    () =>
      new Promise((resolve) => {
        const frame = document.createElement("iframe");
        frame.name = "sink";
        frame.hidden = true;
        const form = document.createElement("form");
        form.method = "POST";
        form.action = `${server}/v1/sessions`;
        form.enctype = "text/plain";
        form.target = "sink";
        const field = document.createElement("input");
        field.name = '{"permissionMode":"PERMISSION_MODE_AUTO_APPROVE","displayName":"';
        field.value = '"}';
        form.append(field);
        document.body.append(frame, form);
        frame.onload = () => resolve("submitted");
        form.submit();
      }),
  );
  // The drive-by: make the model run a shell command in the session created above.
  if (session) {
    await attempt("chat", async () => {
      const reply = await fetch(`${server}/v1/${session}:chat`, {
        method: "POST",
        headers: { "content-type": "application/json" },
        body: JSON.stringify({ parts: [{ text: `/tool shell ${JSON.stringify({ command })}` }] }),
      });
      const stream = await reply.text();
      return `${reply.status} ${stream.includes("TURN_STATUS_SUCCEEDED") ? "succeeded" : "not succeeded"}`;
    });
  }
  return outcome;
}

declare global {
  interface Window {
    octoPage: {
      runChat: typeof runChat;
      runError: typeof runError;
      runJson: typeof runJson;
      attack: typeof attack;
      sse: typeof sse;
    };
  }
}
window.octoPage = { runChat, runError, runJson, attack, sse };
document.documentElement.dataset.ready = "true";
