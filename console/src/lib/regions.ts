// The installation's regions (GET /organizations/{org_id}/regions): where
// tenants live, the organisation's default among them, and whether workers
// serve each. An installation without regions answers an empty list, and
// the console then shows nothing about regions.
import { api, ok, type Schemas } from "./api";

export type Region = Schemas["Region"];

// regionsPollMs is how often a page that shows tenants asks again whether
// each region is served (the API itself looks at most every few seconds).
const regionsPollMs = 10_000;

// watchRegions hands the regions to set now and every regionsPollMs, and
// returns what stops it (an $effect's cleanup). A failed look keeps the
// last answer: regions say where tenants are and whether they wait, they
// do not hold the page up. An installation without regions answers an
// empty list once and is not asked again: its regions are its
// configuration, which does not change while the console is open.
export function watchRegions(orgId: string, set: (regions: Region[]) => void): () => void {
  let stopped = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  async function look() {
    try {
      const page = await ok(api.GET("/api/v1/organizations/{org_id}/regions", { params: { path: { org_id: orgId } } }));
      if (!stopped) set(page.data);
      if (page.data.length === 0) return;
    } catch {
      // kept: the last answer
    }
    if (!stopped) timer = setTimeout(look, regionsPollMs);
  }
  look();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}

// hostnameOf is the hostname a tenant gets: <name>-<org>.<region>.<domain>,
// or <name>-<org>.<domain> without a region.
export function hostnameOf(name: string, orgSlug: string, region: string, domain: string): string {
  return `${name}-${orgSlug}.${region ? region + "." : ""}${domain}`;
}
