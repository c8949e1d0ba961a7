// How the console writes times: absolute in the reader's locale, with UTC
// in the title for support conversations.

export function when(iso: string | null | undefined): string {
  if (!iso) return "—";
  const d = new Date(iso);
  return d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" });
}

export function utc(iso: string | null | undefined): string {
  return iso ? new Date(iso).toISOString() : "";
}

// countdown writes the time left until iso, e.g. "4 min 12 s".
export function countdown(iso: string, now: number): string {
  let s = Math.max(0, Math.round((new Date(iso).getTime() - now) / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  if (h > 0) return `${h} h ${m} min`;
  if (m > 0) return `${m} min ${s} s`;
  return `${s} s`;
}

export function plural(n: number, one: string, many = one + "s"): string {
  return `${n} ${n === 1 ? one : many}`;
}

// slugFrom suggests a slug for an organisation's name: a–z, 0–9 and "-",
// at most 30 (the server decides whether it is one, and whether it is
// free).
export function slugFrom(name: string): string {
  return name
    .normalize("NFKD")
    .replace(/[\u0300-\u036f]/g, "")
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "-")
    .replace(/^-+/, "")
    .slice(0, 30)
    .replace(/-+$/, "");
}

// duration writes a span of seconds in its largest whole unit, e.g.
// "30 days", "2 hours", "90 seconds".
export function duration(seconds: number): string {
  for (const [unit, n] of [["day", 86400], ["hour", 3600], ["minute", 60]] as const) {
    if (seconds >= n && seconds % n === 0) return plural(seconds / n, unit);
  }
  return plural(seconds, "second");
}

// span writes a length of time in seconds in its two largest units, e.g.
// "45 s", "3 min 5 s", "2 h 10 min", "3 days 4 h".
export function span(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  const units = [
    [86400, "day"],
    [3600, "h"],
    [60, "min"],
    [1, "s"],
  ] as const;
  const parts: string[] = [];
  let rest = s;
  for (const [n, unit] of units) {
    const q = Math.floor(rest / n);
    rest -= q * n;
    if (q > 0 || (parts.length === 0 && n === 1)) parts.push(unit === "day" ? plural(q, "day") : `${q} ${unit}`);
    if (parts.length === 2 || (parts.length === 1 && rest === 0)) break;
  }
  return parts.join(" ");
}

// bytes writes a size in bytes, e.g. "812 B", "2.4 kB", "1.0 MB".
export function bytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1000 * 1000) return `${(n / 1000).toFixed(1)} kB`;
  return `${(n / 1000 / 1000).toFixed(1)} MB`;
}
