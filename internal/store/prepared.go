package store

import (
	"context"
	"database/sql"
	"fmt"
	"sync"

	"github.com/uptrace/bun"
)

// prepared is a statement the store runs on nearly every request, written
// with $1, $2… for its values: a server-side prepared statement on each
// connection it runs on, so that Postgres parses it once per connection
// and, after a few calls, plans it once (a generic plan) instead of on
// every call. bun sends its queries as text with their values written in,
// which Postgres parses and plans each time: for a lookup that joins four
// tables (a session's), planning is most of the cost (0.43 ms a call
// against 0.07 ms prepared, one client on an idle server).
//
// Postgres drops a backend's cached plans when a schema is created, renamed
// or dropped in its database (a tenant's data-plane schema made without a
// spare, or dropped, in the control plane's own database; a spare is
// claimed without one): the next call plans again, as an unprepared one
// would.
type prepared struct {
	query string
	mu    sync.Mutex
	// stmts holds the statement for each database it ran on; database/sql
	// prepares it on each of the pool's connections as it is used there.
	stmts map[*sql.DB]*sql.Stmt
}

func prepare(query string) *prepared {
	return &prepared{query: query, stmts: map[*sql.DB]*sql.Stmt{}}
}

func (p *prepared) stmt(ctx context.Context, db *sql.DB) (*sql.Stmt, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if s, ok := p.stmts[db]; ok {
		return s, nil
	}
	s, err := db.PrepareContext(ctx, p.query)
	if err != nil {
		return nil, fmt.Errorf("prepare: %w", err)
	}
	p.stmts[db] = s
	return s, nil
}

// runner runs a statement with its values: a prepared one (*sql.Stmt)
// or its text on a held connection (asText).
type runner interface {
	QueryContext(ctx context.Context, args ...any) (*sql.Rows, error)
	ExecContext(ctx context.Context, args ...any) (sql.Result, error)
}

// on is the statement for db: the pool's, a transaction's (on the
// transaction's connection) or a held connection's (sent as text, not
// prepared).
func (p *prepared) on(ctx context.Context, db bun.IDB) (runner, error) {
	switch d := db.(type) {
	case *bun.DB:
		return p.stmt(ctx, d.DB)
	case bun.Tx:
		return p.inTx(ctx, d)
	case *bun.Tx:
		return p.inTx(ctx, *d)
	case bun.Conn:
		return asText{d.Conn, p.query}, nil
	}
	return nil, fmt.Errorf("a prepared statement cannot run on %T", db)
}

func (p *prepared) inTx(ctx context.Context, tx bun.Tx) (runner, error) {
	s, err := p.stmt(ctx, tx.NewRaw("").DB().DB)
	if err != nil {
		return nil, err
	}
	// The transaction's copy is closed with the transaction; the
	// connection's prepared statement stays for the next one.
	return tx.Tx.StmtContext(ctx, s), nil
}

// asText runs a statement's text on a held connection, the driver
// writing its values in.
type asText struct {
	conn  *sql.Conn
	query string
}

func (t asText) QueryContext(ctx context.Context, args ...any) (*sql.Rows, error) {
	return t.conn.QueryContext(ctx, t.query, args...)
}

func (t asText) ExecContext(ctx context.Context, args ...any) (sql.Result, error) {
	return t.conn.ExecContext(ctx, t.query, args...)
}

// scan runs the statement and scans its first row into dest;
// sql.ErrNoRows when there is none.
func (p *prepared) scan(ctx context.Context, db bun.IDB, args []any, dest ...any) error {
	r, err := p.on(ctx, db)
	if err != nil {
		return err
	}
	rows, err := r.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	if !rows.Next() {
		if err := rows.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := rows.Scan(dest...); err != nil {
		return err
	}
	return rows.Close()
}

// exec runs the statement and returns the number of rows it changed.
func (p *prepared) exec(ctx context.Context, db bun.IDB, args ...any) (int64, error) {
	r, err := p.on(ctx, db)
	if err != nil {
		return 0, err
	}
	res, err := r.ExecContext(ctx, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
