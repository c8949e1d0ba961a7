package dataplane

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync/atomic"
	"time"

	"github.com/uptrace/bun"

	"github.com/intelliauth/controlplane/internal/seal"
)

// Postgres is the default data plane: each tenant is a Postgres
// schema (tenant_<id>) with baseline tables, an Ed25519 signing key whose
// public half is published as a JWKS, and a routing record for its
// hostname, all in the database it is given.
type Postgres struct {
	DB *bun.DB
	// Keys seals tenants' private signing keys at rest; without it no key
	// is created.
	Keys *seal.Ring

	// lastSchema is when this process last ran CreateSchema (Unix ns):
	// FillSpares gives way to creations.
	lastSchema atomic.Int64
}

var tenantIDPattern = regexp.MustCompile(`^tnt_[0-9A-Z]{26}$`)

func schemaName(t Ref) (string, error) {
	if !tenantIDPattern.MatchString(t.TenantID) {
		return "", fmt.Errorf("invalid tenant id %q", t.TenantID)
	}
	return "tenant_" + strings.ToLower(strings.TrimPrefix(t.TenantID, "tnt_")), nil
}

// Init creates the data plane's own tables (keys, routes) when missing.
// Workers starting together take turns (IF NOT EXISTS alone races in
// Postgres's catalog).
func (d *Postgres) Init(ctx context.Context) error {
	_, err := d.DB.ExecContext(ctx, `
		SELECT pg_advisory_xact_lock(7411100002);
		CREATE SCHEMA IF NOT EXISTS dataplane;
		CREATE TABLE IF NOT EXISTS dataplane.signing_keys (
			tenant_id   text PRIMARY KEY,
			kid         text NOT NULL,
			private_key bytea NOT NULL,
			jwks        jsonb NOT NULL,
			created_at  timestamptz NOT NULL DEFAULT now()
		);
		CREATE TABLE IF NOT EXISTS dataplane.spare_schemas (
			name       text PRIMARY KEY,
			baseline   integer NOT NULL,
			created_at timestamptz NOT NULL DEFAULT now()
		);
		CREATE TABLE IF NOT EXISTS dataplane.tenant_schemas (
			tenant_id  text PRIMARY KEY,
			schema     text NOT NULL UNIQUE,
			created_at timestamptz NOT NULL DEFAULT now()
		);
		CREATE TABLE IF NOT EXISTS dataplane.routes (
			hostname   text PRIMARY KEY,
			tenant_id  text NOT NULL UNIQUE,
			schema     text NOT NULL,
			enabled    boolean NOT NULL DEFAULT true,
			created_at timestamptz NOT NULL DEFAULT now(),
			updated_at timestamptz NOT NULL DEFAULT now()
		);`)
	if err != nil {
		return fmt.Errorf("create data plane tables: %w", err)
	}
	return nil
}

// CreateSchema gives the tenant a schema with its baseline tables: a
// spare (FillSpares) when the data plane holds one, claimed by a row of
// dataplane.tenant_schemas and keeping its name, else tenant_<id> created
// in one transaction. Claiming a spare changes no catalog: a rename would
// make every connection to the database plan its statements again. A
// retry finds the tenant's schema and completes it.
func (d *Postgres) CreateSchema(ctx context.Context, t Ref) error {
	s, err := schemaName(t)
	if err != nil {
		return err
	}
	d.lastSchema.Store(time.Now().UnixNano())
	return d.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		spared, err := claimSpare(ctx, tx, t.TenantID, s)
		if err != nil || spared {
			return err
		}
		if _, err := tx.ExecContext(ctx, baselineDDL(s)); err != nil {
			return fmt.Errorf("create schema %s: %w", s, err)
		}
		return nil
	})
}

// tenantSchema is the SQL of a tenant's schema's name, its arguments the
// tenant's id and tenant_<id>: the spare it claimed, else tenant_<id>.
const tenantSchema = `coalesce((SELECT schema FROM dataplane.tenant_schemas WHERE tenant_id = ?), ?)`

// SchemaOf names the tenant's schema (whether or not it exists): the spare
// it claimed, else tenant_<id>.
func (d *Postgres) SchemaOf(ctx context.Context, t Ref) (string, error) {
	s, err := schemaName(t)
	if err != nil {
		return "", err
	}
	var name string
	if err := d.DB.NewRaw("SELECT "+tenantSchema, t.TenantID, s).Scan(ctx, &name); err != nil {
		return "", fmt.Errorf("find schema of %s: %w", t.TenantID, err)
	}
	return name, nil
}

// DropSchema drops the tenant's schema and everything in it, and forgets
// the spare it claimed, in one transaction.
func (d *Postgres) DropSchema(ctx context.Context, t Ref) error {
	s, err := schemaName(t)
	if err != nil {
		return err
	}
	return d.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var claimed []string
		if err := tx.NewRaw("DELETE FROM dataplane.tenant_schemas WHERE tenant_id = ? RETURNING schema", t.TenantID).Scan(ctx, &claimed); err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("forget schema of %s: %w", t.TenantID, err)
		}
		for _, name := range append(claimed, s) {
			if _, err := tx.NewRaw("DROP SCHEMA IF EXISTS ? CASCADE", bun.Ident(name)).Exec(ctx); err != nil {
				return fmt.Errorf("drop schema %s: %w", name, err)
			}
		}
		return nil
	})
}

// CreateKeys creates an Ed25519 key pair once; a retry keeps the first.
func (d *Postgres) CreateKeys(ctx context.Context, t Ref) error {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("generate signing key: %w", err)
	}
	sum := sha256.Sum256(pub)
	kid := base64.RawURLEncoding.EncodeToString(sum[:12])
	jwks, err := json.Marshal(map[string]any{"keys": []map[string]string{{
		"kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
		"x": base64.RawURLEncoding.EncodeToString(pub),
	}}})
	if err != nil {
		return err
	}
	if d.Keys == nil {
		return errors.New("no key ring: private keys are never stored in the clear (CP_KEY_ENCRYPTION_KEYS)")
	}
	sealed, err := d.Keys.Seal(priv.Seed(), []byte(t.TenantID))
	if err != nil {
		return fmt.Errorf("seal signing key of %s: %w", t.TenantID, err)
	}
	_, err = d.DB.ExecContext(ctx, `INSERT INTO dataplane.signing_keys (tenant_id, kid, private_key, jwks)
		VALUES (?, ?, ?, ?) ON CONFLICT (tenant_id) DO NOTHING`, t.TenantID, kid, sealed, string(jwks))
	if err != nil {
		return fmt.Errorf("store signing key of %s: %w", t.TenantID, err)
	}
	return nil
}

// SigningKey returns a tenant's private signing key, opened.
func (d *Postgres) SigningKey(ctx context.Context, tenantID string) (ed25519.PrivateKey, error) {
	var sealed []byte
	if err := d.DB.NewRaw("SELECT private_key FROM dataplane.signing_keys WHERE tenant_id = ?", tenantID).Scan(ctx, &sealed); err != nil {
		return nil, fmt.Errorf("load signing key of %s: %w", tenantID, err)
	}
	seed, err := d.Keys.Open(sealed, []byte(tenantID))
	if err != nil {
		return nil, fmt.Errorf("open signing key of %s: %w", tenantID, err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// Reseal seals again, under the ring's current key, every private key
// sealed under another key (or, from before keys were sealed, stored in the
// clear): rotation is adding a key at the front of the ring, restarting
// the workers, then removing the old key. It returns how many it resealed,
// and how many are sealed under a key the ring lacks (left as they are).
func (d *Postgres) Reseal(ctx context.Context) (resealed, unreadable int, err error) {
	var rows []struct {
		TenantID   string `bun:"tenant_id"`
		PrivateKey []byte `bun:"private_key"`
	}
	current := []byte("sealed:" + d.Keys.Current() + ":")
	if err := d.DB.NewRaw("SELECT tenant_id, private_key FROM dataplane.signing_keys WHERE substring(private_key from 1 for ?) <> ?",
		len(current), current).Scan(ctx, &rows); err != nil {
		return 0, 0, fmt.Errorf("find keys to reseal: %w", err)
	}
	for _, r := range rows {
		seed := r.PrivateKey
		if seal.KeyID(r.PrivateKey) != "" {
			if seed, err = d.Keys.Open(r.PrivateKey, []byte(r.TenantID)); errors.Is(err, seal.ErrUnknownKey) {
				unreadable++
				continue
			} else if err != nil {
				return resealed, unreadable, fmt.Errorf("open signing key of %s: %w", r.TenantID, err)
			}
		}
		sealed, err := d.Keys.Seal(seed, []byte(r.TenantID))
		if err != nil {
			return resealed, unreadable, err
		}
		if _, err := d.DB.ExecContext(ctx, "UPDATE dataplane.signing_keys SET private_key = ? WHERE tenant_id = ? AND private_key = ?",
			sealed, r.TenantID, r.PrivateKey); err != nil {
			return resealed, unreadable, fmt.Errorf("reseal signing key of %s: %w", r.TenantID, err)
		}
		resealed++
	}
	return resealed, unreadable, nil
}

// DeleteKeys removes the key pair and its JWKS.
func (d *Postgres) DeleteKeys(ctx context.Context, t Ref) error {
	if _, err := d.DB.ExecContext(ctx, "DELETE FROM dataplane.signing_keys WHERE tenant_id = ?", t.TenantID); err != nil {
		return fmt.Errorf("delete signing key of %s: %w", t.TenantID, err)
	}
	return nil
}

// CreateRoute routes the hostname to the tenant's schema, enabled.
func (d *Postgres) CreateRoute(ctx context.Context, t Ref) error {
	s, err := schemaName(t)
	if err != nil {
		return err
	}
	_, err = d.DB.ExecContext(ctx, `INSERT INTO dataplane.routes (hostname, tenant_id, schema)
		VALUES (?, ?, `+tenantSchema+`) ON CONFLICT (tenant_id) DO NOTHING`, t.Hostname, t.TenantID, t.TenantID, s)
	if err != nil {
		return fmt.Errorf("create route %s: %w", t.Hostname, err)
	}
	return nil
}

// DeleteRoute removes the tenant's route.
func (d *Postgres) DeleteRoute(ctx context.Context, t Ref) error {
	if _, err := d.DB.ExecContext(ctx, "DELETE FROM dataplane.routes WHERE tenant_id = ?", t.TenantID); err != nil {
		return fmt.Errorf("delete route of %s: %w", t.TenantID, err)
	}
	return nil
}

// SuspendRoute blocks traffic to the tenant and ends its users' sessions.
func (d *Postgres) SuspendRoute(ctx context.Context, t Ref) error {
	return d.setRoute(ctx, t, false)
}

// ResumeRoute lets traffic reach the tenant again.
func (d *Postgres) ResumeRoute(ctx context.Context, t Ref) error {
	return d.setRoute(ctx, t, true)
}

func (d *Postgres) setRoute(ctx context.Context, t Ref, enabled bool) error {
	return d.DB.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		var schema string
		err := tx.NewRaw("UPDATE dataplane.routes SET enabled = ?, updated_at = now() WHERE tenant_id = ? RETURNING schema", enabled, t.TenantID).Scan(ctx, &schema)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("tenant %s has no route", t.TenantID)
		}
		if err != nil {
			return fmt.Errorf("set route of %s: %w", t.TenantID, err)
		}
		if !enabled {
			// Access is revoked, not only blocked: sessions do not outlive
			// a suspension.
			if _, err := tx.NewRaw("DELETE FROM ?.sessions", bun.Ident(schema)).Exec(ctx); err != nil {
				return fmt.Errorf("revoke sessions of %s: %w", t.TenantID, err)
			}
		}
		return nil
	})
}

// Inspect reports which resources of the tenant exist.
func (d *Postgres) Inspect(ctx context.Context, t Ref) (Resources, error) {
	var r Resources
	s, err := schemaName(t)
	if err != nil {
		return r, err
	}
	if err := d.DB.NewRaw("SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = "+tenantSchema+")", t.TenantID, s).Scan(ctx, &r.Schema); err != nil {
		return r, fmt.Errorf("inspect schema: %w", err)
	}
	var jwks string
	err = d.DB.NewRaw("SELECT jwks::text FROM dataplane.signing_keys WHERE tenant_id = ?", t.TenantID).Scan(ctx, &jwks)
	switch {
	case err == nil:
		r.Keys, r.JWKS = true, json.RawMessage(jwks)
	case !errors.Is(err, sql.ErrNoRows):
		return r, fmt.Errorf("inspect keys: %w", err)
	}
	err = d.DB.NewRaw("SELECT enabled FROM dataplane.routes WHERE tenant_id = ?", t.TenantID).Scan(ctx, &r.RouteEnabled)
	switch {
	case err == nil:
		r.Route = true
	case !errors.Is(err, sql.ErrNoRows):
		return r, fmt.Errorf("inspect route: %w", err)
	}
	return r, nil
}

// All reports the resources of every tenant that has any, by tenant id:
// what an operator's drift check compares with the tenants the control
// plane knows.
func (d *Postgres) All(ctx context.Context) (map[string]Resources, error) {
	out := map[string]Resources{}
	var schemas []string
	if err := d.DB.NewRaw(`SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'tenant\_%'`).Scan(ctx, &schemas); err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	for _, s := range schemas {
		id := "tnt_" + strings.ToUpper(strings.TrimPrefix(s, "tenant_"))
		r := out[id]
		r.Schema = true
		out[id] = r
	}
	// The claimed spares, where the map is (a data plane whose workers
	// predate it has none, and no claimed spare).
	var mapped bool
	if err := d.DB.NewRaw("SELECT to_regclass('dataplane.tenant_schemas') IS NOT NULL").Scan(ctx, &mapped); err != nil {
		return nil, fmt.Errorf("find the map of claimed spare schemas: %w", err)
	}
	var claimed []string
	if mapped {
		if err := d.DB.NewRaw(`SELECT m.tenant_id FROM dataplane.tenant_schemas m JOIN pg_namespace n ON n.nspname = m.schema`).Scan(ctx, &claimed); err != nil {
			return nil, fmt.Errorf("list claimed spare schemas: %w", err)
		}
	}
	for _, id := range claimed {
		r := out[id]
		r.Schema = true
		out[id] = r
	}
	var keys []string
	if err := d.DB.NewRaw("SELECT tenant_id FROM dataplane.signing_keys").Scan(ctx, &keys); err != nil {
		return nil, fmt.Errorf("list keys: %w", err)
	}
	for _, id := range keys {
		r := out[id]
		r.Keys = true
		out[id] = r
	}
	var routes []struct {
		TenantID string `bun:"tenant_id"`
		Enabled  bool   `bun:"enabled"`
	}
	if err := d.DB.NewRaw("SELECT tenant_id, enabled FROM dataplane.routes").Scan(ctx, &routes); err != nil {
		return nil, fmt.Errorf("list routes: %w", err)
	}
	for _, rt := range routes {
		r := out[rt.TenantID]
		r.Route, r.RouteEnabled = true, rt.Enabled
		out[rt.TenantID] = r
	}
	return out, nil
}
