package api

import (
	"context"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/store"
)

// limiter enforces per-minute request budgets shared by every API replica
// (no shared state lives in process memory). The count lives in Postgres
// (store.ReserveRequests); a process reserves a small batch of a scope's
// budget at a time and spends it locally, so a request costs a database
// round trip only once per batch, and a spent budget refuses locally until
// its window ends.
//
// The batch is 1/200 of the limit (1 to 100): with r replicas, at most
// r×(batch−1) requests of a window can be held by one replica while another
// is refused, e.g. 3 of a free plan's 600 per minute with two replicas.
type limiter struct {
	db  bun.IDB
	log zerolog.Logger

	mu        sync.Mutex
	budgets   map[string]*budget
	nextSweep time.Time

	// plans are the plans' requests per minute, read again after planTTL
	// or for a plan not seen yet (an organisation's plan_id is a foreign
	// key, so that is a new plan): a join in the per-request
	// authentication query cost more.
	plansMu     sync.Mutex
	plans       map[string]int
	plansLoaded time.Time

	// usage counts the requests admitted to organisations' budgets, per
	// organisation and UTC day, that this process has not added to the
	// store yet (store.AddRequestCounts): it adds them every
	// usageFlushEvery, and at shutdown, so counting a request costs no
	// round trip of its own.
	usageMu    sync.Mutex
	usage      map[string]map[string]int64
	usageStart sync.Once
	usageStop  chan struct{}
}

// usageFlushEvery is how often a process adds the requests it counted;
// the daily close waits store.UsageCloseDelay after midnight, well past
// it.
const usageFlushEvery = 30 * time.Second

// orgScopePrefix starts the scope of an organisation's budget, which every
// request of its members and service accounts is charged to.
const orgScopePrefix = "org:"

const planTTL = time.Minute

// budget is this process's view of one scope's current window.
type budget struct {
	mu sync.Mutex
	// end is when the window ends, on this process's clock.
	end time.Time
	// tokens are reserved and not yet spent.
	tokens int
	// used is the window's shared count at the last reservation.
	used int64
	// spent is set when a reservation was refused: nothing more is granted
	// in this window, unless the limit changes (a plan upgrade).
	spent bool
	limit int
}

// verdict is the outcome of one request's check, and its headers.
type verdict struct {
	allowed   bool
	limit     int
	remaining int
	reset     time.Duration
}

func newLimiter(db bun.IDB, log zerolog.Logger) *limiter {
	return &limiter{db: db, log: log, budgets: map[string]*budget{}, usage: map[string]map[string]int64{}, usageStop: make(chan struct{})}
}

func batchFor(limit int) int { return min(max(limit/200, 1), 100) }

// take spends one request of scope's budget of limit per minute.
func (l *limiter) take(ctx context.Context, scope string, limit int) verdict {
	now := time.Now()
	b := l.budget(scope, now)
	b.mu.Lock()
	defer b.mu.Unlock()
	if !now.Before(b.end) { // a new window
		b.tokens, b.used, b.spent = 0, 0, false
	}
	if limit != b.limit {
		b.spent, b.limit = false, limit
	}
	if b.tokens == 0 && !b.spent {
		w, err := store.ReserveRequests(ctx, l.db, scope, limit, batchFor(limit))
		if err != nil {
			// A limiter that cannot reach its store lets requests through
			// rather than refuse every one; the request itself will fail if
			// the database is really gone.
			l.log.Warn().Err(err).Str("scope", scope).Msg("rate limit not checked")
			return verdict{allowed: true, limit: limit, remaining: limit, reset: time.Minute}
		}
		b.end = time.Now().Add(w.ResetIn)
		b.used = w.Used
		b.tokens = w.Granted
		b.spent = w.Granted == 0
	}
	v := verdict{limit: limit, reset: time.Until(b.end)}
	if b.tokens > 0 {
		b.tokens--
		v.allowed = true
		if org, ok := strings.CutPrefix(scope, orgScopePrefix); ok {
			l.countRequest(org, now)
		}
	}
	// What is left of the shared budget: the limit less the shared count,
	// which includes the tokens this process holds and has not spent.
	v.remaining = min(max(limit-int(b.used)+b.tokens, 0), limit)
	return v
}

// countRequest counts one request admitted to the organisation's budget
// on its UTC day, and starts the flusher with the first one.
func (l *limiter) countRequest(orgID string, now time.Time) {
	l.usageStart.Do(func() { go l.flushEvery(usageFlushEvery) })
	day := now.UTC().Format(store.DayLayout)
	l.usageMu.Lock()
	defer l.usageMu.Unlock()
	days := l.usage[orgID]
	if days == nil {
		days = map[string]int64{}
		l.usage[orgID] = days
	}
	days[day]++
}

// flushEvery adds the counted requests every period until the limiter
// stops.
func (l *limiter) flushEvery(period time.Duration) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-l.usageStop:
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			if err := l.flushUsage(ctx); err != nil {
				l.log.Warn().Err(err).Msg("request counts not added yet; kept for the next flush")
			}
			cancel()
		}
	}
}

// flushUsage adds the requests counted so far to the store in one
// statement; counts it could not add are kept for the next flush.
func (l *limiter) flushUsage(ctx context.Context) error {
	l.usageMu.Lock()
	counts := l.usage
	l.usage = map[string]map[string]int64{}
	l.usageMu.Unlock()
	if len(counts) == 0 {
		return nil
	}
	err := store.AddRequestCounts(ctx, l.db, counts)
	if err != nil {
		l.usageMu.Lock()
		for org, days := range counts {
			for day, n := range days {
				if l.usage[org] == nil {
					l.usage[org] = map[string]int64{}
				}
				l.usage[org][day] += n
			}
		}
		l.usageMu.Unlock()
	}
	return err
}

// stop ends the flusher and adds what is left.
func (l *limiter) stop(ctx context.Context) error {
	select {
	case <-l.usageStop:
	default:
		close(l.usageStop)
	}
	return l.flushUsage(ctx)
}

// budget returns the scope's budget, dropping ended windows once a minute so
// the map does not grow with every address ever seen.
func (l *limiter) budget(scope string, now time.Time) *budget {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.After(l.nextSweep) {
		for k, b := range l.budgets {
			if b.mu.TryLock() {
				if now.After(b.end) {
					delete(l.budgets, k)
				}
				b.mu.Unlock()
			}
		}
		l.nextSweep = now.Add(time.Minute)
		go l.forget()
	}
	b, ok := l.budgets[scope]
	if !ok {
		b = &budget{}
		l.budgets[scope] = b
	}
	return b
}

// planLimit is the requests per minute of the plan; 0 when it cannot be
// read.
func (l *limiter) planLimit(ctx context.Context, planID string) int {
	l.plansMu.Lock()
	defer l.plansMu.Unlock()
	rpm, ok := l.plans[planID]
	if ok && time.Since(l.plansLoaded) < planTTL {
		return rpm
	}
	ps, err := store.Plans(ctx, l.db)
	if err != nil {
		l.log.Warn().Err(err).Msg("plans not read; kept the last ones")
		return rpm
	}
	l.plans = make(map[string]int, len(ps))
	for _, p := range ps {
		l.plans[p.ID] = p.RequestsPerMinute
	}
	l.plansLoaded = time.Now()
	return l.plans[planID]
}

// forget deletes ended windows from the shared table, sign-in throttle
// keys that are long over and sign-ups that expired unverified; every
// replica does it once a minute, which is idempotent and cheap.
func (l *limiter) forget() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := store.ForgetRateWindows(ctx, l.db); err != nil {
		l.log.Warn().Err(err).Msg("ended rate limit windows not deleted")
	}
	if err := store.ForgetSignInAttempts(ctx, l.db); err != nil {
		l.log.Warn().Err(err).Msg("old sign-in throttle keys not deleted")
	}
	if err := store.ForgetSignUps(ctx, l.db); err != nil {
		l.log.Warn().Err(err).Msg("expired sign-ups not deleted")
	}
}

// planLimit is the plan's requests per minute (0: unknown, not limited).
func (s *Server) planLimit(c *fiber.Ctx, planID string) int {
	if s.limiter == nil {
		return 0
	}
	return s.limiter.planLimit(c.UserContext(), planID)
}

// rateLimit charges the request to scope; a spent budget is RATE_LIMITED
// with Retry-After.
func (s *Server) rateLimit(c *fiber.Ctx, scope string, limit int) error {
	if wait := s.charge(c, scope, limit); wait > 0 {
		return domain.Errorf(domain.CodeRateLimited, "rate limit of %d requests per minute reached; retry in %d s", limit, wait)
	}
	return nil
}

// charge spends one request of scope's budget of limit per minute and sets
// the RateLimit headers. When the budget is spent it sets Retry-After and
// returns the seconds to wait; otherwise 0.
func (s *Server) charge(c *fiber.Ctx, scope string, limit int) (wait int) {
	if s.limiter == nil || limit <= 0 {
		return 0
	}
	v := s.limiter.take(c.UserContext(), scope, limit)
	reset := max(int((v.reset+time.Second-1)/time.Second), 1)
	c.Set("RateLimit-Limit", strconv.Itoa(v.limit))
	c.Set("RateLimit-Remaining", strconv.Itoa(v.remaining))
	c.Set("RateLimit-Reset", strconv.Itoa(reset))
	if v.allowed {
		charged, _ := c.Locals(chargedBudgets{}).([]budgetRef)
		c.Locals(chargedBudgets{}, append(charged, budgetRef{scope, limit}))
		return 0
	}
	c.Set(fiber.HeaderRetryAfter, strconv.Itoa(reset))
	return reset
}

// chargedBudgets is the key of the budgets a request was charged to, in
// order (a []budgetRef in its Locals): a request that costs more than one
// (an export, per page it reads) charges the same ones again, whatever the
// guard's rule for this caller.
type chargedBudgets struct{}

type budgetRef struct {
	scope string
	limit int
}

// chargeAgain charges up to n more requests to every budget the request
// was charged to so far, one request at a time, and returns how many it
// could charge to all of them (fewer than n when one is spent).
func (s *Server) chargeAgain(c *fiber.Ctx, n int) int {
	budgets, _ := c.Locals(chargedBudgets{}).([]budgetRef)
	budgets = slices.Clone(budgets)
	for i := range n {
		for _, b := range budgets {
			if s.charge(c, b.scope, b.limit) > 0 {
				return i
			}
		}
	}
	return n
}

// limitTransitions charges a lifecycle transition (suspend, resume,
// decommission, restore) to its tenant's budget of transitionsPM a minute,
// shared by every replica, before next sends anything to the tenant's
// workflow: a tenant cycled as fast as the organisation's budget allows
// would grow its workflow's state and history without end. The caller (a
// member or a service account) spends its own share first, half the
// budget, so no one caller can spend what the others need (a developer
// cannot keep the owner from decommissioning). The budget is the tenant's
// within the route's organisation, whose membership the guard checked: a
// member of another organisation naming the tenant spends a budget nobody
// else uses. A tenant id of the wrong form is left to next's 404.
func (s *Server) limitTransitions(next func(*fiber.Ctx, *caller) error) func(*fiber.Ctx, *caller) error {
	return func(c *fiber.Ctx, who *caller) error {
		tenantID := c.Params("tenant_id")
		if !domain.ValidID(domain.PrefixTenant, tenantID) {
			return next(c, who)
		}
		scope := "tenant-transitions:" + who.OrgID + "/" + tenantID
		self := "member:" + who.MemberID
		if sa := who.ServiceAccount; sa != nil {
			self = "sa:" + sa.ID
		}
		for _, b := range []struct {
			scope string
			limit int
		}{{scope + "/" + self, memberShare(s.transitionsPM)}, {scope, s.transitionsPM}} {
			if wait := s.charge(c, b.scope, b.limit); wait > 0 {
				return domain.Errorf(domain.CodeRateLimited, "tenant %s: at most %d lifecycle transitions a minute, %d of them by one caller; retry in %d s",
					tenantID, s.transitionsPM, memberShare(s.transitionsPM), wait)
			}
		}
		return next(c, who)
	}
}
