// How the streams pages name and describe an audit stream. The rules
// (which endpoint, which action, which kind takes a credential) are the
// API's: it answers a request that breaks one with a field error, shown
// as it is.
import type { Stream } from "../../lib/api";
import { plural, span } from "../../lib/format";

export type Kind = Stream["kind"];

export const kinds: { value: Kind; label: string; endpoint: string; credential: string }[] = [
  { value: "https", label: "HTTPS", endpoint: "https://hooks.example.com/intelliauth", credential: "" },
  { value: "splunk_hec", label: "Splunk HEC", endpoint: "https://splunk.example.com:8088/services/collector/event", credential: "HEC token" },
  { value: "datadog", label: "Datadog", endpoint: "https://http-intake.logs.datadoghq.com/api/v2/logs", credential: "Datadog API key" },
];

export function kindOf(k: Kind) {
  return kinds.find((x) => x.value === k) ?? kinds[0]!;
}

// Presets of the actions filter, in the audit actions' names.
export const presets: { label: string; actions: string[] }[] = [
  {
    // CI that uses ephemeral tenants is told when one is ready or gone
    // instead of polling.
    label: "Lifecycle webhooks",
    actions: [
      "tenant.provisioned",
      "tenant.provisioning_failed",
      "tenant.suspended",
      "tenant.suspend_failed",
      "tenant.resumed",
      "tenant.resume_failed",
      "tenant.decommissioning",
      "tenant.decommissioned",
      "tenant.decommission_failed",
      "tenant.restored",
    ],
  },
  { label: "Every tenant event", actions: ["tenant.*"] },
  { label: "Members and access", actions: ["member.*", "invitation.*", "service_account.*"] },
];

// lag says how far behind the stream is, in events and time.
export function lag(s: Stream): string {
  if (s.lag.events === 0) return "caught up";
  const behind = plural(s.lag.events, "event");
  return s.lag.seconds > 0 ? `${behind}, ${span(s.lag.seconds)}` : behind;
}

// troubled is a stream whose last error explains its status.
export function troubled(s: Stream): boolean {
  return s.status === "failing" || s.status === "suspended";
}
