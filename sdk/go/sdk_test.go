package intelliauth_test

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	intelliauth "github.com/intelliauth/controlplane/sdk/go"
)

func createTenant(t *testing.T, ctx context.Context, c *intelliauth.Client, name string, editors ...intelliauth.RequestEditorFn) (intelliauth.LifecycleResult, *http.Response) {
	t.Helper()
	resp, err := c.CreateTenant(ctx, dev.orgID, nil, intelliauth.CreateTenantJSONRequestBody{Name: name, Environment: "test"}, editors...)
	if err != nil {
		t.Fatal(err)
	}
	created, err := intelliauth.Data[intelliauth.LifecycleResult](resp, nil)
	if err != nil {
		t.Fatalf("create tenant %s: %v", name, err)
	}
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("create tenant %s: %d, want 202", name, resp.StatusCode)
	}
	return created, resp
}

func TestATenantIsCreatedOnceForOneIdempotencyKeyAndWaitedForUntilActive(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := ownerClient(t)
	name := tenantName(t, "sdk-create")
	key := "sdk-test-" + name

	first, resp := createTenant(t, ctx, c, name, intelliauth.WithIdempotencyKey(key))
	if resp.Header.Get("Idempotent-Replayed") != "" {
		t.Fatalf("the first request is answered as a replay")
	}
	if first.Tenant.Name != name || first.Tenant.State != "provisioning" || first.Operation.Kind != "provision" || first.Operation.Id == "" {
		t.Fatalf("create answered %+v", first)
	}
	again, resp := createTenant(t, ctx, c, name, intelliauth.WithIdempotencyKey(key))
	if resp.Header.Get("Idempotent-Replayed") != "true" {
		t.Fatalf("the same Idempotency-Key again is not answered as a replay: %v", resp.Header)
	}
	if again.Tenant.Id != first.Tenant.Id || again.Operation.Id != first.Operation.Id {
		t.Fatalf("the same Idempotency-Key made tenant %s (operation %s), then %s (%s)", first.Tenant.Id, first.Operation.Id, again.Tenant.Id, again.Operation.Id)
	}
	var named int
	for tn, err := range intelliauth.All[intelliauth.Tenant](ctx, func(ctx context.Context, cursor string) (*http.Response, error) {
		return c.ListTenants(ctx, dev.orgID, &intelliauth.ListTenantsParams{Cursor: intelliauth.Cursor(cursor)})
	}) {
		if err != nil {
			t.Fatal(err)
		}
		if tn.Name == name {
			named++
		}
	}
	if named != 1 {
		t.Fatalf("%d tenants are named %s, want 1", named, name)
	}

	op, err := c.WaitForOperation(ctx, dev.orgID, first.Tenant.Id, first.Operation.Id)
	if err != nil {
		t.Fatal(err)
	}
	if op.Status != intelliauth.OperationSucceeded || op.EndedAt == nil || len(op.Steps) == 0 {
		t.Fatalf("the provisioning settled as %+v", op)
	}
	for _, s := range op.Steps {
		if s.Status != "done" {
			t.Errorf("step %s of a succeeded provisioning is %s", s.Name, s.Status)
		}
	}
	tn, err := c.WaitForTenant(ctx, dev.orgID, first.Tenant.Id, intelliauth.TenantStateActive)
	if err != nil {
		t.Fatal(err)
	}
	if tn.State != "active" || tn.CurrentOperationId != nil || tn.Hostname == "" {
		t.Fatalf("waited for active, got %+v", tn)
	}
}

func TestWaitForOperationFollowsASuspendAndAStuckResumeIsAnOperationError(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := ownerClient(t)
	created, _ := createTenant(t, ctx, c, tenantName(t, "sdk-suspend"))
	id := created.Tenant.Id
	if _, err := c.WaitForTenant(ctx, dev.orgID, id, "active"); err != nil {
		t.Fatal(err)
	}

	suspend, err := intelliauth.Data[intelliauth.LifecycleResult](c.SuspendTenant(ctx, dev.orgID, id, nil))
	if err != nil {
		t.Fatal(err)
	}
	if suspend.Operation.Kind != "suspend" {
		t.Fatalf("suspend started %+v", suspend.Operation)
	}
	op, err := c.WaitForOperation(ctx, dev.orgID, id, suspend.Operation.Id)
	if err != nil {
		t.Fatal(err)
	}
	if op.Id != suspend.Operation.Id || op.Status != intelliauth.OperationSucceeded {
		t.Fatalf("the suspend settled as %+v", op)
	}
	tn, err := intelliauth.Data[intelliauth.Tenant](c.GetTenant(ctx, dev.orgID, id))
	if err != nil {
		t.Fatal(err)
	}
	if tn.State != "suspended" {
		t.Fatalf("after the suspend the tenant is %s", tn.State)
	}

	// Nothing will make a suspended tenant active by itself: the wait says
	// so at once rather than polling until ctx ends.
	short, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_, err = c.WaitForTenant(short, dev.orgID, id, intelliauth.TenantStateActive)
	var opErr *intelliauth.OperationError
	if err == nil || errors.As(err, &opErr) || errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting for a settled suspended tenant to be active: %v", err)
	}

	// dev runs with a fault drill that fails every attempt of the resume's
	// step (CP_FAULTS=resume_route=fail): the resume's saga retries it, then
	// is stuck at it, waiting for an operator, which both waits report.
	resume, err := intelliauth.Data[intelliauth.LifecycleResult](c.ResumeTenant(ctx, dev.orgID, id, nil))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.WaitForTenant(ctx, dev.orgID, id, intelliauth.TenantStateActive)
	if !errors.As(err, &opErr) {
		t.Fatalf("waiting for a resume that cannot succeed: %v, want an *OperationError", err)
	}
	t.Log(err)
	if opErr.Operation.Id != resume.Operation.Id || opErr.Operation.Status != intelliauth.OperationStuck || opErr.Step != "resume_route" ||
		!strings.Contains(opErr.Reason, "resume_route") {
		t.Fatalf("the stuck resume: %+v", opErr)
	}
	_, err = c.WaitForOperation(ctx, dev.orgID, id, resume.Operation.Id)
	if again := (*intelliauth.OperationError)(nil); !errors.As(err, &again) || again.Step != "resume_route" || again.Reason != opErr.Reason {
		t.Fatalf("WaitForOperation on the stuck resume: %v", err)
	}
}

func TestAllWalksEveryPageOfAList(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := ownerClient(t)
	for _, p := range []string{"sdk-page-a", "sdk-page-b"} {
		createTenant(t, ctx, c, tenantName(t, p))
	}

	one := int32(1)
	var pages int
	var walked []string
	for tn, err := range intelliauth.All[intelliauth.Tenant](ctx, func(ctx context.Context, cursor string) (*http.Response, error) {
		pages++
		return c.ListTenants(ctx, dev.orgID, &intelliauth.ListTenantsParams{Cursor: intelliauth.Cursor(cursor), Limit: &one})
	}) {
		if err != nil {
			t.Fatal(err)
		}
		walked = append(walked, tn.Id)
	}
	hundred := int32(100)
	page, err := intelliauth.List[intelliauth.Tenant](c.ListTenants(ctx, dev.orgID, &intelliauth.ListTenantsParams{Limit: &hundred}))
	if err != nil {
		t.Fatal(err)
	}
	var listed []string
	for _, tn := range page.Items {
		listed = append(listed, tn.Id)
	}
	if page.HasMore || page.Cursor != "" {
		t.Fatalf("%d tenants fill more than a page of 100", len(listed))
	}
	// Tenants other tests create meanwhile may be in one list and not the
	// other; the ones both saw come in the same order.
	if len(walked) < 2 || pages < len(walked) {
		t.Fatalf("walked %d tenants in %d pages of one", len(walked), pages)
	}
	var common []string
	for _, id := range walked {
		if slices.Contains(listed, id) {
			common = append(common, id)
		}
	}
	var commonListed []string
	for _, id := range listed {
		if slices.Contains(walked, id) {
			commonListed = append(commonListed, id)
		}
	}
	if len(common) < 2 || !slices.Equal(common, commonListed) {
		t.Fatalf("pages of one walked %v, one page listed %v", walked, listed)
	}
	if dup := slices.Compact(slices.Sorted(slices.Values(walked))); len(dup) != len(walked) {
		t.Fatalf("pages of one gave a tenant twice: %v", walked)
	}
}

func TestABadRequestIsAnAPIErrorNamingEveryInvalidField(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	c := ownerClient(t)
	_, err := intelliauth.Data[intelliauth.LifecycleResult](c.CreateTenant(ctx, dev.orgID, nil, intelliauth.CreateTenantJSONRequestBody{Name: "No_Such Name", Environment: "UPPER CASE"}))
	var apiErr *intelliauth.APIError
	if !errors.As(err, &apiErr) {
		t.Fatalf("create with a bad name: %v, want an *APIError", err)
	}
	if apiErr.StatusCode != http.StatusBadRequest || apiErr.Code != "BAD_REQUEST" || apiErr.RequestID == "" || apiErr.Message == "" {
		t.Fatalf("create with a bad name: %#v", apiErr)
	}
	var fields []string
	for _, f := range apiErr.FieldErrors {
		if f.Message == "" {
			t.Errorf("field %s has no message", f.Field)
		}
		fields = append(fields, f.Field)
	}
	slices.Sort(fields)
	if !slices.Equal(fields, []string{"environment", "name"}) {
		t.Fatalf("field errors %+v, want name and environment", apiErr.FieldErrors)
	}
	t.Log(apiErr)

	// A 404 is not retried and says what is missing.
	_, err = intelliauth.Data[intelliauth.Tenant](c.GetTenant(ctx, dev.orgID, "tnt_01J"+strings.Repeat("Z", 23)))
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || apiErr.Code != "NOT_FOUND" {
		t.Fatalf("an unknown tenant: %v", err)
	}
}

// statusRecorder records the status of every answer a client gets, below
// the SDK's retries.
type statusRecorder struct {
	mu       sync.Mutex
	statuses []int
	at       []time.Time
}

func (r *statusRecorder) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err == nil {
		r.mu.Lock()
		r.statuses, r.at = append(r.statuses, resp.StatusCode), append(r.at, time.Now())
		r.mu.Unlock()
	}
	return resp, err
}

// The API charges each lifecycle transition of a tenant to a budget per
// minute of the tenant (CP_TENANT_TRANSITIONS_PER_MINUTE, 12, a caller's
// share 6) before it looks the tenant up, so requests that name a tenant
// that does not exist spend it, and the next is a real 429 with
// Retry-After, up to a minute.
func TestARateLimitedCallIsRetriedAfterItsRetryAfter(t *testing.T) {
	t.Parallel()
	ctx := testContext(t)
	missing := "tnt_01J" + time.Now().Format("150405") + strings.Repeat("0", 17)
	spend := ownerClient(t, intelliauth.WithRetry(1, 0))
	var limited *intelliauth.APIError
	for i := 0; limited == nil; i++ {
		if i == 20 {
			t.Fatal("20 suspends of one tenant in a minute were not rate limited")
		}
		_, err := intelliauth.Data[intelliauth.LifecycleResult](spend.SuspendTenant(ctx, dev.orgID, missing, nil))
		var apiErr *intelliauth.APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("suspend of a tenant that does not exist: %v", err)
		}
		switch apiErr.StatusCode {
		case http.StatusNotFound:
		case http.StatusTooManyRequests:
			limited = apiErr
		default:
			t.Fatalf("suspend of a tenant that does not exist: %v", apiErr)
		}
	}
	if limited.Code != "RATE_LIMITED" || limited.RetryAfter <= 0 || limited.RetryAfter > time.Minute {
		t.Fatalf("the 429: %#v", limited)
	}

	rec := &statusRecorder{}
	c := ownerClient(t, intelliauth.WithHTTPClient(&http.Client{Transport: rec}), intelliauth.WithRetry(3, 90*time.Second))
	start := time.Now()
	_, err := intelliauth.Data[intelliauth.LifecycleResult](c.SuspendTenant(ctx, dev.orgID, missing, nil))
	var apiErr *intelliauth.APIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound {
		t.Fatalf("the retried suspend: %v, want the 404 of the next window", err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if !slices.Equal(rec.statuses, []int{http.StatusTooManyRequests, http.StatusNotFound}) {
		t.Fatalf("the client got %v, want a 429 and then a 404", rec.statuses)
	}
	// The retry waited the Retry-After of the 429 it got (a whole second,
	// rounded up, past the window's end).
	waited := rec.at[1].Sub(rec.at[0])
	t.Logf("Retry-After %v on the first try; the retry came %v later (%v in all)", limited.RetryAfter, waited, time.Since(start))
	if waited < time.Second || waited > limited.RetryAfter+5*time.Second {
		t.Fatalf("the retry came %v after the 429", waited)
	}
}
