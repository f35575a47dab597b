// The TypeScript client on Node.js (gRPC over HTTP/2 and gRPC-Web) against a live Octo.
import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";

import {
  Code,
  ConnectError,
  Role,
  TurnStatus,
  chat,
  collectUntil,
  createNodeClient,
  errorDetails,
  isTerminal,
  streamEvents,
  textOf,
} from "../dist/node.js";
import { startOcto } from "./server.mjs";

const TOKEN = "ts-test-token";
const MISSING = "sessions/019a0000-0000-7000-8000-000000000000";

let server;
before(async () => {
  server = await startOcto({
    token: TOKEN,
    // A slow model, so a stream can be aborted while the turn still runs.
    configToml: '[models.slow]\nprovider = "mock"\noptions = { token_delay_ms = 200 }\n',
  });
});
after(async () => {
  await server?.stop();
});

for (const protocol of ["grpc", "grpc-web"]) {
  describe(`over ${protocol}`, () => {
    const client = () => createNodeClient({ baseUrl: server.baseUrl, token: TOKEN, protocol });

    test("chat streams to the terminal event", async () => {
      const octo = client();
      const session = await octo.sessions.createSession({ session: { displayName: `ts ${protocol}` } });
      const events = [];
      for await (const event of chat(octo, session.name, "hello from typescript")) events.push(event);

      const last = events.at(-1);
      assert.ok(isTerminal(last));
      assert.equal(last.kind.case, "turnFinished");
      assert.equal(last.kind.value.turn.status, TurnStatus.SUCCEEDED);
      assert.equal(textOf(events), "Echo: hello from typescript");
      const sequences = events.map((e) => e.sequence);
      for (let i = 1; i < sequences.length; i++) assert.ok(sequences[i] > sequences[i - 1]);
    });

    test("lists messages newest first", async () => {
      const octo = client();
      const session = await octo.sessions.createSession({ session: { displayName: "ts history" } });
      for await (const _ of chat(octo, session.name, "first"));
      for await (const _ of chat(octo, session.name, "second"));

      const { messages } = await octo.chat.listMessages({ parent: session.name });
      const texts = messages.map((m) => m.parts.map((p) => (p.kind.case === "text" ? p.kind.value : "")).join(""));
      assert.deepEqual(texts, ["Echo: second", "second", "Echo: first", "first"]);
      assert.deepEqual(messages.map((m) => m.role), [Role.ASSISTANT, Role.USER, Role.ASSISTANT, Role.USER]);
    });

    test("resumes a stream from a sequence", async () => {
      const octo = client();
      const session = await octo.sessions.createSession({ session: { displayName: "ts resume" } });
      const events = await collectUntil(chat(octo, session.name, "resume me please"));
      const first = events.find((e) => e.kind.case === "textDelta");

      const controller = new AbortController();
      const resumed = await collectUntil(streamEvents(octo, session.name, first.sequence, { signal: controller.signal }));
      controller.abort();

      assert.equal(resumed[0].kind.case, "snapshot");
      for (const e of resumed.slice(1)) assert.ok(e.sequence > first.sequence);
      assert.equal(textOf(resumed), textOf(events).slice(first.kind.value.text.length));
      assert.equal(resumed.at(-1).kind.case, "turnFinished");
    });

    test("NOT_FOUND carries ErrorInfo and ResourceInfo", async () => {
      const octo = client();
      const err = await octo.sessions.getSession({ name: MISSING }).then(
        () => assert.fail("expected an error"),
        (e) => e,
      );
      assert.ok(err instanceof ConnectError);
      const details = errorDetails(err);
      assert.equal(details.code, Code.NotFound);
      assert.equal(details.reason, "SESSION_NOT_FOUND");
      assert.equal(details.errorInfo.domain, "octo.v1");
      assert.equal(details.resourceInfo.resourceName, MISSING);
      assert.equal(details.resourceInfo.resourceType, "octo.v1.Session");
    });

    test("INVALID_ARGUMENT carries field violations", async () => {
      const octo = client();
      const err = await octo.sessions
        .createSession({ session: { workingDir: "../outside" } })
        .then(() => assert.fail("expected an error"), (e) => e);
      const details = errorDetails(err);
      assert.equal(details.code, Code.InvalidArgument);
      assert.deepEqual(details.fieldViolations.map((v) => v.field), ["session.working_dir"]);
    });

    test("an error on a stream is thrown from the iterator", async () => {
      const octo = client();
      await assert.rejects(
        async () => {
          for await (const _ of chat(octo, MISSING, "anyone there?"));
        },
        (err) => errorDetails(err).resourceInfo?.resourceName === MISSING,
      );
    });

    test("AbortSignal cancels a stream", async () => {
      const octo = client();
      const session = await octo.sessions.createSession({ session: { displayName: "ts abort" } });
      const controller = new AbortController();
      const seen = [];
      await assert.rejects(
        async () => {
          for await (const event of chat(octo, session.name, "one two three four five six", {
            model: "models/slow",
            signal: controller.signal,
          })) {
            seen.push(event);
            if (event.kind.case === "textDelta") controller.abort();
          }
        },
        (err) => ConnectError.from(err).code === Code.Canceled,
      );
      assert.ok(!seen.some(isTerminal), "aborted before the turn ended");
      assert.ok(seen.some((e) => e.kind.case === "textDelta"));
    });
  });
}

test("a missing token is UNAUTHENTICATED", async () => {
  const octo = createNodeClient({ baseUrl: server.baseUrl });
  await assert.rejects(octo.sessions.listSessions({}), (err) => errorDetails(err).code === Code.Unauthenticated);
});
