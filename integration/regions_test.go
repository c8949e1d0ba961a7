package integration

import (
	"context"
	"errors"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/api"
	"github.com/intelliauth/controlplane/internal/dataplane"
	"github.com/intelliauth/controlplane/internal/domain"
	"github.com/intelliauth/controlplane/internal/harness"
	"github.com/intelliauth/controlplane/internal/pgcluster"
	"github.com/intelliauth/controlplane/internal/store"
	"github.com/intelliauth/controlplane/workflows"
)

// regionPlane is a region's data plane: a database of its own, owned by a
// role of its own that no other role may connect as, as a region's
// managed Postgres would be.
type regionPlane struct {
	name string
	// url is the region worker's credential: its role, its database.
	url string
	// admin reads the database for the test's checks.
	admin *bun.DB
	role  string
}

func newRegionPlane(t *testing.T, h *harness.Harness, name string) regionPlane {
	t.Helper()
	ctx := context.Background()
	suffix := strings.ToLower(uniq())
	db, role := "region_"+name+"_"+suffix, "region_"+name+"_"+suffix
	if err := pgcluster.CreateDatabase(ctx, h.AdminURL, db); err != nil {
		t.Fatal(err)
	}
	admin, err := store.Open(ctx, h.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	for _, q := range []string{
		"CREATE ROLE " + role + " LOGIN",
		"ALTER DATABASE " + db + " OWNER TO " + role,
		"REVOKE CONNECT ON DATABASE " + db + " FROM PUBLIC",
	} {
		if _, err := admin.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	u, err := url.Parse(h.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	adminURL := *u
	adminURL.Path = "/" + db
	u.User, u.Path = url.User(role), "/"+db
	p := regionPlane{name: name, url: u.String(), role: role}
	if p.admin, err = store.Open(ctx, adminURL.String()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.admin.Close()
		_ = pgcluster.DropDatabase(context.Background(), h.AdminURL, db)
		if a, err := store.Open(context.Background(), h.AdminURL); err == nil {
			_, _ = a.ExecContext(context.Background(), "DROP ROLE IF EXISTS "+role)
			a.Close()
		}
	})
	return p
}

// has reports what of the tenant the region's data plane holds.
func (p regionPlane) has(t *testing.T, tn store.Tenant) dataplane.Resources {
	t.Helper()
	return inspectOn(t, p.admin, tn)
}

func inspectOn(t *testing.T, db *bun.DB, tn store.Tenant) dataplane.Resources {
	t.Helper()
	var exists bool
	if err := db.NewRaw("SELECT to_regclass('dataplane.routes') IS NOT NULL").Scan(context.Background(), &exists); err != nil {
		t.Fatal(err)
	}
	var schema bool
	if err := db.NewRaw("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = ?)",
		"tenant_"+strings.ToLower(strings.TrimPrefix(tn.ID, "tnt_"))).Scan(context.Background(), &schema); err != nil {
		t.Fatal(err)
	}
	if !exists {
		return dataplane.Resources{Schema: schema}
	}
	res, err := (&dataplane.Postgres{DB: db}).Inspect(context.Background(), dataplane.Ref{TenantID: tn.ID, OrgID: tn.OrgID, Hostname: tn.Hostname})
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// regionWorker is a running `controlplane worker --region <name>`.
type regionWorker struct {
	p   *process
	env []string
}

// regionWorkerEnv is what a region's worker is given: Temporal, the key
// ring, the task queue and its region's data plane. Nothing of the
// control plane's database, nor of another region, is in it.
func regionWorkerEnv(t *testing.T, h *harness.Harness, taskQueue string, p regionPlane) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CP_") {
			env = append(env, kv)
		}
	}
	return append(env, "CP_TEMPORAL_ADDRESS="+h.TemporalAddr, "CP_TEMPORAL_NAMESPACE="+harness.Namespace, "CP_TASK_QUEUE="+taskQueue,
		"CP_KEY_ENCRYPTION_KEYS="+h.KeyRing, "CP_REGION_DATABASE_URL="+p.url, "CP_METRICS_ADDR="+freeAddr(t), "CP_LOG_FORMAT=json",
		"CP_DATABASE_MAX_CONNS=4")
}

func startRegionWorker(t *testing.T, env []string, region string) *regionWorker {
	t.Helper()
	w := &regionWorker{p: startProcess(t, env, binary(t), "worker", "--region", region), env: env}
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(w.p.out.String(), "region worker started") {
		if time.Now().After(deadline) {
			t.Fatalf("the worker of region %s did not start:\n%s", region, w.p.out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return w
}

// stop stops the worker as an orchestrator does (SIGTERM) and waits for it
// to exit.
func (w *regionWorker) stop(t *testing.T) {
	t.Helper()
	_ = w.p.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan error, 1)
	go func() { done <- w.p.cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatalf("the region worker did not stop:\n%s", w.p.out.String())
	}
}

// TestTenantsLiveInTheirRegionServedByTheRegionsOwnWorkers runs one API
// and one control-plane worker with two regions, eu and us, each a
// database of its own served by `controlplane worker --region` processes
// that hold that database's credentials only. A tenant lands in its
// region's database and nowhere else, with the region in its hostname.
// With us's worker stopped, a us tenant's suspension waits while an eu
// tenant's goes through; it finishes once a us worker is back.
func TestTenantsLiveInTheirRegionServedByTheRegionsOwnWorkers(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	eu, us := newRegionPlane(t, h, "eu"), newRegionPlane(t, h, "us")
	l := newLifecycle(t, nil)
	deps := l.deps
	deps.Regions, deps.DomainBase = []string{"eu", "us"}, "regions.test"
	srv := api.New(deps)
	euWorker := startRegionWorker(t, regionWorkerEnv(t, h, deps.TaskQueue, eu), "eu")
	usWorker := startRegionWorker(t, regionWorkerEnv(t, h, deps.TaskQueue, us), "us")
	_ = euWorker
	w := newWorld(t, h, "team")
	dev := w.People[domain.RoleDeveloper]

	create := func(name string, body map[string]any) store.Tenant {
		t.Helper()
		body["name"], body["environment"] = name, "prod"
		r := httpReq(t, srv, "POST", orgPath(w, "/tenants"), dev.Token, body, "")
		if r.Status != 202 {
			t.Fatalf("create %s: %d %s", name, r.Status, r.Raw)
		}
		var d lifecycleData
		r.data(t, &d)
		return d.Tenant
	}
	waitState := func(id string, state domain.State) store.Tenant {
		t.Helper()
		return lifecycle{srv: srv}.waitState(t, w, id, state)
	}
	// No region named: the installation's first, eu.
	paris := create("paris", map[string]any{})
	ohio := create("ohio", map[string]any{"region": "us"})
	paris, ohio = waitState(paris.ID, domain.StateActive), waitState(ohio.ID, domain.StateActive)
	if paris.Region != "eu" || ohio.Region != "us" {
		t.Fatalf("regions %q and %q, want eu and us", paris.Region, ohio.Region)
	}
	if want := "paris-" + w.Org.Slug + ".eu.regions.test"; paris.Hostname != want {
		t.Fatalf("hostname %s, want %s", paris.Hostname, want)
	}
	if want := "ohio-" + w.Org.Slug + ".us.regions.test"; ohio.Hostname != want {
		t.Fatalf("hostname %s, want %s", ohio.Hostname, want)
	}
	for _, c := range []struct {
		tn        store.Tenant
		home, not regionPlane
	}{{paris, eu, us}, {ohio, us, eu}} {
		if got := c.home.has(t, c.tn); !got.Schema || !got.Keys || !got.Route || !got.RouteEnabled {
			t.Fatalf("%s in region %s: %+v", c.tn.Name, c.home.name, got)
		}
		if got := c.not.has(t, c.tn); got.Any() {
			t.Fatalf("%s of region %s is in region %s too: %+v", c.tn.Name, c.home.name, c.not.name, got)
		}
		if got := inspectOn(t, h.DB, c.tn); got.Any() {
			t.Fatalf("%s of region %s is in the control plane's database: %+v", c.tn.Name, c.home.name, got)
		}
	}
	// The operation's steps are recorded as the installation's own are.
	var op store.Operation
	if err := h.DB.NewSelect().Model(&op).Where("tenant_id = ? AND kind = 'provision'", ohio.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, s := range op.Steps {
		if s.Status != "done" || s.Attempts != 1 {
			t.Fatalf("step %s: %+v", s.Name, s)
		}
	}

	// A region that is not the installation's is refused by field.
	r := httpReq(t, srv, "POST", orgPath(w, "/tenants"), dev.Token, map[string]any{"name": "mars", "environment": "prod", "region": "mars"}, "")
	if r.Status != 400 || !strings.Contains(r.Raw, `"field":"region"`) || !strings.Contains(r.Raw, "eu, us") {
		t.Fatalf("an unknown region: %d %s", r.Status, r.Raw)
	}
	// The regions, both served.
	r = req(t, srv, "GET", orgPath(w, "/regions"), w.People[domain.RoleViewer].Token, nil)
	if r.Status != 200 || !strings.Contains(r.Raw, `{"name":"eu","default":true,"serving":true}`) || !strings.Contains(r.Raw, `{"name":"us","default":false,"serving":true}`) {
		t.Fatalf("regions: %d %s", r.Status, r.Raw)
	}

	// The organisation's default region: us, for creations naming none.
	owner, admin := w.People[domain.RoleOwner], w.People[domain.RoleAdmin]
	if r := req(t, srv, "PATCH", orgPath(w, ""), owner.Token, map[string]any{"default_region": "us"}); r.Status != 200 || !strings.Contains(r.Raw, `"default_region":"us"`) {
		t.Fatalf("default region: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "PATCH", orgPath(w, ""), owner.Token, map[string]any{"default_region": "mars"}); r.Status != 400 || !strings.Contains(r.Raw, `"field":"default_region"`) {
		t.Fatalf("an unknown default region: %d %s", r.Status, r.Raw)
	}
	if austin := waitState(create("austin", map[string]any{}).ID, domain.StateActive); austin.Region != "us" {
		t.Fatalf("a creation naming no region went to %q, the organisation's default is us", austin.Region)
	}
	// A service account of eu's tenants: it sees and acts on those only.
	created := httpReq(t, srv, "POST", orgPath(w, "/service-accounts"), admin.Token, map[string]any{
		"name": "eu-bot", "role": "developer", "regions": []string{"eu"}, "token_expires_in": 3600, "scopes": []string{"tenants:create", "tenants:read"}}, "")
	if created.Status != 201 || !strings.Contains(created.Raw, `"regions":["eu"]`) {
		t.Fatalf("an eu service account: %d %s", created.Status, created.Raw)
	}
	var bot struct {
		Token string `json:"token"`
	}
	created.data(t, &bot)
	if r := req(t, srv, "GET", orgPath(w, "/tenants"), bot.Token, nil); r.Status != 200 || !strings.Contains(r.Raw, paris.ID) ||
		strings.Contains(r.Raw, ohio.ID) || strings.Contains(r.Raw, `"region":"us"`) {
		t.Fatalf("the eu account's tenants: %d %s", r.Status, r.Raw)
	}
	if r := req(t, srv, "GET", orgPath(w, "/tenants/"+ohio.ID), bot.Token, nil); r.Status != 404 {
		t.Fatalf("a us tenant to the eu account: %d %s", r.Status, r.Raw)
	}
	if r := httpReq(t, srv, "POST", orgPath(w, "/tenants"), bot.Token, map[string]any{"name": "nyc", "environment": "prod"}, ""); r.Status != 403 {
		t.Fatalf("the eu account's creation in the default region, us: %d %s", r.Status, r.Raw)
	}
	if r := httpReq(t, srv, "POST", orgPath(w, "/tenants"), bot.Token, map[string]any{"name": "lyon", "environment": "prod", "region": "eu"}, ""); r.Status != 202 {
		t.Fatalf("the eu account's creation in eu: %d %s", r.Status, r.Raw)
	}

	// us's worker stops: us's tenants' operations wait, eu's do not.
	usWorker.stop(t)
	for _, tn := range []store.Tenant{ohio, paris} {
		if r := req(t, srv, "POST", orgPath(w, "/tenants/"+tn.ID+"/suspend"), dev.Token, nil); r.Status != 202 {
			t.Fatalf("suspend %s: %d %s", tn.Name, r.Status, r.Raw)
		}
	}
	waitState(paris.ID, domain.StateSuspended)
	time.Sleep(3 * time.Second)
	var held store.Tenant
	if err := h.DB.NewSelect().Model(&held).Where("id = ?", ohio.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if held.State != string(domain.StateActive) || held.CurrentOperationID == nil {
		t.Fatalf("the us tenant's suspension went on without a us worker: %+v", held)
	}
	if got := us.has(t, ohio); !got.RouteEnabled {
		t.Fatalf("the us tenant's route was suspended without a us worker: %+v", got)
	}
	// A us worker again: the suspension finishes.
	startRegionWorker(t, usWorker.env, "us")
	waitState(ohio.ID, domain.StateSuspended)
	if got := us.has(t, ohio); !got.Route || got.RouteEnabled {
		t.Fatalf("the us tenant's route after its suspension: %+v", got)
	}
	recordHistory(t, h, ohio.WorkflowID, "", "region")
}

// TestARegionsWorkerHoldsNothingOfAnotherRegion tries, as eu's worker,
// to reach us: its role cannot connect to us's database, its configuration
// refuses the control plane's database and other regions, and a step of a
// us tenant sent to eu's task queue is refused, with nothing written to
// eu's data plane.
func TestARegionsWorkerHoldsNothingOfAnotherRegion(t *testing.T) {
	h := harness.Get(t)
	ctx := context.Background()
	eu, us := newRegionPlane(t, h, "eu"), newRegionPlane(t, h, "us")

	// eu's credentials on us's database: refused by the server.
	u, _ := url.Parse(us.url)
	u.User = url.User(eu.role)
	if db, err := store.Open(ctx, u.String()); err == nil {
		err = db.PingContext(ctx)
		db.Close()
		if err == nil || !strings.Contains(err.Error(), "permission denied for database") {
			t.Fatalf("eu's role on us's database: %v", err)
		}
	} else if !strings.Contains(err.Error(), "permission denied for database") {
		t.Fatalf("eu's role on us's database: %v", err)
	}

	// Its configuration: a region's worker refuses the control plane's
	// database and the installation's list of regions.
	tq := harness.TaskQueue(t)
	env := regionWorkerEnv(t, h, tq, eu)
	for _, extra := range []string{"CP_DATABASE_URL=" + h.DatabaseURL, "CP_REGIONS=eu,us"} {
		p := startProcess(t, append(env, extra), binary(t), "worker", "--region", "eu")
		err := p.cmd.Wait()
		var exit *exec.ExitError
		if !errors.As(err, &exit) || exit.ExitCode() != 2 || !strings.Contains(p.out.String(), strings.Split(extra, "=")[0]) {
			t.Fatalf("with %s: %v\n%s", strings.Split(extra, "=")[0], err, p.out.String())
		}
	}

	// A us tenant's step sent to eu's task queue: refused for good.
	startRegionWorker(t, env, "eu")
	tn := store.Tenant{ID: domain.NewID("tnt_"), OrgID: domain.NewID("org_"), Hostname: "lost-acme.us.regions.test"}
	h.StartWorker(t, tq, func(r worker.Registry) {
		r.RegisterWorkflowWithOptions(func(ctx workflow.Context, in activities.StepInput) error {
			var region *activities.Region
			ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second,
				TaskQueue: workflows.RegionTaskQueue(tq, "eu"), RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 3}})
			return workflow.ExecuteActivity(ctx, region.ApplyStep, in).Get(ctx, nil)
		}, workflow.RegisterOptions{Name: "misrouted-step"})
	})
	run, err := h.Temporal.ExecuteWorkflow(ctx, client.StartWorkflowOptions{TaskQueue: tq, WorkflowExecutionTimeout: time.Minute}, "misrouted-step",
		activities.StepInput{OperationID: domain.NewID("op_"), Step: string(domain.StepSchema), Region: "us",
			Tenant: activities.TenantRef{TenantID: tn.ID, OrgID: tn.OrgID, Hostname: tn.Hostname}})
	if err != nil {
		t.Fatal(err)
	}
	err = run.Get(ctx, nil)
	var appErr *temporal.ApplicationError
	if !errors.As(err, &appErr) || appErr.Type() != activities.ErrOtherRegion {
		t.Fatalf("a us step on eu's worker: %v", err)
	}
	if got := eu.has(t, tn); got.Any() {
		t.Fatalf("eu's data plane took a us tenant's step: %+v", got)
	}
}
