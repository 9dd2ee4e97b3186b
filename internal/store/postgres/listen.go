package postgres

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Listen receives notifications on channel until ctx ends, calling fn with each
// payload, in order, from one goroutine. It holds a dedicated connection (not one of
// the pool's) and reconnects with backoff when it drops, reporting why to onError
// (which may be nil). After every (re)connection it calls fn with the empty payload:
// notifications sent while it was not listening are lost, so the caller should
// re-read whatever it waits on.
//
// Channels are scoped to the schema the DSN selects, so deployments (and tests)
// sharing one database but not one schema never hear each other. It returns when
// ctx ends; it never gives up on its own.
func (db *DB) Listen(ctx context.Context, channel string, fn func(payload string), onError func(error)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		err := db.listenOnce(ctx, channel, fn)
		if ctx.Err() != nil {
			return
		}
		if onError != nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

func (db *DB) listenOnce(ctx context.Context, channel string, fn func(string)) error {
	conn, err := pgx.Connect(ctx, db.dsn)
	if err != nil {
		return fmt.Errorf("couldn't connect to listen on %s: %w", channel, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var scoped string
	if err := conn.QueryRow(ctx, `SELECT $1 || ':' || current_schema()`, channel).Scan(&scoped); err != nil {
		return fmt.Errorf("couldn't name the channel %s: %w", channel, err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{scoped}.Sanitize()); err != nil {
		return fmt.Errorf("couldn't listen on %s: %w", channel, err)
	}
	fn("")
	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			return fmt.Errorf("lost the connection listening on %s: %w", channel, err)
		}
		fn(n.Payload)
	}
}

// Notify sends payload on channel (scoped to the current schema, as Listen does) to
// every listener, this process's included. Payloads are limited to 8000 bytes.
func (db *DB) Notify(ctx context.Context, channel, payload string) error {
	if _, err := db.pool.Exec(ctx, `SELECT pg_notify($1 || ':' || current_schema(), $2)`, channel, payload); err != nil {
		return fmt.Errorf("couldn't notify %s: %w", channel, err)
	}
	return nil
}
