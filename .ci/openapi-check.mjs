// Checks a running Octo server's /openapi.json with tools that are not Octo's:
// 1. the document is valid OpenAPI 3.1 (@seriousme/openapi-schema-validator), and
// 2. real answers match it: a few operations are called by operationId, with the path
//    built from the document's own templates, and every answer (JSON, SSE events,
//    errors) is validated against the document's schemas with ajv (JSON Schema 2020-12).
// Usage: node .ci/openapi-check.mjs http://127.0.0.1:PORT (tests/openapi.rs runs it; it sits
// in .ci/ so that its imports resolve from .ci/node_modules, where .ci/setup installs them)
// Prints one line per checked answer; exits non-zero on the first mismatch.
import { Validator } from "@seriousme/openapi-schema-validator";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";

const base = process.argv[2];
if (!base) {
  console.error("usage: check.mjs BASE_URL");
  process.exit(2);
}

function fail(what) {
  console.error(`openapi check failed: ${what}`);
  process.exit(1);
}

const fetched = await fetch(`${base}/openapi.json`);
if (fetched.status !== 200) fail(`GET /openapi.json answered ${fetched.status}`);
const doc = await fetched.json();

const validity = await new Validator().validate(structuredClone(doc));
if (!validity.valid) fail(`not valid OpenAPI 3.1: ${JSON.stringify(validity.errors, null, 2)}`);
console.log(`valid OpenAPI ${doc.openapi}: ${Object.keys(doc.paths).length} paths`);

const operations = new Map();
for (const [path, item] of Object.entries(doc.paths)) {
  for (const [method, operation] of Object.entries(item)) {
    operations.set(operation.operationId, { path, method: method.toUpperCase(), operation });
  }
}

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);
ajv.addFormat("uint64", /^[0-9]+$/);
ajv.addSchema({ $id: "openapi", components: doc.components });
// Schemas in the document refer to "#/components/...": resolve them inside "openapi".
const compile = (schema) =>
  ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"openapi#/components/')));

let checked = 0;
function conforms(what, schema, value) {
  const validate = compile(schema);
  if (!validate(value)) {
    fail(`${what}: the answer does not match the document:\n${JSON.stringify(validate.errors, null, 2)}\n` +
      `answer: ${JSON.stringify(value, null, 2)}`);
  }
  checked += 1;
  console.log(`ok: ${what}`);
}

function url(operationId, params = {}) {
  const entry = operations.get(operationId);
  if (!entry) fail(`no operation ${operationId}`);
  const path = entry.path.replace(/\{([^}]+)\}/g, (_, name) => {
    if (!(name in params)) fail(`${operationId}: no value for path parameter ${name}`);
    return encodeURIComponent(params[name]);
  });
  const query = new URLSearchParams();
  for (const parameter of entry.operation.parameters ?? []) {
    if (parameter.in === "query" && parameter.name in params) query.set(parameter.name, params[parameter.name]);
  }
  for (const name of Object.keys(params)) {
    const known = (entry.operation.parameters ?? []).some((p) => p.name === name);
    if (!known) fail(`${operationId}: the document has no parameter ${name}`);
  }
  const q = query.toString();
  return { entry, href: `${base}${path}${q ? `?${q}` : ""}` };
}

async function call(operationId, params = {}, body = undefined, expect = 200) {
  const { entry, href } = url(operationId, params);
  const response = await fetch(href, {
    method: entry.method,
    headers: body === undefined ? {} : { "content-type": "application/json" },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const answer = await response.json();
  if (response.status !== expect) fail(`${operationId}: HTTP ${response.status}, wanted ${expect}: ${JSON.stringify(answer)}`);
  const declared = entry.operation.responses[String(expect)] ?? entry.operation.responses.default;
  const content = declared.$ref ? doc.components.responses.Error.content : declared.content;
  conforms(`${operationId} -> ${response.status}`, content["application/json"].schema, answer);
  return answer;
}

const id = (name) => name.split("/").pop();

await call("ModelService_ListModels");
const session = await call("SessionService_CreateSession", {}, {
  displayName: "openapi check",
  labels: { team: "core" },
});
await call("SessionService_GetSession", { session: id(session.name) });
await call("SessionService_UpdateSession", { session: id(session.name), updateMask: "displayName,pinned" }, {
  displayName: "renamed by the openapi check",
  pinned: true,
});
const sent = await call("ChatService_SendMessageAndWait", { session: id(session.name) }, {
  parts: [{ text: "hello from the OpenAPI check" }],
});
await call("ChatService_GetTurn", { session: id(session.name), turn: id(sent.turn.name) });
await call("ChatService_ListTurns", { session: id(session.name) });
const messages = await call("ChatService_ListMessages", { session: id(session.name), pageSize: 10 });
if (!messages.messages || messages.messages.length < 2) fail("ListMessages: expected the question and its answer");
await call("SessionService_ListSessions", { pageSize: 5 });
await call("SessionService_ExportSession", { session: id(session.name) });
// An error answer is a google.rpc.Status as the document says.
const sid = id(session.name);
const missing = sid.slice(0, -1) + (sid.endsWith("0") ? "1" : "0");
await call("SessionService_GetSession", { session: missing }, undefined, 404);
await call("SessionService_GetSession", { session: "not an id" }, undefined, 400);

// The event stream: subscribe, send a message, and check every event up to its turn's end.
{
  const { entry, href } = url("ChatService_StreamEvents", { session: id(session.name) });
  const content = entry.operation.responses["200"].content["text/event-stream"];
  if (!content) fail("StreamEvents: no text/event-stream answer in the document");
  const validate = compile(content["x-octo-event"]);
  const abort = new AbortController();
  const response = await fetch(href, { signal: abort.signal });
  if (response.status !== 200) fail(`StreamEvents: HTTP ${response.status}`);
  await call("ChatService_SendMessage", { session: id(session.name) }, { parts: [{ text: "and once more" }] });
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  let events = 0;
  let finished = false;
  while (!finished) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    let end;
    while ((end = buffer.indexOf("\n\n")) >= 0) {
      const block = buffer.slice(0, end);
      buffer = buffer.slice(end + 2);
      const data = block.split("\n").filter((l) => l.startsWith("data: ")).map((l) => l.slice(6)).join("\n");
      if (!data) continue;
      const event = JSON.parse(data);
      if (!validate(event)) fail(`StreamEvents: event does not match the document:\n${JSON.stringify(validate.errors, null, 2)}\n${data}`);
      events += 1;
      if (event.turnFinished) finished = true;
    }
  }
  abort.abort();
  if (!finished) fail(`StreamEvents: the stream ended after ${events} events without the turn's end`);
  checked += 1;
  console.log(`ok: ChatService_StreamEvents -> ${events} events`);
}

await call("SessionService_DeleteSession", { session: id(session.name) });
console.log(`openapi check passed: ${checked} answers matched the document`);
