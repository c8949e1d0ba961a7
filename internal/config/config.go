// Package config reads the control plane's configuration from CP_*
// environment variables once, at start, and reports every invalid value at
// once, one line each.
package config

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/seal"
)

// Mode is the subcommand being configured; it decides which values are
// required and which defaults apply.
type Mode string

// The subcommands of cmd/controlplane.
const (
	ModeDev         Mode = "dev"
	ModeAPI         Mode = "api"
	ModeWorker      Mode = "worker"
	ModeMigrate     Mode = "migrate"
	ModeBootstrap   Mode = "bootstrap"
	ModeSetup       Mode = "setup"
	ModeHealthcheck Mode = "healthcheck"
	ModeVerify      Mode = "verify"
	ModeUsers       Mode = "users"
	// ModeAudit verifies audit chains: from the database, or from an
	// export without one.
	ModeAudit Mode = "audit"
	// ModeRegionWorker is `controlplane worker --region <name>`: the
	// data-plane steps of one region's tenants, with that region's data
	// plane as its only database.
	ModeRegionWorker Mode = "region-worker"
)

// Dev defaults for the bootstrap organisation and owner, printed once when
// `controlplane dev` starts with them.
const (
	DevOrgName       = "Acme"
	DevOrgSlug       = "acme"
	DevOwnerEmail    = "owner@acme.test"
	DevOwnerPassword = "intelliauth-dev-password"
)

// Config is the whole configuration of one process.
type Config struct {
	Mode Mode

	HTTPAddr    string
	MetricsAddr string // Prometheus metrics, never on the public listener
	DatabaseURL string // empty in dev mode: a private cluster is started
	// DatabaseMaxConns bounds this process's Postgres connections.
	DatabaseMaxConns int
	// WorkflowCacheSize bounds how many tenant workflows a worker keeps in
	// memory between their tasks (each tenant's workflow lives as long as
	// the tenant): a worker's memory is bounded by it, not by the number of
	// tenants.
	WorkflowCacheSize int
	// SpareSchemas is how many tenant schemas a worker keeps ready in its
	// data plane, for creations to take (0: none).
	SpareSchemas      int
	TemporalAddress   string
	TemporalNamespace string
	// TemporalRetention is how long Temporal keeps a closed workflow's
	// history (set on the namespace by setup).
	TemporalRetention time.Duration
	TemporalUIAddr    string // dev only
	TaskQueue         string
	DataDir           string
	// Regions are the regions tenants can live in (CP_REGIONS, the first
	// the default); none: every tenant is on the installation's own data
	// plane, as before regions.
	Regions []string
	// Region and RegionDatabaseURL are a region worker's region and its
	// data plane (CP_REGION_DATABASE_URL): its only database.
	Region            string
	RegionDatabaseURL string
	DomainBase        string
	LogLevel          string
	LogFormat         string // json or console
	// TemporalUIURL is the Temporal UI's public base URL, for links to a
	// tenant's saga (CP_TEMPORAL_UI_URL); empty: no links.
	TemporalUIURL string
	// ConsoleURL is the web console's public base URL, for the links in
	// invitation mail (CP_CONSOLE_URL).
	ConsoleURL string

	Bootstrap Bootstrap

	SMTP SMTP

	SessionTTL time.Duration
	// ReauthWindow is how long after proving who they are a person may do
	// a destructive act without proving it again (CP_REAUTH_WINDOW,
	// default 10 minutes).
	ReauthWindow time.Duration
	// ServiceTokenMaxTTL bounds the expiry a service-account token may be
	// given (CP_SERVICE_TOKEN_MAX_TTL, default 90 days).
	ServiceTokenMaxTTL time.Duration
	// TenantMaxLifetime bounds an ephemeral tenant's lifetime
	// (CP_TENANT_MAX_LIFETIME, default 30 days).
	TenantMaxLifetime time.Duration
	Saga              Saga
	// KeyEncryptionKeys is the key ring that seals tenants' private keys
	// and encrypts Temporal payloads (CP_KEY_ENCRYPTION_KEYS,
	// seal.ParseRing's form); required by the api and the worker,
	// generated under the data dir by dev.
	KeyEncryptionKeys string
	// CodecToken is the bearer token operators send to the codec endpoint
	// (CP_CODEC_TOKEN): the api serves the endpoint only with one; dev
	// generates one under the data dir.
	CodecToken string
	// CodecAddr is where the api serves the codec endpoint
	// (CP_CODEC_ADDR); dev serves it on the Temporal UI's listener.
	CodecAddr string
	Faults    []Fault // dev only

	// TemporalTLS is the control plane's mutual TLS to the Temporal
	// frontend (CP_TEMPORAL_TLS_CA, _CERT, _KEY as PEM, or their _FILE
	// forms; CP_TEMPORAL_TLS_SERVER_NAME); empty: plaintext, as dev's
	// embedded server on loopback. CP_TEMPORAL_TLS=true turns TLS on
	// with the system's roots alone; an API key turns it on too.
	TemporalTLS TemporalTLS
	// TemporalAPIKey is sent to Temporal with every call
	// (CP_TEMPORAL_API_KEY or its _FILE form), as Temporal Cloud's API
	// keys are; only ever over TLS. Never logged.
	TemporalAPIKey string
	// OperatorAddr is where the api serves the operator gateway
	// (CP_OPERATOR_ADDR; empty: not served), with OperatorTLS: its
	// certificate and the operators' CA (CP_OPERATOR_TLS_CERT, _KEY,
	// CP_OPERATOR_CLIENT_CA, PEM or _FILE). dev makes its own under the
	// data dir.
	OperatorAddr string
	OperatorTLS  OperatorTLS
	// OperatorRevoked are the SHA-256 fingerprints of operators'
	// certificates withdrawn before they expire (CP_OPERATOR_REVOKED):
	// the gateway completes no handshake with them.
	OperatorRevoked [][32]byte
	// SagaWatchInterval is how often the worker looks for tenant sagas
	// that a terminate or reset ended, to write them to the audit trail
	// (CP_SAGA_WATCH_INTERVAL).
	SagaWatchInterval time.Duration

	// PublicRateLimit and UserRateLimit are requests per minute: of a
	// client address on the routes without a token, and of a user on the
	// routes outside an organisation (an organisation's come from its plan).
	PublicRateLimit int
	UserRateLimit   int
	// TenantTransitionsPerMinute bounds the lifecycle transitions
	// (suspend, resume, decommission, restore) one tenant is asked for in
	// a minute, whoever asks (CP_TENANT_TRANSITIONS_PER_MINUTE).
	TenantTransitionsPerMinute int

	// TrustedProxies are the networks of the reverse proxies whose
	// X-Forwarded-For names the client (CP_TRUSTED_PROXIES); empty: no
	// proxy is trusted and the client is the connection's peer.
	TrustedProxies []netip.Prefix

	// SignUpOpen lets anyone sign up, creating an organisation of their
	// own once their email is verified (CP_SIGNUP=open; default closed,
	// dev open).
	SignUpOpen bool
	// MaxOrgsPerUser is the most organisations a person may belong to
	// and still create another (CP_MAX_ORGS_PER_USER, default 5).
	MaxOrgsPerUser int

	// Streams is the settings of audit streams.
	Streams Streams

	// Billing is billing on Stripe; off unless CP_STRIPE_SECRET_KEY is set.
	Billing Billing
}

// Billing is the settings of billing on Stripe (SPEC §10). Its secrets
// are never logged.
type Billing struct {
	// SecretKey is the Stripe API key (CP_STRIPE_SECRET_KEY, sk_… or
	// rk_…); empty: billing is off, its routes answer 404 and owners
	// change plans directly.
	SecretKey string
	// WebhookSecret verifies the signature of Stripe's webhook deliveries
	// (CP_STRIPE_WEBHOOK_SECRET, whsec_…), required with the key.
	WebhookSecret string
	// Prices is the Stripe price of each paid plan (CP_STRIPE_PRICES,
	// team=price_…,enterprise=price_…).
	Prices map[string]string
	// APIURL is where the Stripe API is reached (CP_STRIPE_API_URL); for
	// tests and development against stripe-mock only. Empty: Stripe.
	APIURL string
	// MeterEvent is the event name of the Stripe meter tenant hours are
	// reported to (CP_STRIPE_METER_EVENT, default tenant_hours).
	MeterEvent string
	// Grace is how long a past_due organisation keeps its plan before it
	// moves to the free plan (CP_BILLING_GRACE, default 14 days).
	Grace time.Duration
}

// Enabled reports whether billing is on.
func (b Billing) Enabled() bool { return b.SecretKey != "" }

// DefaultBillingGrace is CP_BILLING_GRACE's default.
const DefaultBillingGrace = 14 * 24 * time.Hour

// PaidPlans are the plans a Stripe price may be given for: every plan but
// the free one, as the schema defines them.
var PaidPlans = []string{"team", "enterprise"}

// Streams is the settings of audit streams, read by the API (where an
// endpoint may point, the test button) and the worker (deliveries).
type Streams struct {
	// AllowPrivate lets streams reach loopback and private addresses, and
	// plain http there (CP_STREAM_ALLOW_PRIVATE; dev sets it, production
	// defaults to false). Link-local and metadata addresses stay refused.
	AllowPrivate bool
	// SuspendAfter is how long a stream may fail before it is suspended
	// (CP_STREAM_SUSPEND_AFTER, default 24 h).
	SuspendAfter time.Duration
	// Timeout bounds one delivery request, the receiver's answer included
	// (CP_STREAM_TIMEOUT, default 30 s).
	Timeout time.Duration
	// Deliveries is how many streams one worker delivers at once, on a
	// task queue of their own so no stream takes a tenant saga's slot
	// (CP_STREAM_DELIVERIES, default 32).
	Deliveries int
}

// DefaultStreams is the stream settings when nothing is configured.
func DefaultStreams() Streams {
	return Streams{SuspendAfter: 24 * time.Hour, Timeout: 30 * time.Second, Deliveries: 32}
}

// TemporalTLS is a client certificate and the CA of the Temporal frontend,
// in PEM. On is TLS without either (the system's roots, no client
// certificate), as Temporal Cloud's API keys take.
type TemporalTLS struct {
	CA, Cert, Key, ServerName string
	On                        bool
}

// Enabled reports whether the frontend is dialled with TLS.
func (t TemporalTLS) Enabled() bool { return t.On || t.CA != "" || t.Cert != "" }

// OperatorTLS is the operator gateway's certificate and key and the CA of
// the operators' client certificates, in PEM.
type OperatorTLS struct {
	Cert, Key, ClientCA string
}

// Bootstrap is the first organisation and its owner.
type Bootstrap struct {
	OrgName       string
	OrgSlug       string
	OwnerEmail    string
	OwnerPassword string
}

// IsSet reports whether any bootstrap value was given.
func (b Bootstrap) IsSet() bool {
	return b.OrgName != "" || b.OrgSlug != "" || b.OwnerEmail != "" || b.OwnerPassword != ""
}

// SMTP is the mail relay of CP_SMTP_*; without CP_SMTP_ADDR, mail is
// written as files under the data dir.
type SMTP struct {
	Addr     string
	From     string
	Username string
	Password string
}

// Saga is the settings of tenant sagas, given to every tenant workflow.
type Saga struct {
	// StepMaxAttempts bounds the attempts of one data-plane step before
	// the saga is stuck (CP_STEP_MAX_ATTEMPTS).
	StepMaxAttempts int
	// DecommissionGrace is the wait before a decommissioned tenant's
	// resources are destroyed (CP_DECOMMISSION_GRACE).
	DecommissionGrace time.Duration
	// ReservationTimeout ends a tenant workflow whose provision request
	// never arrived.
	ReservationTimeout time.Duration
	// MaxOperationsPerRun is how many operations one workflow run carries
	// before it continues as new.
	MaxOperationsPerRun int
	// OrgDeletionGrace is how long a deleted organisation can be restored
	// before its tenants end and its personal data is erased
	// (CP_ORG_DELETION_GRACE).
	OrgDeletionGrace time.Duration
}

// DefaultSaga is the saga settings when nothing is configured.
func DefaultSaga() Saga {
	return Saga{StepMaxAttempts: 5, DecommissionGrace: 72 * time.Hour, ReservationTimeout: 10 * time.Minute, MaxOperationsPerRun: 100, OrgDeletionGrace: 30 * 24 * time.Hour}
}

// Fault is one fault drill of CP_FAULTS: a data-plane step and what happens
// to its attempts.
type Fault struct {
	Step  string
	Mode  string        // fail, fail:N or delay
	Count int           // N of fail:N
	Delay time.Duration // of delay:<duration>
}

// Load reads the configuration for the mode through getenv (os.LookupEnv in
// main). The error, when not nil, lists every problem, one per line.
func Load(mode Mode, getenv func(string) (string, bool)) (Config, error) {
	r := reader{getenv: getenv}
	c := Config{Mode: mode}

	c.HTTPAddr = r.addr("CP_HTTP_ADDR", "127.0.0.1:8080")
	c.MetricsAddr = r.addr("CP_METRICS_ADDR", "127.0.0.1:9464")
	c.TemporalAddress = r.addr("CP_TEMPORAL_ADDRESS", "127.0.0.1:7233")
	c.TemporalNamespace = r.name("CP_TEMPORAL_NAMESPACE", "default")
	c.TemporalRetention = r.duration("CP_TEMPORAL_RETENTION", 30*24*time.Hour, 24*time.Hour, 10*365*24*time.Hour)
	c.TaskQueue = r.name("CP_TASK_QUEUE", "controlplane")
	c.DataDir = r.str("CP_DATA_DIR", "./.data")
	c.DomainBase = r.domain("CP_DOMAIN_BASE", "intelliauth.localhost")
	c.LogLevel = r.oneOf("CP_LOG_LEVEL", "info", "debug", "info", "warn", "error")
	defaultFormat := "json"
	if mode == ModeDev {
		defaultFormat = "console"
	}
	c.LogFormat = r.oneOf("CP_LOG_FORMAT", defaultFormat, "json", "console")
	// Every number has bounds of its own, wide enough for its default and
	// any sane deployment.
	c.SessionTTL = r.duration("CP_SESSION_TTL", 12*time.Hour, time.Minute, 30*24*time.Hour)
	c.ReauthWindow = r.duration("CP_REAUTH_WINDOW", 10*time.Minute, time.Minute, 24*time.Hour)
	c.TenantMaxLifetime = r.duration("CP_TENANT_MAX_LIFETIME", 30*24*time.Hour, time.Minute, 366*24*time.Hour)
	c.ServiceTokenMaxTTL = r.duration("CP_SERVICE_TOKEN_MAX_TTL", 90*24*time.Hour, time.Minute, 366*24*time.Hour)
	c.Saga = DefaultSaga()
	c.Saga.DecommissionGrace = r.duration("CP_DECOMMISSION_GRACE", c.Saga.DecommissionGrace, time.Second, 365*24*time.Hour)
	c.Saga.OrgDeletionGrace = r.duration("CP_ORG_DELETION_GRACE", c.Saga.OrgDeletionGrace, time.Second, 365*24*time.Hour)
	c.Saga.StepMaxAttempts = r.intIn("CP_STEP_MAX_ATTEMPTS", c.Saga.StepMaxAttempts, 1, 100)
	c.PublicRateLimit = r.intIn("CP_PUBLIC_RATE_LIMIT", 600, 1, 1_000_000)
	c.UserRateLimit = r.intIn("CP_USER_RATE_LIMIT", 1200, 1, 1_000_000)
	c.TenantTransitionsPerMinute = r.intIn("CP_TENANT_TRANSITIONS_PER_MINUTE", 12, 1, 1000)

	c.KeyEncryptionKeys = r.str("CP_KEY_ENCRYPTION_KEYS", "")
	if c.KeyEncryptionKeys != "" {
		if _, err := seal.ParseRing(c.KeyEncryptionKeys); err != nil {
			r.fail("CP_KEY_ENCRYPTION_KEYS", err.Error())
		}
	} else if mode == ModeWorker || mode == ModeAPI || mode == ModeRegionWorker {
		r.fail("CP_KEY_ENCRYPTION_KEYS", "is required: the keys that seal tenants' private keys and Temporal payloads, <id>=<base64 of 32 bytes>[,…] (openssl rand -base64 32)")
	}
	c.CodecAddr = r.addr("CP_CODEC_ADDR", "127.0.0.1:8234")
	if c.CodecToken = r.str("CP_CODEC_TOKEN", ""); c.CodecToken != "" && !codecTokenRe.MatchString(c.CodecToken) {
		r.fail("CP_CODEC_TOKEN", "must be 32 to 256 of A-Z, a-z, 0-9, '-', '_', '.', '~', '+', '/', '=' (openssl rand -base64 32)")
	}
	c.TrustedProxies = r.networks("CP_TRUSTED_PROXIES")
	signUp := "closed"
	if mode == ModeDev {
		signUp = "open"
	}
	c.SignUpOpen = r.oneOf("CP_SIGNUP", signUp, "open", "closed") == "open"
	c.MaxOrgsPerUser = r.intIn("CP_MAX_ORGS_PER_USER", 5, 1, 1000)
	c.Streams = DefaultStreams()
	allowPrivate := "false"
	if mode == ModeDev {
		allowPrivate = "true" // a receiver on the laptop
	}
	c.Streams.AllowPrivate = r.oneOf("CP_STREAM_ALLOW_PRIVATE", allowPrivate, "true", "false") == "true"
	c.Streams.SuspendAfter = r.duration("CP_STREAM_SUSPEND_AFTER", c.Streams.SuspendAfter, time.Second, 30*24*time.Hour)
	c.Streams.Timeout = r.duration("CP_STREAM_TIMEOUT", c.Streams.Timeout, 100*time.Millisecond, 2*time.Minute)
	c.Streams.Deliveries = r.intIn("CP_STREAM_DELIVERIES", c.Streams.Deliveries, 1, 1000)

	c.Billing = r.billing()

	c.TemporalTLS = TemporalTLS{CA: r.str("CP_TEMPORAL_TLS_CA", ""), Cert: r.str("CP_TEMPORAL_TLS_CERT", ""),
		Key: r.str("CP_TEMPORAL_TLS_KEY", ""), ServerName: r.str("CP_TEMPORAL_TLS_SERVER_NAME", "")}
	if (c.TemporalTLS.Cert == "") != (c.TemporalTLS.Key == "") {
		r.fail("CP_TEMPORAL_TLS_CERT", "a client certificate goes with its key: set both CP_TEMPORAL_TLS_CERT and CP_TEMPORAL_TLS_KEY (or their _FILE forms)")
	}
	c.TemporalAPIKey = r.str("CP_TEMPORAL_API_KEY", "")
	r.temporalTLSSwitch(&c.TemporalTLS, c.TemporalAPIKey != "")
	if v := r.str("CP_OPERATOR_ADDR", ""); v != "" {
		c.OperatorAddr = r.addr("CP_OPERATOR_ADDR", v)
	} else if mode == ModeDev {
		c.OperatorAddr = r.addr("CP_OPERATOR_ADDR", "127.0.0.1:7234")
	}
	c.OperatorTLS = OperatorTLS{Cert: r.str("CP_OPERATOR_TLS_CERT", ""), Key: r.str("CP_OPERATOR_TLS_KEY", ""), ClientCA: r.str("CP_OPERATOR_CLIENT_CA", "")}
	if c.OperatorAddr != "" && mode == ModeAPI && (c.OperatorTLS.Cert == "" || c.OperatorTLS.Key == "" || c.OperatorTLS.ClientCA == "") {
		r.fail("CP_OPERATOR_ADDR", "the operator gateway needs its certificate and the operators' CA: set CP_OPERATOR_TLS_CERT, CP_OPERATOR_TLS_KEY and CP_OPERATOR_CLIENT_CA (or their _FILE forms)")
	}
	c.OperatorRevoked = r.fingerprints("CP_OPERATOR_REVOKED")
	c.SagaWatchInterval = r.duration("CP_SAGA_WATCH_INTERVAL", 30*time.Second, 100*time.Millisecond, time.Hour)

	c.SMTP = SMTP{
		From:     r.str("CP_SMTP_FROM", ""),
		Username: r.str("CP_SMTP_USERNAME", ""),
		Password: r.str("CP_SMTP_PASSWORD", ""),
	}
	if c.SMTP.From != "" {
		if _, err := mail.ParseAddress(c.SMTP.From); err != nil {
			r.fail("CP_SMTP_FROM", fmt.Sprintf("%q is not a mail address such as IntelliAuth <no-reply@example.com>", c.SMTP.From))
		}
	}
	if v := r.str("CP_SMTP_ADDR", ""); v != "" {
		c.SMTP.Addr = r.addr("CP_SMTP_ADDR", v)
	}
	if mode == ModeWorker && (c.SMTP.Addr == "" || c.SMTP.From == "") {
		// Outside dev, mail written as files inside a container is mail
		// lost, with its accept secret in a file nobody reads.
		r.fail("CP_SMTP_ADDR", "the worker delivers invitations: set CP_SMTP_ADDR (host:port) and CP_SMTP_FROM")
	}

	c.Regions = r.regions("CP_REGIONS")
	c.DatabaseURL = r.str("CP_DATABASE_URL", "")
	if mode == ModeRegionWorker {
		r.regionWorker(&c)
	} else if mode == ModeVerify {
		// verify -region compares that region's data plane.
		c.RegionDatabaseURL = r.str("CP_REGION_DATABASE_URL", "")
	}
	c.DatabaseMaxConns = r.intIn("CP_DATABASE_MAX_CONNS", 32, 2, 1000)
	c.WorkflowCacheSize = r.intIn("CP_WORKFLOW_CACHE_SIZE", 2000, 10, 1_000_000)
	c.SpareSchemas = r.intIn("CP_SPARE_SCHEMAS", 0, 0, 10_000)
	if c.DatabaseURL != "" {
		if u, err := url.Parse(c.DatabaseURL); err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
			r.fail("CP_DATABASE_URL", "must be a postgres:// URL")
		}
	} else if mode != ModeDev && mode != ModeSetup && mode != ModeHealthcheck && mode != ModeAudit && mode != ModeRegionWorker {
		r.fail("CP_DATABASE_URL", "is required (postgres://user:password@host:5432/db?sslmode=disable)")
	}

	c.Bootstrap = Bootstrap{
		OrgName:       r.str("CP_BOOTSTRAP_ORG_NAME", ""),
		OrgSlug:       r.str("CP_BOOTSTRAP_ORG_SLUG", ""),
		OwnerEmail:    r.str("CP_BOOTSTRAP_OWNER_EMAIL", ""),
		OwnerPassword: r.str("CP_BOOTSTRAP_OWNER_PASSWORD", ""),
	}
	if mode == ModeDev && !c.Bootstrap.IsSet() {
		c.Bootstrap = Bootstrap{OrgName: DevOrgName, OrgSlug: DevOrgSlug, OwnerEmail: DevOwnerEmail, OwnerPassword: DevOwnerPassword}
	}
	if mode == ModeBootstrap || c.Bootstrap.IsSet() {
		r.checkBootstrap(&c.Bootstrap)
	}

	if mode == ModeDev {
		c.TemporalUIAddr = r.addr("CP_TEMPORAL_UI_ADDR", "127.0.0.1:8233")
		// The embedded Temporal server and UI have no authentication, and
		// the dev owner's password is printed in the README.
		for _, kv := range [][2]string{{"CP_TEMPORAL_ADDRESS", c.TemporalAddress}, {"CP_TEMPORAL_UI_ADDR", c.TemporalUIAddr}, {"CP_OPERATOR_ADDR", c.OperatorAddr}} {
			if !loopback(kv[1]) {
				r.fail(kv[0], fmt.Sprintf("%q: dev's embedded Temporal has no authentication; listen on 127.0.0.1 or ::1", kv[1]))
			}
		}
		if !loopback(c.HTTPAddr) && c.Bootstrap.OwnerPassword == DevOwnerPassword {
			r.fail("CP_HTTP_ADDR", fmt.Sprintf("%q is beyond loopback while the owner has the well-known dev password; set CP_BOOTSTRAP_* first", c.HTTPAddr))
		}
	}
	// Links members and operators follow: the console is served by the
	// API itself, the Temporal UI by dev or by the operators' deployment.
	consoleDefault, temporalUIDefault := "https://manage."+c.DomainBase, ""
	if mode == ModeDev {
		consoleDefault, temporalUIDefault = devConsoleURL(c.HTTPAddr), "http://"+c.TemporalUIAddr
	}
	c.ConsoleURL = r.baseURL("CP_CONSOLE_URL", consoleDefault)
	c.TemporalUIURL = r.baseURL("CP_TEMPORAL_UI_URL", temporalUIDefault)

	if raw, ok := getenv("CP_FAULTS"); ok && raw != "" {
		if mode != ModeDev {
			r.fail("CP_FAULTS", "fault drills run only under `controlplane dev`; unset it for "+string(mode))
		} else {
			c.Faults = r.faults(raw)
		}
	}

	if len(r.problems) > 0 {
		return c, errors.New(strings.Join(r.problems, "\n"))
	}
	return c, nil
}

// devConsoleURL is dev's console at its listen address, named localhost
// when that is a loopback address: the console's host name is its
// passkeys' relying party id, which an IP address cannot be, and browsers
// treat http://localhost as a secure context, where passkeys work.
func devConsoleURL(addr string) string {
	if _, port, err := net.SplitHostPort(addr); err == nil && loopback(addr) {
		return "http://" + net.JoinHostPort("localhost", port)
	}
	return "http://" + addr
}

// loopback reports whether host:port listens on a loopback address only.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

type reader struct {
	getenv   func(string) (string, bool)
	problems []string
}

func (r *reader) fail(key, msg string) {
	r.problems = append(r.problems, key+": "+msg)
}

// str reads a value from key, or from the file that key_FILE names (as
// Docker and Compose secrets are mounted), so secrets need not sit in the
// environment; setting both is an error.
func (r *reader) str(key, def string) string {
	v, ok := r.getenv(key)
	v = strings.TrimSpace(v)
	if path, fok := r.getenv(key + "_FILE"); fok && strings.TrimSpace(path) != "" {
		if ok && v != "" {
			r.fail(key, "set either "+key+" or "+key+"_FILE, not both")
			return def
		}
		b, err := os.ReadFile(strings.TrimSpace(path))
		if err != nil {
			r.fail(key+"_FILE", fmt.Sprintf("cannot read %s: %v", strings.TrimSpace(path), errors.Unwrap(err)))
			return def
		}
		return strings.TrimSpace(string(b))
	}
	if ok && v != "" {
		return v
	}
	return def
}

func (r *reader) addr(key, def string) string {
	v := r.str(key, def)
	_, port, err := net.SplitHostPort(v)
	if err != nil {
		r.fail(key, fmt.Sprintf("%q is not host:port", v))
		return v
	}
	if p, err := strconv.Atoi(port); err != nil || p < 0 || p > 65535 {
		r.fail(key, fmt.Sprintf("%q has an invalid port", v))
	}
	return v
}

// codecTokenRe is the form of a codec token: what a bearer token may
// carry (RFC 6750), long enough not to be guessed.
var codecTokenRe = regexp.MustCompile(`^[A-Za-z0-9._~+/=-]{32,256}$`)

var nameRe = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$`)

func (r *reader) name(key, def string) string {
	v := r.str(key, def)
	if !nameRe.MatchString(v) {
		r.fail(key, fmt.Sprintf("%q must be letters, digits, '.', '_' or '-'", v))
	}
	return v
}

var domainRe = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)*[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

func (r *reader) domain(key, def string) string {
	v := strings.ToLower(r.str(key, def))
	if len(v) > 200 || !domainRe.MatchString(v) {
		r.fail(key, fmt.Sprintf("%q is not a DNS name", v))
	}
	return v
}

func (r *reader) oneOf(key, def string, allowed ...string) string {
	v := strings.ToLower(r.str(key, def))
	if slices.Contains(allowed, v) {
		return v
	}
	r.fail(key, fmt.Sprintf("%q must be one of %s", v, strings.Join(allowed, ", ")))
	return def
}

func (r *reader) duration(key string, def, lo, hi time.Duration) time.Duration {
	raw := r.str(key, "")
	if raw == "" {
		return def
	}
	d, err := time.ParseDuration(raw)
	if err != nil || d < lo || d > hi {
		r.fail(key, fmt.Sprintf("%q must be a duration from %s to %s, such as 90s, 15m or 12h", raw, lo, hi))
		return def
	}
	return d
}

func (r *reader) intIn(key string, def, lo, hi int) int {
	raw := r.str(key, "")
	if raw == "" {
		return def
	}
	n, err := strconv.Atoi(raw)
	if err != nil || n < lo || n > hi {
		r.fail(key, fmt.Sprintf("%q must be a whole number from %d to %d", raw, lo, hi))
		return def
	}
	return n
}

// baseURL reads the base of links the control plane writes: an absolute
// http or https URL with no credentials, query or fragment (a link is the
// base and a path), without its trailing slash. Empty stays empty.
func (r *reader) baseURL(key, def string) string {
	v := r.str(key, def)
	if v == def {
		// Made of other settings, which are checked (and reported) on
		// their own.
		return strings.TrimRight(v, "/")
	}
	u, err := url.Parse(v)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.Opaque != "" || u.User != nil ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(v, "#") {
		r.fail(key, fmt.Sprintf("%q must be an absolute http or https URL without credentials, query or fragment, such as https://manage.example.com", v))
		return v
	}
	return strings.TrimRight(v, "/")
}

var (
	stripeKeyRe     = regexp.MustCompile(`^(sk|rk)_(test|live)_[A-Za-z0-9]{1,255}$`)
	stripeWebhookRe = regexp.MustCompile(`^whsec_[A-Za-z0-9+/=]{1,255}$`)
	stripePriceRe   = regexp.MustCompile(`^price_[A-Za-z0-9]{1,255}$`)
	stripeEventRe   = regexp.MustCompile(`^[a-z0-9_]{1,100}$`)
)

// billing reads the CP_STRIPE_* and CP_BILLING_* settings. No message
// quotes a secret.
func (r *reader) billing() Billing {
	b := Billing{SecretKey: r.str("CP_STRIPE_SECRET_KEY", ""), WebhookSecret: r.str("CP_STRIPE_WEBHOOK_SECRET", ""),
		MeterEvent: r.str("CP_STRIPE_METER_EVENT", "tenant_hours"), Grace: r.duration("CP_BILLING_GRACE", DefaultBillingGrace, time.Second, 90*24*time.Hour)}
	if b.SecretKey != "" && !stripeKeyRe.MatchString(b.SecretKey) {
		r.fail("CP_STRIPE_SECRET_KEY", "is not a Stripe secret or restricted key (sk_live_…, sk_test_…, rk_…)")
	}
	if b.WebhookSecret != "" && !stripeWebhookRe.MatchString(b.WebhookSecret) {
		r.fail("CP_STRIPE_WEBHOOK_SECRET", "is not a Stripe webhook signing secret (whsec_…)")
	} else if b.SecretKey != "" && b.WebhookSecret == "" {
		r.fail("CP_STRIPE_WEBHOOK_SECRET", "is required with CP_STRIPE_SECRET_KEY: the signing secret of the webhook endpoint (whsec_…)")
	}
	if !stripeEventRe.MatchString(b.MeterEvent) {
		r.fail("CP_STRIPE_METER_EVENT", fmt.Sprintf("%q must be 1 to 100 of a-z, 0-9 and '_'", b.MeterEvent))
	}
	if v := r.str("CP_STRIPE_API_URL", ""); v != "" {
		b.APIURL = strings.TrimRight(v, "/")
		if u, err := url.Parse(b.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			r.fail("CP_STRIPE_API_URL", "must be an absolute http or https URL such as http://127.0.0.1:12111 (stripe-mock)")
		}
	}
	raw := r.str("CP_STRIPE_PRICES", "")
	if raw != "" {
		b.Prices = map[string]string{}
		for _, item := range strings.Split(raw, ",") {
			plan, price, ok := strings.Cut(strings.TrimSpace(item), "=")
			plan, price = strings.TrimSpace(plan), strings.TrimSpace(price)
			switch {
			case !ok || plan == "" || price == "":
				r.fail("CP_STRIPE_PRICES", fmt.Sprintf("%q is not plan=price_…", item))
			case !slices.Contains(PaidPlans, plan):
				r.fail("CP_STRIPE_PRICES", fmt.Sprintf("%q is not a paid plan (one of %s)", plan, strings.Join(PaidPlans, ", ")))
			case !stripePriceRe.MatchString(price):
				r.fail("CP_STRIPE_PRICES", fmt.Sprintf("%q of plan %s is not a Stripe price id (price_…)", price, plan))
			case b.Prices[plan] != "":
				r.fail("CP_STRIPE_PRICES", fmt.Sprintf("plan %s is priced twice", plan))
			default:
				b.Prices[plan] = price
			}
		}
	}
	if b.SecretKey != "" && len(b.Prices) == 0 {
		r.fail("CP_STRIPE_PRICES", "is required with CP_STRIPE_SECRET_KEY: the Stripe price of each paid plan sold (team=price_…,enterprise=price_…)")
	}
	return b
}

// networks reads a comma-separated list of CIDR networks, naming every
// item that is not one.
// fingerprints reads SHA-256 fingerprints in hex, comma-separated, with or
// without colons (openssl x509 -noout -fingerprint -sha256 prints them
// with).
func (r *reader) fingerprints(key string) [][32]byte {
	var out [][32]byte
	for _, item := range strings.Split(r.str(key, ""), ",") {
		item = strings.ReplaceAll(strings.TrimSpace(item), ":", "")
		if item == "" {
			continue
		}
		b, err := hex.DecodeString(item)
		if err != nil || len(b) != 32 {
			r.fail(key, fmt.Sprintf("%q is not a SHA-256 fingerprint (64 hex digits, colons allowed: openssl x509 -noout -fingerprint -sha256)", item[:min(len(item), 80)]))
			continue
		}
		out = append(out, [32]byte(b))
	}
	return out
}

func (r *reader) networks(key string) []netip.Prefix {
	raw := r.str(key, "")
	if raw == "" {
		return nil
	}
	var out []netip.Prefix
	for _, item := range strings.Split(raw, ",") {
		item = strings.TrimSpace(item)
		p, err := netip.ParsePrefix(item)
		switch {
		case err != nil:
			r.fail(key, fmt.Sprintf("%q is not a network in CIDR form such as 10.0.0.0/8 or 192.0.2.7/32", item))
		case p != p.Masked():
			r.fail(key, fmt.Sprintf("%q has host bits set; the network is %s", item, p.Masked()))
		default:
			out = append(out, p)
		}
	}
	return out
}

// temporalTLSSwitch reads CP_TEMPORAL_TLS, which decides TLS to Temporal
// as the temporal CLI's --tls does: unset, TLS is on when a CA, a client
// certificate or an API key is given; true, on with the system's roots
// when none is; false, off, which neither a CA, a certificate nor an API
// key (a bearer secret, sent only encrypted) may be given with.
func (r *reader) temporalTLSSwitch(t *TemporalTLS, apiKey bool) {
	switch v := strings.ToLower(r.str("CP_TEMPORAL_TLS", "")); v {
	case "":
		t.On = apiKey
	case "true":
		t.On = true
	case "false":
		if t.CA != "" || t.Cert != "" {
			r.fail("CP_TEMPORAL_TLS", "is false while CP_TEMPORAL_TLS_CA or CP_TEMPORAL_TLS_CERT is set: unset one or the other")
		}
		if apiKey {
			r.fail("CP_TEMPORAL_API_KEY", "is sent only over TLS, and CP_TEMPORAL_TLS is false: unset CP_TEMPORAL_TLS (an API key turns TLS on, with the system's roots unless CP_TEMPORAL_TLS_CA is set)")
		}
	default:
		r.fail("CP_TEMPORAL_TLS", fmt.Sprintf("%q must be true or false (unset: on when a CA, a client certificate or an API key is set)", v))
	}
}

// checkBootstrap checks the first organisation and its owner, and keeps
// the organisation's name as the API would (domain.DisplayName).
// regions reads a comma-separated list of distinct region names.
func (r *reader) regions(key string) []string {
	raw := strings.TrimSpace(r.str(key, ""))
	if raw == "" {
		return nil
	}
	var names []string
	for _, n := range strings.Split(raw, ",") {
		n = strings.TrimSpace(n)
		switch {
		case !domain.ValidRegion(n):
			r.fail(key, fmt.Sprintf("%q is not a region name: %s", n, domain.RegionRule))
		case slices.Contains(names, n):
			r.fail(key, fmt.Sprintf("%q is named twice", n))
		default:
			names = append(names, n)
		}
	}
	if len(names) > 50 {
		r.fail(key, "at most 50 regions")
	}
	return names
}

// regionWorker reads what a region's worker holds: its region and that
// region's data plane, and nothing of the control plane's database, so a
// region's worker cannot touch another region's data or the control
// plane's.
func (r *reader) regionWorker(c *Config) {
	if c.Region = r.str("CP_REGION", ""); !domain.ValidRegion(c.Region) {
		r.fail("CP_REGION", fmt.Sprintf("%q is not a region name (controlplane worker --region <name>): %s", c.Region, domain.RegionRule))
	}
	c.RegionDatabaseURL = r.str("CP_REGION_DATABASE_URL", "")
	if u, err := url.Parse(c.RegionDatabaseURL); c.RegionDatabaseURL == "" || err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		r.fail("CP_REGION_DATABASE_URL", "is required: the region's data plane, a postgres:// URL")
	}
	if c.DatabaseURL != "" {
		r.fail("CP_DATABASE_URL", "a region's worker holds its region's data plane only (CP_REGION_DATABASE_URL): unset CP_DATABASE_URL")
	}
	if len(c.Regions) > 0 {
		r.fail("CP_REGIONS", "is the api's and the control plane's workers' setting: a region's worker serves CP_REGION only")
	}
}

func (r *reader) checkBootstrap(b *Bootstrap) {
	var p string
	if b.OrgName, p = domain.DisplayName(b.OrgName, 100); p != "" {
		r.fail("CP_BOOTSTRAP_ORG_NAME", "is required: "+p)
	}
	if !domain.SlugPattern.MatchString(b.OrgSlug) {
		r.fail("CP_BOOTSTRAP_ORG_SLUG", fmt.Sprintf("%q must be a DNS label (a-z, 0-9, '-', at most 63)", b.OrgSlug))
	}
	if at := strings.IndexByte(b.OwnerEmail, '@'); at < 1 || at == len(b.OwnerEmail)-1 || len(b.OwnerEmail) > 254 {
		r.fail("CP_BOOTSTRAP_OWNER_EMAIL", fmt.Sprintf("%q is not an email address", b.OwnerEmail))
	}
	if n := len([]rune(b.OwnerPassword)); n < 12 || n > 256 {
		r.fail("CP_BOOTSTRAP_OWNER_PASSWORD", "must be 12 to 256 characters")
	}
}

func (r *reader) faults(raw string) []Fault {
	var out []Fault
	for _, item := range strings.Split(raw, ",") {
		item = strings.TrimSpace(item)
		step, mode, ok := strings.Cut(item, "=")
		if !ok {
			r.fail("CP_FAULTS", fmt.Sprintf("%q must be <step>=<mode>", item))
			continue
		}
		if !domain.IsStep(step) {
			r.fail("CP_FAULTS", fmt.Sprintf("unknown step %q (steps: %s)", step, strings.Join(domain.StepNames(domain.Steps), ", ")))
			continue
		}
		f := Fault{Step: step}
		switch {
		case mode == "fail":
			f.Mode = "fail"
		case strings.HasPrefix(mode, "fail:"):
			n, err := strconv.Atoi(strings.TrimPrefix(mode, "fail:"))
			if err != nil || n < 1 {
				r.fail("CP_FAULTS", fmt.Sprintf("%q: fail:N needs a positive N", item))
				continue
			}
			f.Mode, f.Count = "fail", n
		case strings.HasPrefix(mode, "delay:"):
			d, err := time.ParseDuration(strings.TrimPrefix(mode, "delay:"))
			if err != nil || d <= 0 {
				r.fail("CP_FAULTS", fmt.Sprintf("%q: delay:<duration> needs a positive duration", item))
				continue
			}
			f.Mode, f.Delay = "delay", d
		default:
			r.fail("CP_FAULTS", fmt.Sprintf("%q: mode must be fail, fail:N or delay:<duration>", item))
			continue
		}
		out = append(out, f)
	}
	return out
}
