// The signed-in session. The bearer token lives in sessionStorage: it is
// gone when the tab closes, is never written to localStorage, and never
// appears in a URL.

const key = "intelliauth.session";

export interface Session {
  token: string;
  expiresAt: string;
  email: string;
}

function load(): Session | null {
  try {
    const raw = sessionStorage.getItem(key);
    return raw ? (JSON.parse(raw) as Session) : null;
  } catch {
    return null;
  }
}

export const session = $state<{ current: Session | null; notice: string }>({
  current: load(),
  notice: "",
});

export function signedIn(s: Session): void {
  sessionStorage.setItem(key, JSON.stringify(s));
  session.current = s;
  session.notice = "";
}

// signedInWith keeps the session a sign-in answered (with a password or a
// passkey). An answer that asks for a second step carries none.
export function signedInWith(a: { token?: string; expires_at: string; user?: { email: string } | null }): void {
  if (!a.token || !a.user) throw new Error("This account asks for a second step to sign in.");
  signedIn({ token: a.token, expiresAt: a.expires_at, email: a.user.email });
}

// ended forgets the session; notice is shown on the sign-in page.
export function ended(notice = ""): void {
  sessionStorage.removeItem(key);
  session.current = null;
  session.notice = notice;
}

export function token(): string | null {
  return session.current?.token ?? null;
}
