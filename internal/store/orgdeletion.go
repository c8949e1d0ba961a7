package store

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/domain"
)

// OrgOperation is a row of organization_operations: a deletion or a
// restore of an organisation.
type OrgOperation struct {
	bun.BaseModel `bun:"table:organization_operations"`

	ID          string     `bun:"id,pk" json:"id"`
	OrgID       string     `bun:"org_id" json:"org_id"`
	Kind        string     `bun:"kind" json:"kind"`
	Status      string     `bun:"status" json:"status"`
	RequestedBy string     `bun:"requested_by" json:"requested_by"`
	RequestID   string     `bun:"request_id" json:"-"`
	WorkflowID  string     `bun:"workflow_id" json:"workflow_id"`
	UpdateID    string     `bun:"update_id" json:"-"`
	DueAt       *time.Time `bun:"due_at" json:"due_at,omitempty"`
	StartedAt   time.Time  `bun:"started_at" json:"started_at"`
	EndedAt     *time.Time `bun:"ended_at" json:"ended_at,omitempty"`
}

// OrgAnswer answers a deletion or a restore: the organisation and the
// operation, as Postgres holds them.
type OrgAnswer struct {
	Organization Organization
	Operation    OrgOperation
	// RequestID is the request the operation was written for; Replayed:
	// an earlier attempt wrote it.
	RequestID string
	Replayed  bool
}

// OrgRequest is an organisation's deletion or restore as its saga writes
// it: the operation's id and the request (workflow id and update id) that
// every retry carries.
type OrgRequest struct {
	OrgID       string
	OperationID string
	WorkflowID  string
	UpdateID    string
	// Confirm is the slug the person typed (a deletion).
	Confirm string
	// DueAt is when the deletion is due (a deletion).
	DueAt   time.Time
	Request TenantRequest
}

// answeredOrgOperation finds the operation an earlier attempt of the
// request wrote.
func answeredOrgOperation(ctx context.Context, db bun.IDB, in OrgRequest) (OrgAnswer, bool, error) {
	var op OrgOperation
	err := db.NewSelect().Model(&op).Where("workflow_id = ? AND update_id = ?", in.WorkflowID, in.UpdateID).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return OrgAnswer{}, false, nil
	}
	if err != nil {
		return OrgAnswer{}, false, fmt.Errorf("find operation of %s: %w", in.UpdateID, err)
	}
	o, err := OrgByID(ctx, db, op.OrgID)
	if err != nil {
		return OrgAnswer{}, false, err
	}
	return OrgAnswer{Organization: o, Operation: op, RequestID: op.RequestID, Replayed: true}, true, nil
}

// BeginOrgDeletion puts the organisation in state deleting until in.DueAt
// and writes the deletion's operation and its organization.deletion_requested
// event, in one transaction. The slug must be the organisation's; an
// organisation that is not active is a conflict. A retry of the request
// is answered with what its first attempt wrote.
func BeginOrgDeletion(ctx context.Context, db *bun.DB, in OrgRequest) (OrgAnswer, error) {
	var res OrgAnswer
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		o, err := lockOrganization(ctx, tx, in.OrgID)
		if err != nil {
			return err
		}
		if a, ok, err := answeredOrgOperation(ctx, tx, in); err != nil || ok {
			res = a
			return err
		}
		if o.State != string(domain.OrgActive) {
			return domain.ErrOrgDeleting()
		}
		if in.Confirm != o.Slug {
			return ConfirmSlugError()
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		due := in.DueAt.UTC().Truncate(time.Microsecond)
		o.State, o.DeletionDueAt, o.UpdatedAt = string(domain.OrgDeleting), &due, now
		if _, err := tx.NewUpdate().Model(&o).Column("state", "deletion_due_at", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update organisation %s: %w", in.OrgID, err)
		}
		op := OrgOperation{ID: in.OperationID, OrgID: in.OrgID, Kind: string(domain.OrgOpDeletion), Status: "running",
			RequestedBy: in.Request.UserID, RequestID: in.Request.RequestID, WorkflowID: in.WorkflowID, UpdateID: in.UpdateID,
			DueAt: &due, StartedAt: now}
		if _, err := tx.NewInsert().Model(&op).Exec(ctx); err != nil {
			return fmt.Errorf("insert operation %s: %w", op.ID, err)
		}
		if err := orgEvent(ctx, tx, o, in.Request, "organization.deletion_requested", in.WorkflowID,
			map[string]any{"operation_id": op.ID, "deletion_due_at": due}, in.WorkflowID+"/"+in.UpdateID); err != nil {
			return err
		}
		res = OrgAnswer{Organization: o, Operation: op, RequestID: op.RequestID}
		return nil
	})
	return res, err
}

// ConfirmSlugError is the answer to a deletion whose confirmation is not
// the organisation's slug.
func ConfirmSlugError() error {
	return &domain.Error{Code: domain.CodeBadRequest, Message: "invalid request body",
		FieldErrors: []domain.FieldError{{Field: "confirm", Message: "type the organization's slug, exactly, to delete it"}}}
}

// RestoreOrg calls off the organisation's running deletion (in.OperationID
// is the restore's): the organisation is active again, its tenants as the
// deletion left them (suspended), the deletion cancelled, the restore
// written as succeeded with its organization.restored event; one
// transaction. A retry is answered with what its first attempt wrote.
func RestoreOrg(ctx context.Context, db *bun.DB, in OrgRequest) (OrgAnswer, error) {
	var res OrgAnswer
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		o, err := lockOrganization(ctx, tx, in.OrgID)
		if err != nil {
			return err
		}
		if a, ok, err := answeredOrgOperation(ctx, tx, in); err != nil || ok {
			res = a
			return err
		}
		if o.State != string(domain.OrgDeleting) {
			return domain.Errorf(domain.CodeConflict, "the organization is %s: only one being deleted can be restored", o.State)
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		var deletion OrgOperation
		err = tx.NewUpdate().Model(&deletion).Set("status = 'cancelled', ended_at = ?", now).
			Where("org_id = ? AND kind = 'deletion' AND status IN ('running', 'stuck')", in.OrgID).Returning("*").Scan(ctx)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("cancel the deletion of %s: %w", in.OrgID, err)
		}
		o.State, o.DeletionDueAt, o.UpdatedAt = string(domain.OrgActive), nil, now
		if _, err := tx.NewUpdate().Model(&o).Column("state", "deletion_due_at", "updated_at").WherePK().Exec(ctx); err != nil {
			return fmt.Errorf("update organisation %s: %w", in.OrgID, err)
		}
		op := OrgOperation{ID: in.OperationID, OrgID: in.OrgID, Kind: string(domain.OrgOpRestore), Status: "succeeded",
			RequestedBy: in.Request.UserID, RequestID: in.Request.RequestID, WorkflowID: in.WorkflowID, UpdateID: in.UpdateID,
			StartedAt: now, EndedAt: &now}
		if _, err := tx.NewInsert().Model(&op).Exec(ctx); err != nil {
			return fmt.Errorf("insert operation %s: %w", op.ID, err)
		}
		if err := orgEvent(ctx, tx, o, in.Request, "organization.restored", in.WorkflowID,
			map[string]any{"operation_id": op.ID, "deletion_id": deletion.ID}, in.WorkflowID+"/"+in.UpdateID); err != nil {
			return err
		}
		res = OrgAnswer{Organization: o, Operation: op, RequestID: op.RequestID}
		return nil
	})
	return res, err
}

// OrgRecord is a change of a deletion's status (stuck, running again)
// with its audit event, written once under EventKey.
type OrgRecord struct {
	// For is the person the saga acts for (type and id only: the event
	// outlives their name).
	For         domain.Actor
	OrgID       string
	OperationID string
	WorkflowID  string
	Status      string
	Action      string
	Data        map[string]any
	EventKey    string
}

// RecordOrgOperation writes a deletion's status and its event, in one
// transaction.
func RecordOrgOperation(ctx context.Context, db *bun.DB, in OrgRecord) error {
	return db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		if _, err := tx.NewUpdate().Model((*OrgOperation)(nil)).Set("status = ?", in.Status).
			Where("id = ? AND ended_at IS NULL", in.OperationID).Exec(ctx); err != nil {
			return fmt.Errorf("update operation %s: %w", in.OperationID, err)
		}
		var o Organization
		if err := tx.NewSelect().Model(&o).Where("id = ?", in.OrgID).Scan(ctx); err != nil {
			return fmt.Errorf("load organisation %s: %w", in.OrgID, err)
		}
		return orgEvent(ctx, tx, o, TenantRequest{Actor: domain.Actor{OnBehalfOf: &in.For}}, in.Action, in.WorkflowID, in.Data, in.EventKey)
	})
}

// orgEvent writes an event about the organisation: the person's request
// (r.Actor set), or the deletion's saga acting for the person
// r.Actor.OnBehalfOf names (type and id).
func orgEvent(ctx context.Context, tx bun.IDB, o Organization, r TenantRequest, action, workflowID string, data map[string]any, key string) error {
	ev := &AuditEvent{OrgID: o.ID, Action: action, TargetType: "organization", TargetID: o.ID,
		RequestID: r.RequestID, WorkflowID: workflowID, DedupKey: &key}
	if r.Actor.Type != "" {
		ev.ActorType, ev.ActorID, ev.ActorEmail, ev.ActorName = r.Actor.Type, r.Actor.ID, r.Actor.Email, r.Actor.Name
		ev.ClientAddr, ev.UserAgent = r.ClientAddr, r.UserAgent
	} else {
		ev.ActorType, ev.ActorID = "system", "organization-deletion"
		if b := r.Actor.OnBehalfOf; b != nil && b.ID != "" {
			raw, err := json.Marshal(domain.Actor{Type: b.Type, ID: b.ID})
			if err != nil {
				return fmt.Errorf("encode on_behalf_of: %w", err)
			}
			ev.OnBehalfOf = raw
		}
	}
	if data != nil {
		b, err := json.Marshal(data)
		if err != nil {
			return fmt.Errorf("encode event data: %w", err)
		}
		ev.Data = b
	}
	_, err := InsertEvent(ctx, tx, ev)
	return err
}

// OrgTenant is a tenant of an organisation as its deletion sees it.
type OrgTenant struct {
	ID         string `bun:"id"`
	WorkflowID string `bun:"workflow_id"`
	State      string `bun:"state"`
	// Stuck: its saga is stuck on a step of its running operation.
	Stuck bool `bun:"stuck"`
	// InGrace: a decommission is waiting out its grace period.
	InGrace bool `bun:"in_grace"`
}

// OrgTenants lists the organisation's tenants that have not ended
// (decommissioned or failed), with their running operation's status.
func OrgTenants(ctx context.Context, db bun.IDB, orgID string) ([]OrgTenant, error) {
	var out []OrgTenant
	err := db.NewRaw(`
		SELECT t.id, t.workflow_id, t.state,
		       coalesce(op.status = 'stuck', false) AS stuck,
		       coalesce(op.kind = 'decommission' AND op.status = 'running' AND op.grace_ends_at IS NOT NULL, false) AS in_grace
		FROM tenants t
		LEFT JOIN operations op ON op.id = t.current_operation_id AND op.status IN ('running', 'stuck')
		WHERE t.org_id = ? AND t.state NOT IN ('decommissioned', 'failed')
		ORDER BY t.created_at, t.id`, orgID).Scan(ctx, &out)
	if err != nil {
		return nil, fmt.Errorf("list live tenants of %s: %w", orgID, err)
	}
	return out, nil
}

// ListOrgOperations returns up to limit+1 of the organisation's own
// operations after the keyset position, oldest first.
func ListOrgOperations(ctx context.Context, db bun.IDB, orgID string, after Keyset, limit int) ([]OrgOperation, error) {
	var out []OrgOperation
	q := db.NewSelect().Model(&out).Where("org_id = ?", orgID).OrderExpr("started_at, id").Limit(int64(limit + 1))
	if after.ID != "" {
		q = q.Where("(started_at, id) > (?, ?)", after.CreatedAt, after.ID)
	}
	if err := q.Scan(ctx); err != nil {
		return nil, fmt.Errorf("list operations of %s: %w", orgID, err)
	}
	return out, nil
}

// EraseRequest is the erasure a deletion's saga asks for: the
// organisation, its deletion's operation and workflow, the key of the
// organization.deleted event, and the person the saga acts for.
type EraseRequest struct {
	OrgID, OperationID, WorkflowID, EventKey string
	For                                      domain.Actor
}

// Erasure is what EraseOrganization did.
type Erasure struct {
	// Erased are the people whose account went with the organisation;
	// Kept those who belong to another and keep theirs.
	Erased int
	Kept   int
	Events int
}

// EraseOrganization erases a deleted organisation's personal data, in one
// transaction, once none of its tenants is left: its memberships,
// invitations, service accounts and their tokens; the accounts of its
// members who belong to no other organisation (their sessions, second
// factors, challenges, password resets and mail go; the row stays as a
// tombstone with no email, name or password, so the records of other
// organisations that name its id still resolve); and, in its audit trail,
// every name and email replaced by a pseudonym: an HMAC of the person's id
// (or of an email no account has) under a key made for this erasure and
// then forgotten, so a pseudonym is the same in every event and cannot be
// turned back. The events themselves stay, their chain computed again
// over what they now say (the one rewrite a chain has: a head signed
// before the erasure no longer matches). The organisation ends deleted,
// its slug freed. An organisation already deleted is left as it is.
func EraseOrganization(ctx context.Context, db *bun.DB, in EraseRequest) (Erasure, error) {
	orgID, operationID := in.OrgID, in.OperationID
	var res Erasure
	err := db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		o, err := lockOrganization(ctx, tx, orgID)
		if err != nil {
			return err
		}
		if o.State == string(domain.OrgDeleted) {
			return nil
		}
		if o.State != string(domain.OrgDeleting) {
			return domain.Errorf(domain.CodeConflict, "organisation %s is %s, not being deleted: nothing is erased", orgID, o.State)
		}
		// Before its events are read: the chain is computed again from
		// its checkpoint, which no purge may move meanwhile.
		if err := lockRetention(ctx, tx, orgID); err != nil {
			return err
		}
		var live int
		if err := tx.NewSelect().Model((*Tenant)(nil)).ColumnExpr("count(*)").
			Where("org_id = ? AND state NOT IN ('decommissioned', 'failed')", orgID).Scan(ctx, &live); err != nil {
			return fmt.Errorf("count live tenants of %s: %w", orgID, err)
		}
		if live > 0 {
			return fmt.Errorf("organisation %s still has %d tenants", orgID, live)
		}
		key := make([]byte, 32)
		if _, err := rand.Read(key); err != nil {
			return fmt.Errorf("pseudonym key: %w", err)
		}
		p := pseudonyms{key: key, byEmail: map[string]string{}, byName: map[string]string{}}
		if err := p.learn(ctx, tx, orgID); err != nil {
			return err
		}
		n, err := p.rewriteTrail(ctx, tx, orgID)
		if err != nil {
			return err
		}
		res.Events = n

		var members []struct {
			UserID    string `bun:"user_id"`
			Elsewhere bool   `bun:"elsewhere"`
		}
		if err := tx.NewRaw(`SELECT m.user_id, EXISTS (SELECT 1 FROM members o WHERE o.user_id = m.user_id AND o.org_id <> m.org_id) AS elsewhere
			FROM members m WHERE m.org_id = ?`, orgID).Scan(ctx, &members); err != nil {
			return fmt.Errorf("list members of %s: %w", orgID, err)
		}
		var erased []string
		for _, m := range members {
			if m.Elsewhere {
				res.Kept++
			} else {
				erased = append(erased, m.UserID)
			}
		}
		res.Erased = len(erased)
		// Mail to the people erased and to the organisation's invitees.
		if _, err := tx.NewRaw(`DELETE FROM outbox WHERE recipient IN (
				SELECT email FROM users WHERE id IN (?) UNION
				SELECT email FROM invitations WHERE org_id = ? AND email NOT IN (SELECT u.email FROM users u JOIN members m ON m.user_id = u.id AND m.org_id <> ?))`,
			bun.In(append(erased, "")), orgID, orgID).Exec(ctx); err != nil {
			return fmt.Errorf("delete mail of %s: %w", orgID, err)
		}
		for _, q := range []struct{ what, sql string }{
			{"invitations", `DELETE FROM invitations WHERE org_id = ?`},
			{"service-account tokens", `DELETE FROM service_account_tokens WHERE service_account_id IN (SELECT id FROM service_accounts WHERE org_id = ?)`},
			{"service accounts", `DELETE FROM service_accounts WHERE org_id = ?`},
			{"memberships", `DELETE FROM members WHERE org_id = ?`},
			// Their endpoints and credentials are the customer's; their
			// workflows end when they find them gone.
			{"audit streams", `DELETE FROM audit_streams WHERE org_id = ?`},
		} {
			if _, err := tx.NewRaw(q.sql, orgID).Exec(ctx); err != nil {
				return fmt.Errorf("delete %s of %s: %w", q.what, orgID, err)
			}
		}
		for _, id := range erased {
			if err := eraseUser(ctx, tx, id, p.email(id)); err != nil {
				return err
			}
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		slug := "deleted-" + strings.ToLower(strings.TrimPrefix(o.ID, domain.PrefixOrganization))
		if _, err := tx.NewUpdate().Model((*Organization)(nil)).
			Set("state = 'deleted', deletion_due_at = NULL, deleted_at = ?, updated_at = ?, slug = ?, require_mfa = false", now, now, slug).
			Where("id = ?", orgID).Exec(ctx); err != nil {
			return fmt.Errorf("mark organisation %s deleted: %w", orgID, err)
		}
		if _, err := tx.NewUpdate().Model((*OrgOperation)(nil)).Set("status = 'succeeded', ended_at = ?", now).
			Where("id = ? AND ended_at IS NULL", operationID).Exec(ctx); err != nil {
			return fmt.Errorf("end operation %s: %w", operationID, err)
		}
		// The pseudonyms changed the events' content: their chain is
		// computed again, last, so the head is the last lock taken.
		if err := rechain(ctx, tx, orgID); err != nil {
			return err
		}
		return orgEvent(ctx, tx, o, TenantRequest{Actor: domain.Actor{OnBehalfOf: &in.For}}, "organization.deleted", in.WorkflowID,
			map[string]any{"operation_id": operationID, "accounts_erased": res.Erased, "members_kept_elsewhere": res.Kept, "events_pseudonymised": n}, in.EventKey)
	})
	return res, err
}

// eraseUser removes a person's account data: what they sign in with and
// every session; the row stays with a pseudonymous address and no
// password (no sign-in can match it).
func eraseUser(ctx context.Context, tx bun.Tx, userID, email string) error {
	for _, table := range []string{"sessions", "user_totp", "recovery_codes", "webauthn_credentials", "auth_challenges", "password_resets"} {
		if _, err := tx.NewRaw("DELETE FROM "+table+" WHERE user_id = ?", userID).Exec(ctx); err != nil {
			return fmt.Errorf("erase %s of %s: %w", table, userID, err)
		}
	}
	if _, err := tx.NewUpdate().Model((*User)(nil)).Set("email = ?, name = '', password_hash = '', updated_at = now()", email).
		Where("id = ?", userID).Exec(ctx); err != nil {
		return fmt.Errorf("erase user %s: %w", userID, err)
	}
	return nil
}

// pseudonyms maps the emails and names of an organisation's people to
// their pseudonyms.
type pseudonyms struct {
	key     []byte
	byEmail map[string]string
	byName  map[string]string
}

func (p *pseudonyms) tag(of string) string {
	m := hmac.New(sha256.New, p.key)
	m.Write([]byte(of))
	return hex.EncodeToString(m.Sum(nil))[:16]
}

// email and name are the pseudonyms of the person with the id (or, for an
// invitee with no account, of the email).
func (p *pseudonyms) email(id string) string { return "person-" + p.tag(id) + "@erased.invalid" }
func (p *pseudonyms) name(id string) string  { return "Person " + p.tag(id)[:8] }

// learn collects the people the organisation's trail may name: its
// members, anyone who acted in it or was acted on, and its invitees.
func (p *pseudonyms) learn(ctx context.Context, tx bun.Tx, orgID string) error {
	var people []struct {
		ID    string `bun:"id"`
		Email string `bun:"email"`
		Name  string `bun:"name"`
	}
	err := tx.NewRaw(`
		SELECT u.id, u.email, u.name FROM users u WHERE u.id IN (
			SELECT user_id FROM members WHERE org_id = ?
			UNION SELECT invited_by FROM invitations WHERE org_id = ?
			UNION SELECT target_id FROM audit_events WHERE org_id = ? AND target_id LIKE 'usr\_%'
			UNION SELECT m.user_id FROM audit_events e JOIN members m ON m.id = e.actor_id OR m.id = e.target_id WHERE e.org_id = ?
			UNION SELECT u2.id FROM audit_events e JOIN users u2 ON u2.email = e.actor_email WHERE e.org_id = ? AND e.actor_email <> '')`,
		orgID, orgID, orgID, orgID, orgID).Scan(ctx, &people)
	if err != nil {
		return fmt.Errorf("list the people of %s: %w", orgID, err)
	}
	for _, u := range people {
		p.byEmail[u.Email] = p.email(u.ID)
		if u.Name != "" {
			p.byName[u.Name] = p.name(u.ID)
		}
	}
	var invitees []string
	if err := tx.NewRaw(`SELECT DISTINCT email FROM invitations WHERE org_id = ?`, orgID).Scan(ctx, &invitees); err != nil {
		return fmt.Errorf("list invitees of %s: %w", orgID, err)
	}
	for _, e := range invitees {
		if _, ok := p.byEmail[e]; !ok {
			p.byEmail[e] = p.email(e)
		}
	}
	return nil
}

// anEmail is the pseudonym of a text that is an email (a known person's,
// or any other: its own), and ok false for any other text.
func (p *pseudonyms) anEmail(s string) (string, bool) {
	if v, ok := p.byEmail[s]; ok {
		return v, true
	}
	if !looksLikeEmail(s) {
		return s, false
	}
	v := p.email(strings.ToLower(s))
	p.byEmail[s] = v
	return v, true
}

// aName is the pseudonym of a known person's name.
func (p *pseudonyms) aName(s string) (string, bool) {
	v, ok := p.byName[s]
	return v, ok
}

func looksLikeEmail(s string) bool {
	at := strings.LastIndexByte(s, '@')
	return at > 0 && at < len(s)-1 && !strings.ContainsAny(s, " \t\n") && !strings.HasSuffix(s, "@erased.invalid")
}

// personKeys are the keys of a JSON object that name a person: an object
// with one of them is a person's, and its "name" their name.
var personKeys = []string{"email", "user_id", "member_id"}

// json rewrites a JSON document: every string that is an email, and the
// "name" of an object that is a person's (it has an email, a user id or a
// member id) when it is a known person's name. Other names (a tenant's, a
// service account's, a role) stay as they are.
func (p *pseudonyms) json(raw json.RawMessage) (json.RawMessage, bool, error) {
	if len(raw) == 0 {
		return raw, false, nil
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return nil, false, err
	}
	changed := false
	var walk func(any) any
	walk = func(v any) any {
		switch t := v.(type) {
		case string:
			if r, ok := p.anEmail(t); ok && r != t {
				changed = true
				return r
			}
		case []any:
			for i := range t {
				t[i] = walk(t[i])
			}
		case map[string]any:
			person := slices.ContainsFunc(personKeys, func(k string) bool { _, ok := t[k]; return ok })
			for k, e := range t {
				if n, isText := e.(string); isText && k == "name" && person {
					if r, ok := p.aName(n); ok {
						t[k], changed = r, true
						continue
					}
				}
				t[k] = walk(e)
			}
		}
		return v
	}
	v = walk(v)
	if !changed {
		return raw, false, nil
	}
	b, err := json.Marshal(v)
	return b, true, err
}

// rewriteTrail replaces names and emails in the organisation's events, in
// the one update audit events accept (the migration's trigger allows it
// in a transaction that says so, and only of these columns).
func (p *pseudonyms) rewriteTrail(ctx context.Context, tx bun.Tx, orgID string) (int, error) {
	if _, err := tx.ExecContext(ctx, "SET LOCAL controlplane.pseudonymise = 'on'"); err != nil {
		return 0, fmt.Errorf("allow pseudonyms: %w", err)
	}
	var events []AuditEvent
	if err := tx.NewSelect().Model(&events).Column("id", "actor_type", "actor_email", "actor_name", "on_behalf_of", "data").
		Where("org_id = ?", orgID).Scan(ctx); err != nil {
		return 0, fmt.Errorf("read the trail of %s: %w", orgID, err)
	}
	n := 0
	for _, ev := range events {
		email, name := ev.ActorEmail, ev.ActorName
		if email != "" {
			email, _ = p.anEmail(email)
		}
		// A service account's name is not a person's.
		if r, ok := p.aName(name); ok && ev.ActorType == "member" {
			name = r
		}
		behalf, c1, err := p.json(ev.OnBehalfOf)
		if err != nil {
			return n, fmt.Errorf("event %s: on_behalf_of: %w", ev.ID, err)
		}
		data, c2, err := p.json(ev.Data)
		if err != nil {
			return n, fmt.Errorf("event %s: data: %w", ev.ID, err)
		}
		if email == ev.ActorEmail && name == ev.ActorName && !c1 && !c2 {
			continue
		}
		ev.ActorEmail, ev.ActorName, ev.OnBehalfOf, ev.Data = email, name, behalf, data
		if _, err := tx.NewUpdate().Model(&ev).Column("actor_email", "actor_name", "on_behalf_of", "data").WherePK().Exec(ctx); err != nil {
			return n, fmt.Errorf("pseudonymise event %s: %w", ev.ID, err)
		}
		n++
	}
	return n, nil
}
