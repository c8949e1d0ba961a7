// Passkeys in the browser. The API gives a ceremony's options as JSON, its
// binary fields (challenge, user id, credential ids) base64url, and takes
// the authenticator's answer as JSON the same way; navigator.credentials
// works in ArrayBuffers. This module is the one place that converts.

type Json = Record<string, unknown>;
type Descriptor = { id: string; type?: string; transports?: string[] };

// passkeysSupported says whether this browser can make and use passkeys.
export function passkeysSupported(): boolean {
  return typeof window.PublicKeyCredential === "function" && !!navigator.credentials;
}

function fromBase64url(s: string): ArrayBuffer {
  const b64 = s.replace(/-/g, "+").replace(/_/g, "/") + "===".slice((s.length + 3) % 4);
  const bin = atob(b64);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out.buffer;
}

function toBase64url(b: ArrayBuffer): string {
  let bin = "";
  for (const byte of new Uint8Array(b)) bin += String.fromCharCode(byte);
  return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function descriptors(list: unknown): PublicKeyCredentialDescriptor[] {
  return ((list as Descriptor[] | undefined) ?? []).map((d) => ({
    type: "public-key",
    id: fromBase64url(d.id),
    transports: d.transports as AuthenticatorTransport[] | undefined,
  }));
}

// PasskeyError is a ceremony the browser or the person ended, said so a
// person understands.
export class PasskeyError extends Error {}

function explain(e: unknown): never {
  if (e instanceof DOMException) {
    switch (e.name) {
      case "NotAllowedError":
        throw new PasskeyError("The passkey prompt was closed or timed out. Try again when you are ready.");
      case "InvalidStateError":
        throw new PasskeyError("This authenticator already holds a passkey for your account.");
      case "SecurityError":
        throw new PasskeyError("This browser refused passkeys for this address: open the console at its configured URL.");
    }
  }
  throw e;
}

function common(cred: PublicKeyCredential): Json {
  return {
    id: cred.id,
    rawId: toBase64url(cred.rawId),
    type: cred.type,
    clientExtensionResults: cred.getClientExtensionResults(),
    authenticatorAttachment: cred.authenticatorAttachment ?? undefined,
  };
}

// createPasskey runs a registration with the API's creation options and
// returns the new credential as the JSON the API takes.
export async function createPasskey(options: unknown): Promise<Json> {
  const o = options as Json & { challenge: string; user: Json & { id: string }; excludeCredentials?: unknown };
  const publicKey = {
    ...o,
    challenge: fromBase64url(o.challenge),
    user: { ...o.user, id: fromBase64url(o.user.id) },
    excludeCredentials: descriptors(o.excludeCredentials),
  } as unknown as PublicKeyCredentialCreationOptions;
  let cred: PublicKeyCredential | null;
  try {
    cred = (await navigator.credentials.create({ publicKey })) as PublicKeyCredential | null;
  } catch (e) {
    explain(e);
  }
  if (!cred) throw new PasskeyError("No passkey was made.");
  const r = cred.response as AuthenticatorAttestationResponse;
  return {
    ...common(cred),
    response: {
      clientDataJSON: toBase64url(r.clientDataJSON),
      attestationObject: toBase64url(r.attestationObject),
      transports: r.getTransports?.() ?? [],
    },
  };
}

// getPasskey runs a sign-in with the API's request options and returns
// the assertion as the JSON the API takes.
export async function getPasskey(options: unknown): Promise<Json> {
  const o = options as Json & { challenge: string; allowCredentials?: unknown };
  const publicKey = {
    ...o,
    challenge: fromBase64url(o.challenge),
    allowCredentials: descriptors(o.allowCredentials),
  } as unknown as PublicKeyCredentialRequestOptions;
  let cred: PublicKeyCredential | null;
  try {
    cred = (await navigator.credentials.get({ publicKey })) as PublicKeyCredential | null;
  } catch (e) {
    explain(e);
  }
  if (!cred) throw new PasskeyError("No passkey answered.");
  const r = cred.response as AuthenticatorAssertionResponse;
  return {
    ...common(cred),
    response: {
      clientDataJSON: toBase64url(r.clientDataJSON),
      authenticatorData: toBase64url(r.authenticatorData),
      signature: toBase64url(r.signature),
      userHandle: r.userHandle ? toBase64url(r.userHandle) : undefined,
    },
  };
}
