package store

import (
	"context"

	"github.com/dataguardian/dataguardian/engine/internal/storedb"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect"
)

// Tx is a transaction on the metadata database, given by Store.InTx. The
// store's functions that take a Querier run inside it; the queue enqueues
// in it (queue.TxEnqueuer), so runs and their tasks commit together.
type Tx struct {
	tx bun.Tx
	pg bool
}

// Querier is where a query runs: the *Store (its writer connection) or a
// *Tx. Only this package implements it.
type Querier interface {
	idb() bun.IDB
	postgres() bool
}

func (s *Store) idb() bun.IDB   { return s.db }
func (s *Store) postgres() bool { return s.db.Dialect().Name() == dialect.PG }
func (t *Tx) idb() bun.IDB      { return t.tx }
func (t *Tx) postgres() bool    { return t.pg }

// DB returns the transaction's bun handle, for the packages under engine
// that keep their own tables in the store (see Store.DB).
func (t *Tx) DB(storedb.Key) bun.IDB { return t.tx }

// InTx runs fn in one transaction: committed when fn returns nil, rolled
// back otherwise. On SQLite the transaction holds the database's write
// lock; every query of fn must go through tx, or it waits for itself.
func (s *Store) InTx(ctx context.Context, fn func(ctx context.Context, tx *Tx) error) error {
	pg := s.postgres()
	return s.db.RunInTx(ctx, nil, func(ctx context.Context, tx bun.Tx) error {
		return fn(ctx, &Tx{tx: tx, pg: pg})
	})
}

// PostgreSQL reports whether the store is on PostgreSQL (row locks with
// SKIP LOCKED; several writers at once) rather than SQLite (one writer).
func (s *Store) PostgreSQL() bool { return s.postgres() }
