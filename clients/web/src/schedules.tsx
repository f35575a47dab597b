// The schedules page: each schedule with its cron, time zone and next run (shown in that
// time zone); create one; enable/disable; run now; the run history with links to the
// sessions the runs made; delete. Histories that still have runs going refresh each second.
import { Fragment } from "preact";
import { useEffect, useState } from "preact/hooks";

import type { Schedule, ScheduleRun } from "./api.js";
import { PermissionMode, RunStatus, RunTrigger, connection } from "./api.js";
import { useModels } from "./sidebar.js";
import { idOf, timeOf } from "./util.js";
import type { Timestamp } from "./util.js";

const STATUS: Record<number, string> = {
  [RunStatus.PENDING]: "pending",
  [RunStatus.RUNNING]: "running",
  [RunStatus.SUCCEEDED]: "succeeded",
  [RunStatus.FAILED]: "failed",
  [RunStatus.SKIPPED]: "skipped",
};
const TRIGGER: Record<number, string> = {
  [RunTrigger.CRON]: "cron",
  [RunTrigger.MANUAL]: "manual",
  [RunTrigger.MISFIRE]: "misfire",
};

function when(ts: Timestamp | undefined, timeZone?: string): string {
  const t = timeOf(ts);
  if (!t) return "";
  try {
    return new Date(t).toLocaleString(undefined, {
      timeZone: timeZone || undefined,
      dateStyle: "medium",
      timeStyle: "short",
    });
  } catch {
    return new Date(t).toLocaleString();
  }
}

export function SchedulesPage() {
  const [schedules, setSchedules] = useState<Schedule[]>([]);
  const [error, setError] = useState("");
  const [creating, setCreating] = useState(false);
  const [open, setOpen] = useState("");
  const [editing, setEditing] = useState("");
  const [confirming, setConfirming] = useState("");
  const [loaded, setLoaded] = useState(false);
  async function load() {
    try {
      const r = await connection.client.schedules.listSchedules({ pageSize: 500 });
      setSchedules(r.schedules);
      setLoaded(true);
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  useEffect(() => void load(), []);
  async function act(action: () => Promise<unknown>) {
    try {
      await action();
      setError("");
    } catch (err) {
      setError(connection.failed(err));
    }
    await load();
  }
  return (
    <main class="page schedules" aria-label="Schedules">
      <div class="page-head">
        <h1>Schedules</h1>
        <button type="button" class="primary" onClick={() => setCreating(!creating)} aria-expanded={creating}>
          New schedule
        </button>
      </div>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      {creating && (
        <ScheduleForm
          onDone={() => {
            setCreating(false);
            void load();
          }}
        />
      )}
      {loaded && schedules.length === 0 && <p class="hint">No schedules yet.</p>}
      <table class="grid">
        <thead>
          <tr>
            <th scope="col">Schedule</th>
            <th scope="col">When</th>
            <th scope="col">Next run</th>
            <th scope="col">Last run</th>
            <th scope="col">
              <span class="visually-hidden">Actions</span>
            </th>
          </tr>
        </thead>
        <tbody>
          {schedules.map((s) => (
            <Fragment key={s.name}>
              <tr data-schedule={s.name}>
                <td>
                  <strong>{s.displayName || idOf(s.name)}</strong>
                  <div class="hint prompt">{s.prompt}</div>
                </td>
                <td>
                  <code>{s.cron}</code>
                  <div class="hint">{s.timeZone || "UTC"}</div>
                </td>
                <td class="next-run">{s.enabled === false ? "disabled" : when(s.nextRunTime, s.timeZone)}</td>
                <td class="last-run">{s.lastRun ? STATUS[s.lastRun.status] : "never"}</td>
                <td>
                  <div class="row">
                    <label class="inline">
                      <input
                        type="checkbox"
                        checked={s.enabled !== false}
                        onChange={(e) =>
                          void act(() =>
                            connection.client.schedules.updateSchedule({
                              schedule: { name: s.name, enabled: (e.target as HTMLInputElement).checked },
                              updateMask: { paths: ["enabled"] },
                            }),
                          )
                        }
                      />
                      Enabled
                    </label>
                    <button
                      type="button"
                      onClick={() =>
                        void act(async () => {
                          await connection.client.schedules.runSchedule({ name: s.name });
                          setOpen(s.name);
                        })
                      }
                    >
                      Run now
                    </button>
                    <button type="button" aria-expanded={open === s.name} onClick={() => setOpen(open === s.name ? "" : s.name)}>
                      History
                    </button>
                    <button type="button" aria-expanded={editing === s.name} onClick={() => setEditing(editing === s.name ? "" : s.name)}>
                      Edit
                    </button>
                    {confirming === s.name ? (
                      <>
                        <button
                          type="button"
                          class="danger"
                          onClick={() => void act(() => connection.client.schedules.deleteSchedule({ name: s.name }))}
                        >
                          Yes, delete
                        </button>
                        <button type="button" onClick={() => setConfirming("")}>
                          Keep
                        </button>
                      </>
                    ) : (
                      <button type="button" class="danger" onClick={() => setConfirming(s.name)}>
                        Delete
                      </button>
                    )}
                  </div>
                </td>
              </tr>
              {editing === s.name && (
                <tr class="edit-row">
                  <td colSpan={5}>
                    <ScheduleForm
                      schedule={s}
                      onDone={() => {
                        setEditing("");
                        void load();
                      }}
                    />
                  </td>
                </tr>
              )}
              {open === s.name && (
                <tr class="runs-row">
                  <td colSpan={5}>
                    <Runs schedule={s} onChange={() => void load()} />
                  </td>
                </tr>
              )}
            </Fragment>
          ))}
        </tbody>
      </table>
    </main>
  );
}

function Runs({ schedule, onChange }: { schedule: Schedule; onChange: () => void }) {
  const [runs, setRuns] = useState<ScheduleRun[] | undefined>();
  const [error, setError] = useState("");
  useEffect(() => {
    let stopped = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    let wasActive = false;
    const load = async () => {
      try {
        const r = await connection.client.schedules.listScheduleRuns({ parent: schedule.name, pageSize: 20 });
        if (stopped) return;
        setRuns(r.runs);
        const active = r.runs.some((x) => x.status === RunStatus.PENDING || x.status === RunStatus.RUNNING);
        if (active) timer = setTimeout(load, 1000);
        else if (wasActive) onChange();
        wasActive = active;
      } catch (err) {
        if (!stopped) setError(connection.failed(err));
      }
    };
    void load();
    return () => {
      stopped = true;
      clearTimeout(timer);
    };
  }, [schedule.name, schedule.lastRun?.name]);
  if (error) return <p class="error">{error}</p>;
  if (!runs) return <p class="hint">Loading runs…</p>;
  if (runs.length === 0) return <p class="hint">No runs yet.</p>;
  return (
    <table class="runs" aria-label={`Runs of ${schedule.displayName}`}>
      <thead>
        <tr>
          <th scope="col">Time</th>
          <th scope="col">Trigger</th>
          <th scope="col">Status</th>
          <th scope="col">Session</th>
        </tr>
      </thead>
      <tbody>
        {runs.map((r) => (
          <tr key={r.name} data-run={r.name}>
            <td>{when(r.startTime ?? r.scheduledTime, schedule.timeZone)}</td>
            <td>{TRIGGER[r.trigger] ?? ""}</td>
            <td class={`run-status status-${STATUS[r.status]}`}>
              {STATUS[r.status]}
              {r.error && <div class="error">{r.error}</div>}
            </td>
            <td>{r.session ? <a href={`#/s/${idOf(r.session)}`}>open session</a> : ""}</td>
          </tr>
        ))}
      </tbody>
    </table>
  );
}

function zones(): string[] {
  try {
    return (Intl as unknown as { supportedValuesOf(k: string): string[] }).supportedValuesOf("timeZone");
  } catch {
    return [];
  }
}

/** The next five fire times of `cron` in `timeZone` (PreviewSchedule), asked a moment
 *  after the user stops typing; the server's complaint when the cron or zone is wrong. */
function Preview({ cron, timeZone }: { cron: string; timeZone: string }) {
  const [times, setTimes] = useState<Timestamp[]>([]);
  const [problem, setProblem] = useState("");
  useEffect(() => {
    if (!cron.trim()) {
      setTimes([]);
      setProblem("");
      return;
    }
    let current = true;
    const timer = setTimeout(async () => {
      try {
        const answer = await connection.client.schedules.previewSchedule({ cron, timeZone, count: 5 });
        if (current) {
          setTimes(answer.fireTimes);
          setProblem("");
        }
      } catch (err) {
        if (current) {
          setTimes([]);
          setProblem(connection.failed(err));
        }
      }
    }, 300);
    return () => {
      current = false;
      clearTimeout(timer);
    };
  }, [cron, timeZone]);
  return (
    <div class="preview" aria-live="polite">
      {problem ? (
        <p class="hint" role="status">
          {problem}
        </p>
      ) : (
        times.length > 0 && (
          <Fragment>
            <div class="hint">Next runs ({timeZone || "UTC"}):</div>
            <ol class="next-runs" aria-label="Next runs">
              {times.map((t, i) => (
                <li key={i}>{when(t, timeZone)}</li>
              ))}
            </ol>
          </Fragment>
        )
      )}
    </div>
  );
}

/** Creates a schedule, or edits `schedule` (UpdateSchedule with a field mask). */
function ScheduleForm({ schedule, onDone }: { schedule?: Schedule; onDone: () => void }) {
  const models = useModels();
  const [error, setError] = useState("");
  const localZone = Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
  const [cron, setCron] = useState(schedule?.cron ?? "");
  const [zone, setZone] = useState(schedule ? schedule.timeZone : localZone);
  const id = schedule ? "se" : "sc";
  async function submit(e: Event) {
    e.preventDefault();
    const form = new FormData(e.target as HTMLFormElement);
    const text = (k: string) => String(form.get(k) ?? "").trim();
    const fields = {
      displayName: text("title"),
      prompt: text("prompt"),
      cron: text("cron"),
      timeZone: text("zone"),
      model: text("model"),
      permissionMode: Number(text("mode")) as PermissionMode,
      enabled: form.get("enabled") === "on",
    };
    try {
      if (schedule) {
        await connection.client.schedules.updateSchedule({
          schedule: { name: schedule.name, ...fields },
          updateMask: {
            paths: ["display_name", "prompt", "cron", "time_zone", "model", "permission_mode", "enabled"],
          },
        });
      } else {
        await connection.client.schedules.createSchedule({ schedule: fields });
      }
      onDone();
    } catch (err) {
      setError(connection.failed(err));
    }
  }
  return (
    <form class="card add-model" onSubmit={submit} aria-label={schedule ? `Edit ${schedule.displayName}` : "New schedule"}>
      <label for={`${id}-title`}>Title</label>
      <input id={`${id}-title`} name="title" required defaultValue={schedule?.displayName} />
      <label for={`${id}-prompt`}>Prompt (sent as the message of each run)</label>
      <textarea id={`${id}-prompt`} name="prompt" rows={3} required defaultValue={schedule?.prompt} />
      <label for={`${id}-cron`}>Cron (5 fields: minute hour day-of-month month day-of-week)</label>
      <input
        id={`${id}-cron`}
        name="cron"
        required
        placeholder="0 9 * * 1-5"
        value={cron}
        onInput={(e) => setCron((e.target as HTMLInputElement).value)}
      />
      <label for={`${id}-zone`}>Time zone</label>
      <input
        id={`${id}-zone`}
        name="zone"
        list="sc-zones"
        value={zone}
        onInput={(e) => setZone((e.target as HTMLInputElement).value)}
      />
      <Preview cron={cron} timeZone={zone} />
      <datalist id="sc-zones">
        {zones().map((z) => (
          <option key={z} value={z} />
        ))}
      </datalist>
      <label for={`${id}-model`}>Model</label>
      <select id={`${id}-model`} name="model">
        <option value="">Server default</option>
        {models.map((m) => (
          <option key={m.name} value={m.name} selected={schedule?.model === m.name}>
            {m.displayName || idOf(m.name)}
          </option>
        ))}
      </select>
      <label for={`${id}-mode`}>Permissions (nobody is there to approve)</label>
      <select id={`${id}-mode`} name="mode">
        {[
          [PermissionMode.AUTO_APPROVE, "Auto-approve everything"],
          [PermissionMode.READ_ONLY, "Read only"],
          [PermissionMode.ASK, "Ask (runs wait for approval)"],
        ].map(([mode, label]) => (
          <option key={mode} value={mode} selected={(schedule?.permissionMode || PermissionMode.AUTO_APPROVE) === mode}>
            {label}
          </option>
        ))}
      </select>
      <label class="inline">
        <input type="checkbox" name="enabled" defaultChecked={schedule ? schedule.enabled !== false : true} /> Enabled
      </label>
      {error && (
        <p class="error" role="alert">
          {error}
        </p>
      )}
      <div class="row">
        <button type="submit" class="primary">
          {schedule ? "Save" : "Create"}
        </button>
        <button type="button" onClick={onDone}>
          Cancel
        </button>
      </div>
    </form>
  );
}
