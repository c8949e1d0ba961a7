package config

import (
	"maps"
	"net/netip"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// testRing is a key ring for the modes that need one (api, worker).
const testRing = "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="

func env(kv map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) { v, ok := kv[k]; return v, ok }
}

func TestDevStartsWithNoConfigurationAtAll(t *testing.T) {
	c, err := Load(ModeDev, env(nil))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.HTTPAddr != "127.0.0.1:8080" || c.TemporalAddress != "127.0.0.1:7233" || c.TemporalUIAddr != "127.0.0.1:8233" {
		t.Errorf("addresses = %s %s %s", c.HTTPAddr, c.TemporalAddress, c.TemporalUIAddr)
	}
	if c.LogFormat != "console" || c.Bootstrap.OrgSlug != DevOrgSlug || c.DatabaseURL != "" {
		t.Errorf("dev defaults not applied: %+v", c)
	}
	if c.SessionTTL != 12*time.Hour || c.Saga.DecommissionGrace != 72*time.Hour || c.Saga.StepMaxAttempts != 5 || c.Saga.OrgDeletionGrace != 30*24*time.Hour {
		t.Errorf("lifecycle defaults = %v %v %d", c.SessionTTL, c.Saga.DecommissionGrace, c.Saga.StepMaxAttempts)
	}
}

func TestEveryInvalidValueIsReportedAtOnceOneLineEach(t *testing.T) {
	_, err := Load(ModeAPI, env(map[string]string{
		"CP_HTTP_ADDR":          "nope",
		"CP_LOG_LEVEL":          "loud",
		"CP_LOG_FORMAT":         "xml",
		"CP_SESSION_TTL":        "-1h",
		"CP_STEP_MAX_ATTEMPTS":  "zero",
		"CP_DOMAIN_BASE":        "not a domain",
		"CP_TEMPORAL_NAMESPACE": "bad ns!",
	}))
	if err == nil {
		t.Fatal("Load accepted invalid values")
	}
	lines := strings.Split(err.Error(), "\n")
	for _, key := range []string{"CP_HTTP_ADDR", "CP_LOG_LEVEL", "CP_LOG_FORMAT", "CP_SESSION_TTL", "CP_STEP_MAX_ATTEMPTS", "CP_DOMAIN_BASE", "CP_TEMPORAL_NAMESPACE", "CP_DATABASE_URL"} {
		n := 0
		for _, l := range lines {
			if strings.HasPrefix(l, key+": ") {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%s reported on %d lines, want 1; error:\n%s", key, n, err)
		}
	}
}

func TestFaultsAreParsedForDevAndRefusedElsewhere(t *testing.T) {
	tests := []struct {
		name    string
		mode    Mode
		faults  string
		wantErr string
		want    []Fault
	}{
		{"every mode parses", ModeDev, "schema=fail,keys=fail:6,route=delay:5s",
			"", []Fault{{Step: "schema", Mode: "fail"}, {Step: "keys", Mode: "fail", Count: 6}, {Step: "route", Mode: "delay", Delay: 5 * time.Second}}},
		{"an unknown step is named", ModeDev, "dns=fail", "unknown step \"dns\"", nil},
		{"a bad count is refused", ModeDev, "keys=fail:0", "positive N", nil},
		{"a bad mode is refused", ModeDev, "keys=explode", "mode must be", nil},
		{"the api refuses fault drills", ModeAPI, "schema=fail", "only under `controlplane dev`", nil},
		{"the worker refuses fault drills", ModeWorker, "schema=fail", "only under `controlplane dev`", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.mode, env(map[string]string{"CP_FAULTS": tt.faults, "CP_DATABASE_URL": "postgres://x@h/db"}))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(c.Faults) != len(tt.want) {
				t.Fatalf("faults = %+v", c.Faults)
			}
			for i := range tt.want {
				if c.Faults[i] != tt.want[i] {
					t.Errorf("fault %d = %+v, want %+v", i, c.Faults[i], tt.want[i])
				}
			}
		})
	}
}

func TestBootstrapRequiresEveryValue(t *testing.T) {
	_, err := Load(ModeBootstrap, env(map[string]string{"CP_DATABASE_URL": "postgres://x@h/db", "CP_BOOTSTRAP_ORG_SLUG": "Not_A_Label", "CP_BOOTSTRAP_OWNER_PASSWORD": "short"}))
	if err == nil {
		t.Fatal("bootstrap accepted missing values")
	}
	for _, key := range []string{"CP_BOOTSTRAP_ORG_NAME", "CP_BOOTSTRAP_ORG_SLUG", "CP_BOOTSTRAP_OWNER_EMAIL", "CP_BOOTSTRAP_OWNER_PASSWORD"} {
		if !strings.Contains(err.Error(), key) {
			t.Errorf("error does not name %s:\n%s", key, err)
		}
	}
}

// TestEveryDocumentedDefaultSetExplicitlyStarts reads the README's
// configuration table and sets each variable to the default it documents:
// a documented default must be a value the process accepts.
func TestEveryDocumentedDefaultSetExplicitlyStarts(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(CP_[A-Z_]+)` \\| `([^`]+)`")
	// The values with no default that api and worker require.
	set := map[string]string{"CP_DATABASE_URL": "postgres://cp@localhost:5432/cp", "CP_KEY_ENCRYPTION_KEYS": "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"CP_SMTP_ADDR": "smtp.example.test:587", "CP_SMTP_FROM": "IntelliAuth <noreply@example.test>"}
	for _, m := range row.FindAllStringSubmatch(string(b), -1) {
		set[m[1]] = m[2]
	}
	if len(set) < 12 {
		t.Fatalf("only %d documented defaults found in README.md: %v", len(set), set)
	}
	for _, mode := range []Mode{ModeAPI, ModeWorker, ModeDev} {
		vars := maps.Clone(set)
		if mode == ModeDev {
			delete(vars, "CP_DATABASE_URL")
		}
		if _, err := Load(mode, env(vars)); err != nil {
			t.Errorf("%s with every documented default set: %v", mode, err)
		}
	}
}

func TestDevRefusesToListenBeyondLoopbackWithTheWellKnownPassword(t *testing.T) {
	for _, tc := range []struct {
		name string
		vars map[string]string
		bad  string
	}{
		{"the API on every interface with the dev password", map[string]string{"CP_HTTP_ADDR": "0.0.0.0:8080"}, "CP_HTTP_ADDR"},
		{"the embedded Temporal on every interface", map[string]string{"CP_TEMPORAL_ADDRESS": "0.0.0.0:7233"}, "CP_TEMPORAL_ADDRESS"},
		{"the Temporal UI on a LAN address", map[string]string{"CP_TEMPORAL_UI_ADDR": "192.168.1.10:8233"}, "CP_TEMPORAL_UI_ADDR"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load(ModeDev, env(tc.vars))
			if err == nil || !strings.Contains(err.Error(), tc.bad) {
				t.Fatalf("Load: %v", err)
			}
		})
	}
	// With an owner password of one's own, the API may listen beyond
	// loopback.
	if _, err := Load(ModeDev, env(map[string]string{"CP_HTTP_ADDR": "0.0.0.0:8080", "CP_BOOTSTRAP_ORG_NAME": "Acme", "CP_BOOTSTRAP_ORG_SLUG": "acme",
		"CP_BOOTSTRAP_OWNER_EMAIL": "me@acme.test", "CP_BOOTSTRAP_OWNER_PASSWORD": "a long password of mine"})); err != nil {
		t.Fatalf("Load: %v", err)
	}
}

func TestTrustedProxiesAreNetworksAndEveryBadOneIsNamed(t *testing.T) {
	tests := []struct {
		name string
		raw  string
		want []netip.Prefix
		bad  []string // items reported, one line each
	}{
		{"no proxy is trusted by default", "", nil, nil},
		{"a list of networks is read", "10.0.0.0/8, 192.0.2.7/32,2001:db8::/32",
			[]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("192.0.2.7/32"), netip.MustParsePrefix("2001:db8::/32")}, nil},
		{"every bad item is named on its own line", "10.0.0.0/8,10.1.2.3,10.1.2.3/8,proxy.internal,",
			nil, []string{`"10.1.2.3"`, `"10.1.2.3/8" has host bits set; the network is 10.0.0.0/8`, `"proxy.internal"`, `""`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(ModeAPI, env(map[string]string{"CP_DATABASE_URL": "postgres://x@h/db", "CP_KEY_ENCRYPTION_KEYS": testRing, "CP_TRUSTED_PROXIES": tt.raw}))
			if len(tt.bad) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(c.TrustedProxies, tt.want) {
					t.Fatalf("trusted proxies = %v, want %v", c.TrustedProxies, tt.want)
				}
				return
			}
			if err == nil {
				t.Fatal("Load accepted bad networks")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.bad) {
				t.Errorf("%d lines, want %d:\n%s", len(lines), len(tt.bad), err)
			}
			for _, b := range tt.bad {
				if !strings.Contains(err.Error(), "CP_TRUSTED_PROXIES: "+b) {
					t.Errorf("%s is not reported:\n%s", b, err)
				}
			}
		})
	}
}

func TestMailHeaderValuesAreCheckedAtStart(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		key  string
	}{
		{"an organisation name with CR LF is refused", map[string]string{"CP_BOOTSTRAP_ORG_NAME": "Acme\r\nBcc: x@example.test", "CP_BOOTSTRAP_ORG_SLUG": "acme",
			"CP_BOOTSTRAP_OWNER_EMAIL": "owner@acme.test", "CP_BOOTSTRAP_OWNER_PASSWORD": "a-long-enough-password"}, "CP_BOOTSTRAP_ORG_NAME"},
		{"a sender that is no address is refused", map[string]string{"CP_SMTP_FROM": "IntelliAuth\r\nBcc: x@example.test"}, "CP_SMTP_FROM"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.env["CP_DATABASE_URL"], tt.env["CP_KEY_ENCRYPTION_KEYS"] = "postgres://x@h/db", testRing
			_, err := Load(ModeAPI, env(tt.env))
			if err == nil || !strings.HasPrefix(err.Error(), tt.key+": ") || strings.Count(err.Error(), "\n") != 0 {
				t.Fatalf("err = %v, want one line for %s", err, tt.key)
			}
		})
	}
}

func TestSecretsAreReadFromFilesNamedByTheirFileVariable(t *testing.T) {
	dir := t.TempDir()
	url := dir + "/database-url"
	if err := os.WriteFile(url, []byte("postgres://cp:s3cret@db:5432/cp\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(ModeAPI, env(map[string]string{"CP_DATABASE_URL_FILE": url, "CP_KEY_ENCRYPTION_KEYS": testRing}))
	if err != nil || c.DatabaseURL != "postgres://cp:s3cret@db:5432/cp" {
		t.Fatalf("from a file: %q, %v", c.DatabaseURL, err)
	}
	for name, vars := range map[string]map[string]string{
		"both a value and a file": {"CP_DATABASE_URL": "postgres://x@h/db", "CP_DATABASE_URL_FILE": url},
		"a file that is missing":  {"CP_DATABASE_URL_FILE": dir + "/nope"},
	} {
		if _, err := Load(ModeAPI, env(vars)); err == nil || !strings.Contains(err.Error(), "CP_DATABASE_URL") {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestTheWorkerRefusesToStartWithoutAMailRelay(t *testing.T) {
	vars := map[string]string{"CP_DATABASE_URL": "postgres://x@h/db", "CP_KEY_ENCRYPTION_KEYS": "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	if _, err := Load(ModeWorker, env(vars)); err == nil || !strings.Contains(err.Error(), "CP_SMTP_ADDR") {
		t.Fatalf("a worker without a relay: %v", err)
	}
	if _, err := Load(ModeDev, env(nil)); err != nil {
		t.Fatalf("dev without a relay: %v", err)
	}
}

func TestLinkBasesDefaultPerModeAndMustBeAbsoluteHTTPURLs(t *testing.T) {
	tests := []struct {
		name        string
		mode        Mode
		vars        map[string]string
		console, ui string
		bad         []string // variables reported, one line each
	}{
		{"the api links to the console under the domain and to no Temporal UI", ModeAPI, nil,
			"https://manage.intelliauth.localhost", "", nil},
		{"the console follows the domain base", ModeAPI, map[string]string{"CP_DOMAIN_BASE": "id.example.com"},
			"https://manage.id.example.com", "", nil},
		{"dev links to its own listeners, the console by the name localhost (a passkey's relying party id cannot be an IP address)", ModeDev,
			map[string]string{"CP_HTTP_ADDR": "127.0.0.1:9090", "CP_TEMPORAL_UI_ADDR": "127.0.0.1:9233"},
			"http://localhost:9090", "http://127.0.0.1:9233", nil},
		{"given bases are kept without their trailing slash", ModeAPI,
			map[string]string{"CP_CONSOLE_URL": "https://console.example.com/manage/", "CP_TEMPORAL_UI_URL": "http://temporal.internal:8233/"},
			"https://console.example.com/manage", "http://temporal.internal:8233", nil},
		{"dev takes given bases too", ModeDev, map[string]string{"CP_CONSOLE_URL": "https://dev.example.test", "CP_TEMPORAL_UI_URL": "https://ui.example.test"},
			"https://dev.example.test", "https://ui.example.test", nil},
		{"a relative URL and another scheme are refused", ModeAPI,
			map[string]string{"CP_CONSOLE_URL": "manage.example.com", "CP_TEMPORAL_UI_URL": "ftp://ui.example.com"}, "", "",
			[]string{"CP_CONSOLE_URL", "CP_TEMPORAL_UI_URL"}},
		{"a query or a fragment is refused", ModeAPI,
			map[string]string{"CP_CONSOLE_URL": "https://manage.example.com/?x=1", "CP_TEMPORAL_UI_URL": "https://ui.example.com/#top"}, "", "",
			[]string{"CP_CONSOLE_URL", "CP_TEMPORAL_UI_URL"}},
		{"credentials and a missing host are refused", ModeAPI,
			map[string]string{"CP_CONSOLE_URL": "https://me:secret@manage.example.com", "CP_TEMPORAL_UI_URL": "http:///namespaces"}, "", "",
			[]string{"CP_CONSOLE_URL", "CP_TEMPORAL_UI_URL"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{}
			if tt.mode != ModeDev {
				vars["CP_DATABASE_URL"], vars["CP_KEY_ENCRYPTION_KEYS"] = "postgres://x@h/db", testRing
			}
			maps.Copy(vars, tt.vars)
			c, err := Load(tt.mode, env(vars))
			if len(tt.bad) > 0 {
				if err == nil {
					t.Fatal("Load accepted bad link bases")
				}
				lines := strings.Split(err.Error(), "\n")
				if len(lines) != len(tt.bad) {
					t.Errorf("%d lines, want %d:\n%s", len(lines), len(tt.bad), err)
				}
				for _, key := range tt.bad {
					if !strings.Contains(err.Error(), key+": ") {
						t.Errorf("%s is not reported:\n%s", key, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.ConsoleURL != tt.console || c.TemporalUIURL != tt.ui {
				t.Fatalf("console %q, Temporal UI %q; want %q, %q", c.ConsoleURL, c.TemporalUIURL, tt.console, tt.ui)
			}
		})
	}
}

func TestTheTenantTransitionLimitDefaultsTo12AndHasBounds(t *testing.T) {
	tests := []struct {
		name, value string
		want        int // 0: refused
	}{
		{"unset is the default", "", 12},
		{"a low limit is taken", "3", 3},
		{"zero is refused: it would stop every transition", "0", 0},
		{"a limit past 1000 is refused", "1001", 0},
		{"a word is refused", "many", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := map[string]string{"CP_DATABASE_URL": "postgres://x@h/db", "CP_KEY_ENCRYPTION_KEYS": testRing}
			if tt.value != "" {
				vars["CP_TENANT_TRANSITIONS_PER_MINUTE"] = tt.value
			}
			c, err := Load(ModeAPI, env(vars))
			if tt.want == 0 {
				if err == nil || !strings.Contains(err.Error(), "CP_TENANT_TRANSITIONS_PER_MINUTE: ") {
					t.Fatalf("Load accepted %q: %v", tt.value, err)
				}
				return
			}
			if err != nil || c.TenantTransitionsPerMinute != tt.want {
				t.Fatalf("TenantTransitionsPerMinute = %d (%v), want %d", c.TenantTransitionsPerMinute, err, tt.want)
			}
		})
	}
}

func TestTheKeyRingIsRequiredWherePayloadsAreEncryptedAndTheCodecTokenHasAForm(t *testing.T) {
	for _, mode := range []Mode{ModeAPI, ModeWorker} {
		_, err := Load(mode, env(map[string]string{"CP_DATABASE_URL": "postgres://x@h/db", "CP_SMTP_ADDR": "smtp.example.test:587", "CP_SMTP_FROM": "a@example.test"}))
		if err == nil || !strings.Contains(err.Error(), "CP_KEY_ENCRYPTION_KEYS: is required") {
			t.Errorf("%s without a key ring: %v", mode, err)
		}
	}
	for _, mode := range []Mode{ModeSetup, ModeVerify} {
		if _, err := Load(mode, env(map[string]string{"CP_DATABASE_URL": "postgres://x@h/db"})); err != nil {
			t.Errorf("%s without a key ring: %v", mode, err)
		}
	}
	base := map[string]string{"CP_DATABASE_URL": "postgres://x@h/db", "CP_KEY_ENCRYPTION_KEYS": testRing}
	c, err := Load(ModeAPI, env(base))
	if err != nil || c.CodecToken != "" || c.CodecAddr != "127.0.0.1:8234" {
		t.Fatalf("no codec token: %q on %q, %v", c.CodecToken, c.CodecAddr, err)
	}
	for token, ok := range map[string]bool{
		"MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=": true,
		"short":                                   false,
		strings.Repeat("x", 31):                   false,
		strings.Repeat("x", 40) + " " + "y":       false,
		strings.Repeat("x", 40) + "\r\nX-Evil: 1": false,
	} {
		vars := maps.Clone(base)
		vars["CP_CODEC_TOKEN"] = token
		c, err := Load(ModeAPI, env(vars))
		if ok && (err != nil || c.CodecToken != token) {
			t.Errorf("token %q refused: %v", token, err)
		}
		if !ok && (err == nil || !strings.Contains(err.Error(), "CP_CODEC_TOKEN: ") || strings.Contains(err.Error(), token)) {
			t.Errorf("token %q: %v (refused without being repeated)", token, err)
		}
	}
}

func TestTheOperatorGatewayNeedsItsCertificatesAndTemporalTLSAKeyWithItsCertificate(t *testing.T) {
	base := map[string]string{"CP_DATABASE_URL": "postgres://x@h/db", "CP_KEY_ENCRYPTION_KEYS": testRing}
	c, err := Load(ModeAPI, env(base))
	if err != nil || c.OperatorAddr != "" || c.TemporalTLS.Enabled() {
		t.Fatalf("api by default: gateway %q, temporal TLS %v, %v", c.OperatorAddr, c.TemporalTLS.Enabled(), err)
	}
	if c, err := Load(ModeDev, env(nil)); err != nil || c.OperatorAddr != "127.0.0.1:7234" {
		t.Fatalf("dev's gateway: %q, %v", c.OperatorAddr, err)
	}
	for name, c := range map[string]struct {
		vars map[string]string
		bad  string
	}{
		"a gateway without certificates":       {map[string]string{"CP_OPERATOR_ADDR": ":7234"}, "CP_OPERATOR_ADDR: the operator gateway needs"},
		"a gateway without the operators' CA":  {map[string]string{"CP_OPERATOR_ADDR": ":7234", "CP_OPERATOR_TLS_CERT": "c", "CP_OPERATOR_TLS_KEY": "k"}, "CP_OPERATOR_CLIENT_CA"},
		"a client certificate without its key": {map[string]string{"CP_TEMPORAL_TLS_CERT": "c"}, "CP_TEMPORAL_TLS_CERT: a client certificate goes with its key"},
	} {
		vars := maps.Clone(base)
		maps.Copy(vars, c.vars)
		if _, err := Load(ModeAPI, env(vars)); err == nil || !strings.Contains(err.Error(), c.bad) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := Load(ModeDev, env(map[string]string{"CP_OPERATOR_ADDR": "0.0.0.0:7234"})); err == nil || !strings.Contains(err.Error(), "CP_OPERATOR_ADDR") {
		t.Errorf("dev's gateway beyond loopback: %v", err)
	}
	colons := strings.TrimSuffix(strings.Repeat("AB:", 32), ":")
	c, err = Load(ModeDev, env(map[string]string{"CP_OPERATOR_REVOKED": colons + ", " + strings.Repeat("01", 32)}))
	if err != nil || len(c.OperatorRevoked) != 2 || c.OperatorRevoked[0][0] != 0xAB || c.OperatorRevoked[1][31] != 0x01 {
		t.Fatalf("two fingerprints: %v, %v", c.OperatorRevoked, err)
	}
	for _, bad := range []string{"abc", strings.Repeat("ab", 31), strings.Repeat("zz", 32)} {
		if _, err := Load(ModeDev, env(map[string]string{"CP_OPERATOR_REVOKED": bad})); err == nil || !strings.Contains(err.Error(), "CP_OPERATOR_REVOKED") {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestATemporalAPIKeyTurnsTLSOnAndIsRefusedWithTLSOff(t *testing.T) {
	const key = "tmprl-api-key-0123456789abcdef"
	base := map[string]string{"CP_DATABASE_URL": "postgres://x@h/db", "CP_KEY_ENCRYPTION_KEYS": testRing}
	load := func(extra map[string]string) (Config, error) {
		vars := maps.Clone(base)
		maps.Copy(vars, extra)
		return Load(ModeAPI, env(vars))
	}

	// Temporal Cloud with an API key: TLS with the system's roots, no
	// client certificate; the key also comes from a file.
	file := t.TempDir() + "/api-key"
	if err := os.WriteFile(file, []byte(key+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, vars := range map[string]map[string]string{
		"in the environment": {"CP_TEMPORAL_API_KEY": key},
		"in a file":          {"CP_TEMPORAL_API_KEY_FILE": file},
		"with TLS asked for": {"CP_TEMPORAL_API_KEY": key, "CP_TEMPORAL_TLS": "true"},
	} {
		c, err := load(vars)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if c.TemporalAPIKey != key || !c.TemporalTLS.Enabled() || c.TemporalTLS.CA != "" || c.TemporalTLS.Cert != "" {
			t.Errorf("%s: key %q, TLS %+v (enabled %v)", name, c.TemporalAPIKey, c.TemporalTLS, c.TemporalTLS.Enabled())
		}
	}
	// TLS alone, and TLS off said out loud.
	if c, err := load(map[string]string{"CP_TEMPORAL_TLS": "TRUE"}); err != nil || !c.TemporalTLS.Enabled() || c.TemporalAPIKey != "" {
		t.Errorf("CP_TEMPORAL_TLS=TRUE: TLS %v, %v", c.TemporalTLS.Enabled(), err)
	}
	if c, err := load(map[string]string{"CP_TEMPORAL_TLS": "false"}); err != nil || c.TemporalTLS.Enabled() {
		t.Errorf("CP_TEMPORAL_TLS=false: TLS %v, %v", c.TemporalTLS.Enabled(), err)
	}

	for name, c := range map[string]struct {
		vars map[string]string
		bad  string
	}{
		"an API key with TLS off": {map[string]string{"CP_TEMPORAL_API_KEY": key, "CP_TEMPORAL_TLS": "false"},
			"CP_TEMPORAL_API_KEY: is sent only over TLS, and CP_TEMPORAL_TLS is false"},
		"a CA with TLS off":           {map[string]string{"CP_TEMPORAL_TLS_CA": "ca", "CP_TEMPORAL_TLS": "false"}, "CP_TEMPORAL_TLS: is false while"},
		"a switch neither on nor off": {map[string]string{"CP_TEMPORAL_TLS": "yes"}, `CP_TEMPORAL_TLS: "yes" must be true or false`},
		"a key in both forms":         {map[string]string{"CP_TEMPORAL_API_KEY": key, "CP_TEMPORAL_API_KEY_FILE": file}, "CP_TEMPORAL_API_KEY: set either"},
	} {
		_, err := load(c.vars)
		if err == nil || !strings.Contains(err.Error(), c.bad) {
			t.Errorf("%s: %v, want %q", name, err, c.bad)
			continue
		}
		if strings.Contains(err.Error(), key) {
			t.Errorf("%s: the error repeats the API key: %v", name, err)
		}
	}
}

func TestSignUpIsClosedButInDevAndTakesOpenOrClosedOnly(t *testing.T) {
	api := map[string]string{"CP_DATABASE_URL": "postgres://cp@localhost:5432/cp", "CP_KEY_ENCRYPTION_KEYS": "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	if c, err := Load(ModeAPI, env(api)); err != nil || c.SignUpOpen || c.MaxOrgsPerUser != 5 {
		t.Fatalf("api by default: open %v, max %d, %v", c.SignUpOpen, c.MaxOrgsPerUser, err)
	}
	if c, err := Load(ModeDev, env(nil)); err != nil || !c.SignUpOpen {
		t.Fatalf("dev by default: open %v, %v", c.SignUpOpen, err)
	}
	if c, err := Load(ModeDev, env(map[string]string{"CP_SIGNUP": "closed"})); err != nil || c.SignUpOpen {
		t.Fatalf("dev closed: open %v, %v", c.SignUpOpen, err)
	}
	bad := maps.Clone(api)
	bad["CP_SIGNUP"], bad["CP_MAX_ORGS_PER_USER"] = "yes", "0"
	_, err := Load(ModeAPI, env(bad))
	if err == nil || !strings.Contains(err.Error(), "CP_SIGNUP") || !strings.Contains(err.Error(), "CP_MAX_ORGS_PER_USER") {
		t.Fatalf("bad values: %v", err)
	}
}

func TestStreamsReachPrivateAddressesOnlyUnderDevOrWhenAskedAndTheirDurationsHaveBounds(t *testing.T) {
	api := map[string]string{"CP_DATABASE_URL": "postgres://cp@localhost:5432/cp", "CP_KEY_ENCRYPTION_KEYS": "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	if c, err := Load(ModeAPI, env(api)); err != nil || c.Streams != DefaultStreams() || c.Streams.AllowPrivate {
		t.Fatalf("api by default: %+v, %v", c.Streams, err)
	}
	if c, err := Load(ModeDev, env(nil)); err != nil || !c.Streams.AllowPrivate {
		t.Fatalf("dev by default: %+v, %v", c.Streams, err)
	}
	set := maps.Clone(api)
	set["CP_STREAM_ALLOW_PRIVATE"], set["CP_STREAM_SUSPEND_AFTER"], set["CP_STREAM_TIMEOUT"] = "true", "5s", "2s"
	if c, err := Load(ModeAPI, env(set)); err != nil || !c.Streams.AllowPrivate || c.Streams.SuspendAfter != 5*time.Second || c.Streams.Timeout != 2*time.Second {
		t.Fatalf("set: %+v, %v", c.Streams, err)
	}
	bad := maps.Clone(api)
	bad["CP_STREAM_ALLOW_PRIVATE"], bad["CP_STREAM_SUSPEND_AFTER"], bad["CP_STREAM_TIMEOUT"], bad["CP_STREAM_DELIVERIES"] = "yes", "0s", "1h", "0"
	_, err := Load(ModeAPI, env(bad))
	for _, key := range []string{"CP_STREAM_ALLOW_PRIVATE", "CP_STREAM_SUSPEND_AFTER", "CP_STREAM_TIMEOUT", "CP_STREAM_DELIVERIES"} {
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("bad %s not reported: %v", key, err)
		}
	}
}

func TestBillingIsOffWithoutAKeyAndItsSettingsAreCheckedAllAtOnce(t *testing.T) {
	base := map[string]string{"CP_DATABASE_URL": "postgres://cp@localhost:5432/cp", "CP_KEY_ENCRYPTION_KEYS": testRing}
	c, err := Load(ModeAPI, env(base))
	if err != nil || c.Billing.Enabled() || c.Billing.Grace != 14*24*time.Hour || c.Billing.MeterEvent != "tenant_hours" {
		t.Fatalf("billing without a key: %+v %v", c.Billing, err)
	}
	on := maps.Clone(base)
	maps.Copy(on, map[string]string{"CP_STRIPE_SECRET_KEY": "sk_test_abc123", "CP_STRIPE_WEBHOOK_SECRET": "whsec_abc",
		"CP_STRIPE_PRICES": "team=price_1Team, enterprise=price_1Ent", "CP_STRIPE_API_URL": "http://127.0.0.1:12111/", "CP_BILLING_GRACE": "2s"})
	c, err = Load(ModeAPI, env(on))
	if err != nil || !c.Billing.Enabled() || c.Billing.Prices["enterprise"] != "price_1Ent" || c.Billing.APIURL != "http://127.0.0.1:12111" || c.Billing.Grace != 2*time.Second {
		t.Fatalf("billing on: %+v %v", c.Billing, err)
	}
	bad := maps.Clone(base)
	maps.Copy(bad, map[string]string{"CP_STRIPE_SECRET_KEY": "sk_test_supersecretvalue", "CP_STRIPE_PRICES": "free=price_x,gold=price_y,team=nope",
		"CP_STRIPE_METER_EVENT": "Tenant Hours", "CP_STRIPE_API_URL": "ftp://x"})
	_, err = Load(ModeAPI, env(bad))
	if err == nil {
		t.Fatal("bad billing settings accepted")
	}
	for _, want := range []string{"CP_STRIPE_WEBHOOK_SECRET: is required", `"free" is not a paid plan`, `"gold" is not a paid plan`, `"nope" of plan team`, "CP_STRIPE_METER_EVENT", "CP_STRIPE_API_URL"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("the error does not say %q:\n%v", want, err)
		}
	}
	if strings.Contains(err.Error(), "supersecretvalue") {
		t.Errorf("the error quotes the secret key:\n%v", err)
	}
}

func TestRegionsAreDistinctDNSLabelsInOrder(t *testing.T) {
	c, err := Load(ModeAPI, env(map[string]string{"CP_DATABASE_URL": "postgres://x/y", "CP_KEY_ENCRYPTION_KEYS": "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=",
		"CP_REGIONS": " eu , us-east,ap1 "}))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if want := []string{"eu", "us-east", "ap1"}; !slices.Equal(c.Regions, want) {
		t.Fatalf("regions %v, want %v", c.Regions, want)
	}
	if c, err := Load(ModeAPI, env(map[string]string{"CP_DATABASE_URL": "postgres://x/y", "CP_KEY_ENCRYPTION_KEYS": "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="})); err != nil || c.Regions != nil {
		t.Fatalf("without CP_REGIONS: %v %v", c.Regions, err)
	}
	for _, bad := range []string{"EU", "eu,eu", "1eu", "eu-", "eu,,us", "a-very-long-region-name-indeed", "eu us"} {
		_, err := Load(ModeAPI, env(map[string]string{"CP_DATABASE_URL": "postgres://x/y", "CP_KEY_ENCRYPTION_KEYS": "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=", "CP_REGIONS": bad}))
		if err == nil || !strings.Contains(err.Error(), "CP_REGIONS") {
			t.Errorf("CP_REGIONS=%q: %v", bad, err)
		}
	}
}

// A region's worker is configured with its region's data plane and the key
// ring only: the control plane's database and the list of regions are
// refused, so its configuration cannot hold another region's credentials.
func TestARegionsWorkerHoldsItsRegionsDataPlaneOnly(t *testing.T) {
	ok := map[string]string{"CP_REGION": "eu", "CP_REGION_DATABASE_URL": "postgres://eu@db.eu/plane", "CP_KEY_ENCRYPTION_KEYS": "k1=MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY="}
	c, err := Load(ModeRegionWorker, env(ok))
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if c.Region != "eu" || c.RegionDatabaseURL != ok["CP_REGION_DATABASE_URL"] || c.DatabaseURL != "" || c.SMTP.Addr != "" {
		t.Fatalf("config %+v", c)
	}
	for _, c := range []struct {
		set  map[string]string
		drop string
		key  string
	}{
		{set: map[string]string{"CP_DATABASE_URL": "postgres://cp@db/controlplane"}, key: "CP_DATABASE_URL"},
		{set: map[string]string{"CP_REGIONS": "eu,us"}, key: "CP_REGIONS"},
		{drop: "CP_REGION_DATABASE_URL", key: "CP_REGION_DATABASE_URL"},
		{set: map[string]string{"CP_REGION_DATABASE_URL": "mysql://eu@db.eu/plane"}, key: "CP_REGION_DATABASE_URL"},
		{set: map[string]string{"CP_REGION": "Europe"}, key: "CP_REGION"},
		{drop: "CP_KEY_ENCRYPTION_KEYS", key: "CP_KEY_ENCRYPTION_KEYS"},
	} {
		e := maps.Clone(ok)
		maps.Copy(e, c.set)
		delete(e, c.drop)
		if _, err := Load(ModeRegionWorker, env(e)); err == nil || !strings.Contains(err.Error(), c.key) {
			t.Errorf("%v without %s: %v", c.set, c.drop, err)
		}
	}
}

func TestSpareSchemasAreNoneByDefaultAndBoundedForEveryWorker(t *testing.T) {
	tests := []struct {
		name, value string
		want        int // -1: refused
	}{
		{"unset is none", "", 0},
		{"a pool is taken", "300", 300},
		{"none is taken", "0", 0},
		{"a negative count is refused", "-1", -1},
		{"past 10000 is refused", "10001", -1},
		{"a word is refused", "some", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, mode := range []Mode{ModeWorker, ModeDev, ModeRegionWorker} {
				vars := map[string]string{"CP_KEY_ENCRYPTION_KEYS": testRing, "CP_SMTP_ADDR": "smtp.example.test:587", "CP_SMTP_FROM": "IntelliAuth <noreply@example.test>"}
				switch mode {
				case ModeWorker:
					vars["CP_DATABASE_URL"] = "postgres://x@h/db"
				case ModeRegionWorker:
					vars["CP_REGION"], vars["CP_REGION_DATABASE_URL"] = "eu", "postgres://x@h/eu"
				}
				if tt.value != "" {
					vars["CP_SPARE_SCHEMAS"] = tt.value
				}
				c, err := Load(mode, env(vars))
				if tt.want < 0 {
					if err == nil || !strings.Contains(err.Error(), "CP_SPARE_SCHEMAS: ") {
						t.Fatalf("%s accepted %q: %v", mode, tt.value, err)
					}
					continue
				}
				if err != nil || c.SpareSchemas != tt.want {
					t.Fatalf("%s: SpareSchemas = %d (%v), want %d", mode, c.SpareSchemas, err, tt.want)
				}
			}
		})
	}
}
