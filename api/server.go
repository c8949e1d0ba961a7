// Package api is the control plane's public HTTP API: Fiber
// handlers that decode, authorise, make one call (a query, or a workflow
// start or update) and write the envelope. Business decisions live in
// workflows/ and activities/, not here.
package api

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"time"

	"github.com/gofiber/fiber/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/rs/zerolog"
	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"

	"github.com/intelliauth/controlplane/internal/billing"
	"github.com/intelliauth/controlplane/internal/config"
	"github.com/intelliauth/controlplane/internal/outbound"
	"github.com/intelliauth/controlplane/internal/password"
	"github.com/intelliauth/controlplane/internal/seal"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// Deps are what the API needs from the process.
type Deps struct {
	DB       *bun.DB
	Temporal client.Client
	Log      zerolog.Logger
	Metrics  *Metrics // nil: a new registry

	SessionTTL time.Duration // default 12h
	// ReauthWindow is how long a session counts as recently authenticated
	// (default 10 minutes).
	ReauthWindow time.Duration
	// Keys seal people's TOTP secrets (the key ring that seals tenants'
	// signing keys; the api's configuration requires it). Nil, in tests of
	// one process only: a ring made for this server, which no other reads.
	Keys          *seal.Ring
	InvitationTTL time.Duration // default 7 days
	// ServiceTokenMaxTTL bounds a service-account token's expiry (default
	// 90 days).
	ServiceTokenMaxTTL time.Duration
	// TenantMaxLifetime bounds an ephemeral tenant's lifetime (default 30
	// days).
	TenantMaxLifetime time.Duration
	DomainBase        string
	// Regions are the installation's regions, the first the default
	// (CP_REGIONS); none: tenants live on its own data plane.
	Regions []string
	// RegionServingWithin is how recently a worker of a region must have
	// asked for work for the region to count as served (default 2
	// minutes). It must stay well above a minute: an idle worker's long
	// poll of its task queue lasts about 60 s and Temporal notes a
	// poller's access when the poll starts, so a healthy, idle worker's
	// last access is up to a minute old; two minutes leave room for a
	// slow re-poll. Tests set it shorter to see a stopped worker sooner.
	RegionServingWithin time.Duration

	// Namespace (default "default"), TaskQueue and Saga go to the tenant
	// workflows the API starts.
	Namespace string
	TaskQueue string
	Saga      config.Saga
	// WorkerBound is how long a lifecycle request waits for a worker
	// (default 5 s).
	WorkerBound time.Duration

	// PublicRequestsPerMinute is the rate limit of a client address on the
	// routes without a token (default 600); UserRequestsPerMinute that of a
	// user on the routes outside an organisation (default 1200). Routes of an
	// organisation are limited by its plan.
	PublicRequestsPerMinute int
	UserRequestsPerMinute   int
	// TenantTransitionsPerMinute bounds the lifecycle transitions of one
	// tenant in a minute (default 12); each caller may take half of them.
	TenantTransitionsPerMinute int

	// SignInPolicy throttles password checks (zero: store.DefaultSignInPolicy).
	SignInPolicy store.SignInPolicy

	// TrustedProxies are the networks of reverse proxies whose
	// X-Forwarded-For names the client; none: the client is the peer.
	TrustedProxies []netip.Prefix

	// ConsoleURL is the web console's public base URL, which invitation
	// mail links to (default https://manage.<DomainBase>).
	ConsoleURL string
	// TemporalUIURL is the Temporal UI's base URL: tenants and operations
	// link to their saga there. Empty: no links.
	TemporalUIURL string

	// SignUpOpen lets anyone sign up and create an organisation (closed:
	// sign-up and verification answer 403).
	SignUpOpen bool
	// MaxOrgsPerUser is the most organisations a person may belong to and
	// still create another (default 5).
	MaxOrgsPerUser int

	// Streams are the audit streams' settings: where an endpoint may point
	// (AllowPrivate), and what the workflows the API starts are given.
	Streams config.Streams
	// StreamResolver resolves a stream endpoint's host when it is saved
	// (nil: the system's); tests play DNS with it.
	StreamResolver outbound.Resolver

	// Billing is billing on Stripe (nil: off; the billing routes answer
	// 404 and owners change plans directly).
	Billing *billing.Stripe
}

// Server is the HTTP API.
type Server struct {
	app      *fiber.App
	db       *bun.DB
	temporal client.Client
	log      zerolog.Logger
	metrics  *Metrics

	sessionTTL    time.Duration
	reauthWindow  time.Duration
	keys          *seal.Ring
	invitationTTL time.Duration
	tokenMaxTTL   time.Duration
	// tenantMaxLifetime bounds an ephemeral tenant's lifetime.
	tenantMaxLifetime time.Duration
	domainBase        string
	regions           []string
	serving           regionServing
	servingWithin     time.Duration
	consoleURL        string
	// temporalUIURL and namespace make the links to sagas (workflowURL).
	temporalUIURL string
	namespace     string

	tenants *workflows.Client
	// billing is nil when billing is off.
	billing *billing.Stripe
	// orgDeletionGrace is how long a deleted organisation can be restored.
	orgDeletionGrace time.Duration
	ready            readiness
	cursors          cursorKey

	limiter        *limiter
	publicRPM      int
	userRPM        int
	transitionsPM  int
	signInPolicy   store.SignInPolicy
	trustedProxies []netip.Prefix
	// hashSlots bounds the argon2id computations running at once.
	hashSlots chan struct{}
	// dummyHash is verified against for an unknown email, so it costs what
	// a known one does.
	dummyHash string

	signUpOpen     bool
	maxOrgsPerUser int

	streams        config.Streams
	streamResolver outbound.Resolver
	// streamClient is the test button's: outbound's rules, as deliveries.
	streamClient *http.Client
}

// bodyLimit bounds every request body; the API's bodies are small JSON.
const bodyLimit = 64 << 10

// New builds the API with its routes and middleware.
func New(d Deps) *Server {
	namespace := cmp.Or(d.Namespace, "default")
	s := &Server{db: d.DB, temporal: d.Temporal, log: d.Log, metrics: d.Metrics,
		sessionTTL: d.SessionTTL, reauthWindow: cmp.Or(d.ReauthWindow, 10*time.Minute), keys: d.Keys, invitationTTL: d.InvitationTTL, tokenMaxTTL: cmp.Or(d.ServiceTokenMaxTTL, 90*24*time.Hour),
		tenantMaxLifetime: cmp.Or(d.TenantMaxLifetime, 30*24*time.Hour), domainBase: d.DomainBase, regions: d.Regions, servingWithin: cmp.Or(d.RegionServingWithin, 2*time.Minute),
		consoleURL: strings.TrimRight(d.ConsoleURL, "/"), temporalUIURL: strings.TrimRight(d.TemporalUIURL, "/"), namespace: namespace,
		tenants:        workflows.NewClient(d.Temporal, namespace, cmp.Or(d.TaskQueue, workflows.DefaultTaskQueue), cmp.Or(d.Saga, config.DefaultSaga())),
		hashSlots:      make(chan struct{}, 2*runtime.GOMAXPROCS(0)),
		publicRPM:      cmp.Or(d.PublicRequestsPerMinute, 600),
		userRPM:        cmp.Or(d.UserRequestsPerMinute, 1200),
		transitionsPM:  cmp.Or(d.TenantTransitionsPerMinute, 12),
		signInPolicy:   cmp.Or(d.SignInPolicy, store.DefaultSignInPolicy),
		trustedProxies: d.TrustedProxies,
		signUpOpen:     d.SignUpOpen,
		maxOrgsPerUser: cmp.Or(d.MaxOrgsPerUser, 5),
	}
	if d.DB != nil { // without one (unit tests of the HTTP layer) nothing is limited
		s.cursors.db = d.DB
		s.limiter = newLimiter(d.DB, d.Log)
	}
	if s.metrics == nil {
		s.metrics = NewMetrics()
	}
	s.orgDeletionGrace = cmp.Or(d.Saga, config.DefaultSaga()).OrgDeletionGrace
	s.streams = cmp.Or(d.Streams, config.DefaultStreams())
	s.tenants.Streams, s.streamResolver = s.streams, d.StreamResolver
	if s.billing = d.Billing; s.billing != nil {
		s.tenants.Billing = s.billing.Config()
	}
	s.streamClient = outbound.NewClient(outbound.Options{AllowPrivate: s.streams.AllowPrivate, Resolver: d.StreamResolver,
		Timeout: min(s.streams.Timeout, streamTestTimeout)})
	if d.WorkerBound > 0 {
		s.tenants.Bound = d.WorkerBound
	}
	if s.sessionTTL == 0 {
		s.sessionTTL = 12 * time.Hour
	}
	if s.invitationTTL == 0 {
		s.invitationTTL = 7 * 24 * time.Hour
	}
	if s.domainBase == "" {
		s.domainBase = "intelliauth.localhost"
	}
	if s.consoleURL == "" {
		s.consoleURL = "https://manage." + s.domainBase
	}
	var err error
	if s.keys == nil {
		if s.keys, err = ephemeralRing(); err != nil {
			panic(err) // crypto/rand failed: nothing can work
		}
	}
	// Of a random password: no one can give it, so an unknown email's
	// check never succeeds (and never gives its attempt back).
	if s.dummyHash, err = password.Hash(rand.Text(), password.Default); err != nil {
		panic(err) // crypto/rand failed: nothing can work
	}
	proxies := make([]string, len(s.trustedProxies))
	for i, p := range s.trustedProxies {
		proxies[i] = p.String()
	}
	s.app = fiber.New(fiber.Config{
		AppName: "intelliauth-controlplane",
		// Values read from a request (method, params, headers) are copies:
		// without this they share the connection's buffers, and any kept
		// past the request (metric labels, cache keys, a log field written
		// later) would read as a later request's bytes.
		Immutable: true,
		// c.IP() is the peer, unless the peer is a trusted proxy: then it is
		// X-Forwarded-For, which forwardedClient has reduced to the client.
		EnableTrustedProxyCheck: true,
		TrustedProxies:          proxies,
		ProxyHeader:             fiber.HeaderXForwardedFor,
		EnableIPValidation:      true,
		DisableStartupMessage:   true,
		BodyLimit:               bodyLimit,
		ReadTimeout:             30 * time.Second,
		WriteTimeout:            60 * time.Second,
		IdleTimeout:             120 * time.Second,
		JSONEncoder:             json.Marshal,
		JSONDecoder:             json.Unmarshal,
		// Errors are written by observe; this only catches what escapes it
		// (a failure to write the envelope itself).
		ErrorHandler: writeError,
	})
	openAPIDocument() // panics when the route table and routeDocs disagree
	s.routes()
	return s
}

// routes is the one place the middleware order and the routes are visible:
// clean headers → forwarded client → request id → observe (errors, log
// line, metrics) → recover → (the API) cursor key → route.
func (s *Server) routes() {
	s.app.Use(cleanHeaders, s.forwardedClient, s.withRequestID, s.observe, recoverPanic)
	s.app.Use("/api/v1", s.withCursorKey)

	s.app.Get("/healthz", s.healthz)
	s.app.Get("/readyz", s.readyz)
	s.mountExplorer()
	s.mountConsole()
	for _, r := range s.table() {
		s.app.Add(r.Method, r.Path, s.guard(r))
	}
}

// MetricsHandler serves the API's Prometheus metrics. It is served on its
// own listener (CP_METRICS_ADDR), never on the public one, with the
// process's other metrics (extra).
func (s *Server) MetricsHandler(extra ...prometheus.Gatherer) http.Handler {
	return promhttp.HandlerFor(append(prometheus.Gatherers{s.metrics.Registry}, extra...), promhttp.HandlerOpts{})
}

// App exposes the Fiber app, for tests that call it in-process.
func (s *Server) App() *fiber.App { return s.app }

// Serve serves on ln until Shutdown.
func (s *Server) Serve(ln net.Listener) error { return s.app.Listener(ln) }

// Shutdown stops accepting connections and waits for requests in flight, up
// to the context's deadline.
// The requests counted and not added yet are added after the last one.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.app.ShutdownWithContext(ctx)
	if s.limiter != nil {
		if ferr := s.limiter.stop(ctx); ferr != nil {
			s.log.Warn().Err(ferr).Msg("request counts not added at shutdown")
		}
	}
	return err
}

// FlushUsage adds the API requests this process counted to the store now
// (it does every 30 s and at shutdown by itself).
func (s *Server) FlushUsage(ctx context.Context) error {
	if s.limiter == nil {
		return nil
	}
	return s.limiter.flushUsage(ctx)
}

// ephemeralRing is a key ring of one random key, for a server that was
// given none (tests of one process).
func ephemeralRing() (*seal.Ring, error) {
	k, err := seal.NewKey("ephemeral")
	if err != nil {
		return nil, err
	}
	return seal.ParseRing(k)
}
