// The models page: the configured models (keys only as the server's masked hint), add
// one from a provider preset, test one (latency or the provider's error), make one the
// default, delete one.
import { useEffect, useState } from "preact/hooks";

import type { BenchmarkModelsResponse, Model, Provider, TestModelResponse } from "./api.js";
import { ProviderKind, connection } from "./api.js";
import { idOf } from "./util.js";

const KIND: Record<number, string> = {
  [ProviderKind.OPENAI_COMPATIBLE]: "OpenAI-compatible",
  [ProviderKind.ANTHROPIC]: "Anthropic",
  [ProviderKind.MOCK]: "Mock",
};

export function ModelsPage() {
  const [models, setModels] = useState<Model[]>([]);
  const [providers, setProviders] = useState<Provider[]>([]);
  const [error, setError] = useState("");
  const [tests, setTests] = useState<Record<string, TestModelResponse | "running">>({});
  const [adding, setAdding] = useState(false);
  const [confirming, setConfirming] = useState("");
  const [bench, setBench] = useState<Record<string, BenchmarkModelsResponse | "running">>({});
  async function load() {
    try {
      const [m, p] = await Promise.all([
        connection.client.models.listModels({ pageSize: 500 }),
        connection.client.models.listProviders({}),
      ]);
      setModels(m.models);
      setProviders(p.providers);
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  useEffect(() => void load(), []);
  async function act(action: () => Promise<unknown>) {
    try {
      await action();
      setError("");
      await load();
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  async function test(name: string) {
    setTests((t) => ({ ...t, [name]: "running" }));
    try {
      const r = await connection.client.models.testModel({ target: { case: "name", value: name } });
      setTests((t) => ({ ...t, [name]: r }));
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  /** BenchmarkModels: each model's time to first token, as the results stream in. */
  async function benchmark() {
    setBench(Object.fromEntries(models.map((m) => [m.name, "running" as const])));
    try {
      for await (const r of connection.client.models.benchmarkModels({})) {
        setBench((b) => ({ ...b, [r.model]: r }));
      }
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  return (
    <main class="page models" aria-label="Models">
      <div class="page-head">
        <h1>Models</h1>
        <div class="row">
          <button type="button" onClick={() => void benchmark()}>
            Benchmark all
          </button>
          <button type="button" class="primary" onClick={() => setAdding(!adding)} aria-expanded={adding}>
            Add model
          </button>
        </div>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {adding && (
        <AddModel
          providers={providers}
          onDone={() => {
            setAdding(false);
            void load();
          }}
        />
      )}
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Model</th>
            <th scope="col">Provider</th>
            <th scope="col">Key</th>
            <th scope="col">Test</th>
            <th scope="col">First token</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {models.map((m) => {
            const t = tests[m.name];
            return (
              <tr key={m.name} data-model={m.name}>
                <td>
                  <strong>{m.displayName || idOf(m.name)}</strong> {m.isDefault && <span class="badge">default</span>}
                  <div class="hint">
                    {idOf(m.name)} · {m.providerModel}
                  </div>
                </td>
                <td>
                  {KIND[m.provider] ?? "?"}
                  {m.baseUrl && <div class="hint">{m.baseUrl}</div>}
                </td>
                <td class="key">{m.apiKeyEnv ? `$${m.apiKeyEnv}` : m.apiKey || "none"}</td>
                <td class="test-result" aria-live="polite">
                  {t === "running"
                    ? "testing…"
                    : t &&
                      (t.ok ? (
                        <span class="ok">ok, {fmtMs(t.latency)}</span>
                      ) : (
                        <span class="error">failed: {t.error}</span>
                      ))}
                </td>
                <td class="bench-result" aria-live="polite">
                  <BenchCell result={bench[m.name]} />
                </td>
                <td>
                  <div class="row">
                  <button type="button" onClick={() => void test(m.name)}>
                    Test
                  </button>
                  {!m.isDefault && (
                    <button
                      type="button"
                      onClick={() =>
                        void act(() =>
                          connection.client.models.updateModel({
                            model: { name: m.name, isDefault: true },
                            updateMask: { paths: ["is_default"] },
                          }),
                        )
                      }
                    >
                      Make default
                    </button>
                  )}
                  {confirming === m.name ? (
                    <>
                      <button
                        type="button"
                        class="danger"
                        onClick={() => void act(() => connection.client.models.deleteModel({ name: m.name }))}
                      >
                        Yes, delete
                      </button>
                      <button type="button" onClick={() => setConfirming("")}>
                        Keep
                      </button>
                    </>
                  ) : (
                    <button type="button" class="danger" onClick={() => setConfirming(m.name)}>
                      Delete
                    </button>
                  )}
                  </div>
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </main>
  );
}

function BenchCell({ result }: { result?: BenchmarkModelsResponse | "running" }) {
  if (!result) return null;
  if (result === "running") return <span class="hint">measuring…</span>;
  return result.ok ? (
    <span class="ok">{fmtMs(result.timeToFirstToken)}</span>
  ) : (
    <span class="error">failed: {result.error}</span>
  );
}

function fmtMs(d: { seconds: bigint; nanos: number } | undefined): string {
  return d ? `${Math.round(Number(d.seconds) * 1000 + d.nanos / 1e6)} ms` : "";
}

function AddModel({ providers, onDone }: { providers: Provider[]; onDone: () => void }) {
  const [preset, setPreset] = useState<Provider | undefined>();
  const [error, setError] = useState("");
  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    const text = (k: string) => String(form.get(k) ?? "").trim();
    try {
      await connection.client.models.createModel({
        modelId: text("id"),
        model: {
          provider: preset?.kind ?? ProviderKind.OPENAI_COMPATIBLE,
          providerModel: text("model"),
          baseUrl: text("base"),
          apiKey: text("key"),
          apiKeyEnv: text("env"),
        },
      });
      onDone();
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  return (
    <form class="card add-model" onSubmit={submit} aria-label="Add a model">
      <label for="am-preset">Provider preset</label>
      <select
        id="am-preset"
        onChange={(e) => setPreset(providers.find((p) => p.id === (e.target as HTMLSelectElement).value))}
      >
        <option value="">Choose…</option>
        {providers.map((p) => (
          <option key={p.id} value={p.id}>
            {p.displayName}
          </option>
        ))}
      </select>
      <label for="am-id">Id</label>
      <input id="am-id" name="id" required pattern="[a-z0-9][a-z0-9-]*" placeholder="e.g. gpt" key={`id-${preset?.id}`} defaultValue={preset?.id ?? ""} />
      <label for="am-model">Provider model</label>
      <input id="am-model" name="model" list="am-suggested" key={`m-${preset?.id}`} defaultValue={preset?.suggestedModels[0] ?? ""} />
      <datalist id="am-suggested">
        {preset?.suggestedModels.map((m) => <option key={m} value={m} />)}
      </datalist>
      <label for="am-base">Base URL</label>
      <input id="am-base" name="base" key={`b-${preset?.id}`} defaultValue={preset?.baseUrl ?? ""} />
      <label for="am-env">API key environment variable (preferred: the key stays out of the database)</label>
      <input id="am-env" name="env" key={`e-${preset?.id}`} defaultValue={preset?.apiKeyEnv ?? ""} />
      <label for="am-key">API key (stored on the server, never shown again)</label>
      <input id="am-key" name="key" type="password" autocomplete="off" />
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="row">
        <button type="submit" class="primary">
          Add
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
