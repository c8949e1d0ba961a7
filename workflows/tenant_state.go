package workflows

import (
	"slices"
	"strings"
	"time"

	"go.temporal.io/sdk/log"
	"go.temporal.io/sdk/workflow"

	"github.com/intelliauth/controlplane/activities"
	"github.com/intelliauth/controlplane/internal/domain"
)

// tenant is one run's state: what it carries to the next run is
// Continued, built in continueAsNew.
type tenant struct {
	p     TenantParams
	rev   revision
	ref   activities.TenantRef
	log   log.Logger
	state domain.State
	saga  string
	// seq numbers audit events; with the workflow id it is each event's
	// key, so a reset or a retry writes an event once.
	seq      int
	answered map[string]Answered
	// indexed, from RevisionInInput on, is what the search attributes say
	// (nil: not known, as in a run continued from another); an upsert that
	// would change nothing is not sent.
	indexed *indexed

	reserving bool
	reserved  bool
	rejection *Rejection
	provision ProvisionRequest

	// op is the running operation; claim a transition whose operation is
	// being written; next one written and not started yet.
	op    *operation
	claim *TransitionRequest
	next  *TransitionRequest

	cancelRequested bool

	// expired: the tenant's lifetime is over; expiring: its decommission
	// was begun (or found unnecessary), in this run or an earlier one.
	expired  bool
	expiring bool
	// relifing: a lifetime change is being written, and the lifetime's end
	// waits for it; stopExpiry stops the current lifetime's clock.
	relifing   bool
	stopExpiry workflow.CancelFunc
}

// operation is the state of the running operation; it dies with it.
type operation struct {
	id   string
	kind domain.OpKind
	req  activities.Request

	phase string
	step  domain.Step
	// stuck: the step's attempts are spent; repairs are those it accepts,
	// and repair the one an operator sent.
	stuck   bool
	repairs []Repair
	repair  *takenRepair
	// finishing: the final record is being written; the tenant is then in
	// state final.
	finishing bool
	final     domain.State
	// restore, for a decommission, is the restore that won: once set,
	// destruction cannot begin.
	restore     *restoreClaim
	graceEndsAt time.Time
	// immediate: a decommission with no grace period (an ephemeral
	// tenant's end).
	immediate bool
}

type takenRepair struct {
	repair   Repair
	operator string
}

type restoreClaim struct {
	req      *TransitionRequest // nil: an operator's cancel
	operator string
	written  bool
}

// mayContinueAsNew reports whether the run has done enough and nothing is
// under way: no operation, no transition being written or waiting, no
// handler running. Work accepted meanwhile runs first.
func (w *tenant) mayContinueAsNew(ctx workflow.Context, ops int) bool {
	due := ops >= w.p.MaxOperationsPerRun || workflow.GetInfo(ctx).GetContinueAsNewSuggested()
	return due && w.op == nil && w.claim == nil && w.next == nil && workflow.AllHandlersFinished(ctx)
}

// continueAsNew starts a fresh run with the tenant's state, so a
// long-lived tenant's history stays short. The next run starts at the
// current revision and carries at most maxAnswered answered updates, the
// newest: a retry of an older one is answered from Postgres by the API.
func (w *tenant) continueAsNew(ctx workflow.Context) error {
	p := w.p
	c := &Continued{State: w.state, EventSeq: w.seq, Answered: map[string]Answered{}, ExpiryDone: w.expiring}
	now := workflow.Now(ctx)
	ids := make([]string, 0, len(w.answered))
	for id, a := range w.answered {
		if now.Sub(a.At) < answeredRetention {
			ids = append(ids, id)
		}
	}
	// Newest first, ties by id: the same choice on every replay.
	slices.SortFunc(ids, func(x, y string) int {
		if c := w.answered[y].At.Compare(w.answered[x].At); c != 0 {
			return c
		}
		return strings.Compare(x, y)
	})
	for _, id := range ids[:min(len(ids), maxAnswered)] {
		c.Answered[id] = w.answered[id]
	}
	p.Continued = c
	p.Revision = w.rev.continuedAt()
	w.log.Info("continuing as new", "operations", w.p.MaxOperationsPerRun, "revision", p.Revision)
	return workflow.NewContinueAsNewError(ctx, TenantWorkflow, p)
}

func (w *tenant) status() Status {
	s := Status{State: w.state, Saga: w.saga, CancelRequested: w.cancelRequested}
	op := w.op
	if op == nil {
		return s
	}
	os := &OperationStatus{ID: op.id, Kind: op.kind, Phase: op.phase, Step: string(op.step), Stuck: op.stuck, Repairs: []Repair{}}
	if op.phase == PhaseGracePeriod {
		os.Step = domain.StepGracePeriod
		ends := op.graceEndsAt
		os.GraceEndsAt = &ends
	}
	for _, r := range Repairs {
		if w.canRepair(r, RepairRequest{Operator: "status", OperationID: op.id, Step: os.Step}) == nil {
			os.Repairs = append(os.Repairs, r)
		}
	}
	s.Operation = os
	return s
}

type indexed struct {
	state domain.State
	saga  string
}

func (w *tenant) searchAttributes(ctx workflow.Context) {
	now := indexed{state: w.state, saga: w.saga}
	if w.rev.indexesOnlyChanges() {
		if w.indexed != nil && *w.indexed == now {
			return
		}
		w.indexed = &now
	}
	_ = workflow.UpsertTypedSearchAttributes(ctx,
		SearchAttrOrgID.ValueSet(w.p.OrgID),
		SearchAttrTenantID.ValueSet(w.p.TenantID),
		SearchAttrTenantState.ValueSet(string(w.state)),
		SearchAttrSagaStatus.ValueSet(w.saga),
	)
}

func (w *tenant) begin(id string, kind domain.OpKind, req activities.Request) {
	w.op = &operation{id: id, kind: kind, req: req, phase: PhaseSteps}
	w.saga = SagaRunning
	w.log.Info("operation started", "operation_id", id, "kind", string(kind))
}
