// Small shared helpers for the views.
import { useEffect, useState } from "preact/hooks";

/** google.protobuf.Timestamp as protobuf-es gives it. */
export interface Timestamp {
  seconds: bigint;
  nanos: number;
}

/** Re-renders the calling component whenever `source` notifies. */
export function useSubscription(source: { subscribe(l: () => void): () => void } | undefined) {
  const [, setVersion] = useState(0);
  useEffect(() => source?.subscribe(() => setVersion((n) => n + 1)), [source]);
}

export function timeOf(ts: Timestamp | undefined): number {
  return ts ? Number(ts.seconds) * 1000 + Math.floor(ts.nanos / 1e6) : 0;
}

export function ago(ts: Timestamp | undefined): string {
  const t = timeOf(ts);
  if (!t) return "";
  const s = Math.max(0, (Date.now() - t) / 1000);
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return new Date(t).toLocaleDateString();
}

/** The id of a resource name (`sessions/abc` → `abc`). */
export function idOf(name: string): string {
  return name.slice(name.lastIndexOf("/") + 1);
}
