// The console's only way to the control plane: the public API, through a
// client typed by the OpenAPI document the server serves (schema.d.ts is
// generated from console/openapi.json, which a Go test keeps equal to it).
import createClient from "openapi-fetch";
import type { components, paths } from "./schema";
import { confirmIdentity } from "./reauth.svelte";
import { navigate } from "./router.svelte";
import { ended, session, token } from "./session.svelte";

export type Schemas = components["schemas"];
export type Tenant = Schemas["Tenant"];
export type Operation = Schemas["Operation"];
export type Member = Schemas["Member"];
export type Invitation = Schemas["Invitation"];
export type AuditEvent = Schemas["Event"];
export type AuditRetention = paths["/api/v1/organizations/{org_id}/audit-chain"]["get"]["responses"][200]["content"]["application/json"]["data"]["retention"];
export type Organization = Schemas["Organization"];
export type Usage = paths["/api/v1/organizations/{org_id}/usage"]["get"]["responses"][200]["content"]["application/json"]["data"];
export type ServiceAccount = Schemas["ServiceAccount"];
export type ServiceToken = Schemas["ServiceToken"];
export type Stream = Schemas["Stream"];
export type StreamDelivery = Schemas["StreamDelivery"];
export type StreamTestResult = Schemas["StreamTestResult"];
export type AuditChainHead = Schemas["AuditChainHead"];
export type Role = Member["role"];
export type Permission = Organization["permissions"][number];
// A page of audit events: the route also answers NDJSON, which the
// generated type joins to the JSON page.
export type EventPage = paths["/api/v1/organizations/{org_id}/events"]["get"]["responses"][200]["content"]["application/json"];

export const api = createClient<paths>({ baseUrl: "" });

api.use({
  onRequest({ request }) {
    const t = token();
    if (t) request.headers.set("Authorization", `Bearer ${t}`);
    return request;
  },
});

// ApiError is an answer in the API's error envelope, or a failure to get
// one. requestId is what the API documentation tells users to quote.
export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
    readonly code: string,
    readonly requestId: string,
    readonly fieldErrors: { field: string; message: string }[] = [],
  ) {
    super(message);
  }
}

export const sessionEndedNotice = "Your session has ended (it expired or was signed out). Sign in again to go on.";

export function toError(response: Response, body: unknown): ApiError {
  const env = body as Partial<Schemas["Error"]> | undefined;
  const requestId = env?.meta?.request_id ?? response.headers.get("X-Request-ID") ?? "";
  if (env?.error) {
    return new ApiError(env.error.message, response.status, env.error.code, requestId, env.error.field_errors ?? []);
  }
  return new ApiError(`The server answered ${response.status} ${response.statusText}.`, response.status, "HTTP_" + response.status, requestId);
}

interface Answer<T> {
  data?: T;
  error?: unknown;
  response: Response;
}

// ok returns an answer's body or throws its error. A 401 on a request that
// carried a token means the session is over: the console forgets it and
// the app returns to sign-in with a notice.
export async function ok<T>(answer: Promise<Answer<T>>): Promise<T> {
  const r = await answer;
  if (r.response.ok && r.data !== undefined) return r.data;
  const err = toError(r.response, r.error);
  if (r.response.status === 401 && token()) ended(sessionEndedNotice);
  if (err.code === "MFA_REQUIRED") {
    // The organisation requires a second factor the person has not set up:
    // their account page is where they do it.
    session.mfaRequired = err.message;
    navigate("/account", true);
  }
  throw err;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// newKey makes the Idempotency-Key of one user action.
export function newKey(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return "console-" + Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const attempts = 6;

// mutate sends one user action with its own Idempotency-Key and, when the
// answer is lost (a network failure: the server may or may not have
// handled it) or the server asks to come back later (503, 429), sends it
// again with the same key, so the action happens at most once. An action
// that needs a recent authentication (403 REAUTHENTICATION_REQUIRED) asks
// the person to confirm who they are and, once they have, is sent once
// more with the same key; when they cancel, the refusal is the answer.
export async function mutate<T>(send: (key: string) => Promise<Answer<T>>): Promise<T> {
  const key = newKey();
  let delay = 400;
  let asked = false;
  for (let attempt = 1; ; attempt++) {
    let r: Answer<T>;
    try {
      r = await send(key);
    } catch (e) {
      if (attempt < attempts) {
        await sleep(delay);
        delay *= 2;
        continue;
      }
      throw new ApiError("The control plane could not be reached. Check your connection and try again.", 0, "NETWORK", "");
    }
    if ((r.response.status === 503 || r.response.status === 429) && attempt < attempts) {
      const after = Number(r.response.headers.get("Retry-After"));
      await sleep(after > 0 ? Math.min(after, 30) * 1000 : delay);
      delay *= 2;
      continue;
    }
    if (!asked && reauthenticationRequired(r)) {
      asked = true;
      if (await confirmIdentity()) {
        attempt = 0; // a new request as far as retries go
        continue;
      }
    }
    return ok(Promise.resolve(r));
  }
}

function reauthenticationRequired(r: Answer<unknown>): boolean {
  const env = r.error as Partial<Schemas["Error"]> | undefined;
  return r.response.status === 403 && env?.error?.code === "REAUTHENTICATION_REQUIRED";
}

// idem is the header block of a mutation.
export function idem(key: string) {
  return { "Idempotency-Key": key };
}

// allPages reads every page of a list (at most limit pages), for lists
// bounded by a quota or small by nature (members, a tenant's operations).
export async function allPages<T>(
  get: (cursor?: string) => Promise<{ data: T[]; meta: { cursor?: string; has_more?: boolean } }>,
  limit = 50,
): Promise<T[]> {
  const out: T[] = [];
  let cursor: string | undefined;
  for (let i = 0; i < limit; i++) {
    const page = await get(cursor);
    out.push(...page.data);
    if (!page.meta.has_more || !page.meta.cursor) break;
    cursor = page.meta.cursor;
  }
  return out;
}
