package api

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// regionFor is the region of a new tenant: the one the request chose, or
// the organisation's default, or the installation's first; "" in an
// installation without regions, which refuses a choice.
func (s *Server) regionFor(who *caller, chosen string) (string, error) {
	if chosen != "" {
		if err := s.knownRegions("region", chosen); err != nil {
			return "", err
		}
		return chosen, nil
	}
	if d := s.defaultRegion(*who.Org); d != nil {
		return *d, nil
	}
	return "", nil
}

// defaultRegion is where the organisation's new tenants live when a
// creation names no region: its own choice while the installation still
// has that region, or the installation's first; nil without regions.
func (s *Server) defaultRegion(o store.Organization) *string {
	if len(s.regions) == 0 {
		return nil
	}
	if d := o.DefaultRegion; d != nil && slices.Contains(s.regions, *d) {
		return d
	}
	return &s.regions[0]
}

// knownRegions refuses, as the request body's field, names of regions the
// installation lacks.
func (s *Server) knownRegions(field string, names ...string) error {
	for _, n := range names {
		if !slices.Contains(s.regions, n) {
			msg := "this installation has no regions"
			if len(s.regions) > 0 {
				msg = "one of the installation's regions: " + strings.Join(s.regions, ", ")
			}
			return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
				FieldErrors: []domain.FieldError{{Field: field, Message: msg}}}
		}
	}
	return nil
}

// tenantHostname is a tenant's hostname: <name>-<org>.<region>.<base>, or
// <name>-<org>.<base> on the installation's own data plane.
func tenantHostname(name, orgSlug, region, base string) string {
	if region == "" {
		return name + "-" + orgSlug + "." + base
	}
	return name + "-" + orgSlug + "." + region + "." + base
}

// regionView is a region as the API shows it.
type regionView struct {
	Name    string `json:"name"`
	Default bool   `json:"default" doc:"Whether the organisation's new tenants go to this region when a creation names none."`
	Serving bool   `json:"serving" doc:"Whether a worker of the region has asked for work within the last minutes. When false, the region's tenants' operations wait, and finish once its workers return; tenants of other regions are not held."`
}

// listRegions answers the installation's regions, the organisation's
// default among them, and whether each has workers serving it.
func (s *Server) listRegions(c *fiber.Ctx, who *caller) error {
	def, _ := s.regionFor(who, "")
	views := make([]regionView, len(s.regions))
	for i, name := range s.regions {
		views[i] = regionView{Name: name, Default: name == def, Serving: s.serving.of(c.UserContext(), s, name)}
	}
	return writeList(c, views, "", false)
}

// regionServing remembers, for a few seconds, whether each region has
// workers polling its task queue: one DescribeTaskQueue per region at
// most every regionServingTTL, whatever the number of requests.
type regionServing struct {
	mu   sync.Mutex
	seen map[string]servingSeen
}

type servingSeen struct {
	at      time.Time
	serving bool
}

const regionServingTTL = 5 * time.Second

func (r *regionServing) of(ctx context.Context, s *Server, region string) bool {
	r.mu.Lock()
	if r.seen == nil {
		r.seen = map[string]servingSeen{}
	}
	if v, ok := r.seen[region]; ok && time.Since(v.at) < regionServingTTL {
		r.mu.Unlock()
		return v.serving
	}
	r.mu.Unlock()
	serving := s.regionPolled(ctx, region)
	r.mu.Lock()
	r.seen[region] = servingSeen{at: time.Now(), serving: serving}
	r.mu.Unlock()
	return serving
}

// regionPolled asks Temporal whether a worker polled the region's task
// queue within s.servingWithin (Deps.RegionServingWithin: two minutes, as
// an idle worker's long poll lasts about 60 s and Temporal notes a
// poller's access when its poll starts; Temporal itself keeps pollers for
// about five minutes after their last poll). Temporal unreachable counts
// as not serving.
func (s *Server) regionPolled(ctx context.Context, region string) bool {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	serving, err := s.tenants.RegionServed(ctx, region, s.servingWithin)
	if err != nil {
		s.log.Warn().Err(err).Str("region", region).Msg("describe a region's task queue")
	}
	return serving
}
