// A small router over the History API: the console's state that matters
// (the organisation, the page, a tenant, the audit filters) is in the URL,
// so a link can be shared and the back button works.

export const route = $state({ path: location.pathname, search: location.search });

function sync(): void {
  route.path = location.pathname;
  route.search = location.search;
}

window.addEventListener("popstate", sync);

export function navigate(to: string, replace = false): void {
  if (replace) history.replaceState(null, "", to);
  else history.pushState(null, "", to);
  sync();
  window.scrollTo(0, 0);
}

// link makes an <a href> navigate in the page on a plain click, keeping
// modified clicks (new tab, new window) to the browser.
export function link(e: MouseEvent): void {
  const a = e.currentTarget as HTMLAnchorElement;
  if (e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
  if (a.origin !== location.origin) return;
  e.preventDefault();
  navigate(a.pathname + a.search);
}

export function query(): URLSearchParams {
  return new URLSearchParams(route.search);
}

// orgPath is the URL of a page of an organisation.
export function orgPath(orgId: string, ...rest: string[]): string {
  return ["/orgs", orgId, ...rest].map((p, i) => (i === 0 ? p : encodeURIComponent(p))).join("/");
}
