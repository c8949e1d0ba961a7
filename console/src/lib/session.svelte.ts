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

// mfaRequired is why the person was sent to set up a second factor (an
// organisation requires one); shown on their account page until they do.
export const session = $state<{ current: Session | null; notice: string; mfaRequired: string }>({
  current: load(),
  notice: "",
  mfaRequired: "",
});

export function signedIn(s: Session): void {
  sessionStorage.setItem(key, JSON.stringify(s));
  session.current = s;
  session.notice = "";
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
