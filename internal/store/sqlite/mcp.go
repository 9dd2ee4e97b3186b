package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/vigil-gateway/vigil/internal/mcpproxy/pins"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var _ pins.Store = (*pinStore)(nil)

// pinStore implements pins.Store.
type pinStore struct{ db *DB }

// MCPPins returns the store of pinned MCP tool definitions.
func (db *DB) MCPPins() pins.Store { return &pinStore{db} }

const pinCols = `server, tool, hash, definition, seen_at, approved_by, approved_at, pending_hash, pending_definition, pending_seen_at`

func scanPin(row interface{ Scan(...any) error }) (pins.Pin, error) {
	var p pins.Pin
	var def string
	var seen, approved int64
	var pHash, pDef sql.NullString
	var pSeen sql.NullInt64
	if err := row.Scan(&p.Server, &p.Tool, &p.Approved.Hash, &def, &seen, &p.ApprovedBy, &approved, &pHash, &pDef, &pSeen); err != nil {
		return p, err
	}
	p.Approved.Definition = []byte(def)
	p.Approved.SeenAt, p.ApprovedAt = fromMicros(seen), fromMicros(approved)
	if pHash.Valid {
		p.Pending = &pins.Version{Hash: pHash.String, Definition: []byte(pDef.String), SeenAt: fromMicros(pSeen.Int64)}
	}
	return p, nil
}

func (s *pinStore) ListPins(ctx context.Context, server string) ([]pins.Pin, error) {
	rows, err := s.db.reads.QueryContext(ctx, `SELECT `+pinCols+` FROM mcp_tool_pins WHERE ? = '' OR server = ? ORDER BY server, tool`, server, server)
	if err != nil {
		return nil, fmt.Errorf("couldn't list tool pins: %w", err)
	}
	defer rows.Close()
	out := []pins.Pin{}
	for rows.Next() {
		p, err := scanPin(rows)
		if err != nil {
			return nil, fmt.Errorf("couldn't read a tool pin: %w", err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func (s *pinStore) Pin(ctx context.Context, server, tool string) (pins.Pin, error) {
	p, err := scanPin(s.db.reads.QueryRowContext(ctx, `SELECT `+pinCols+` FROM mcp_tool_pins WHERE server = ? AND tool = ?`, server, tool))
	if errors.Is(err, sql.ErrNoRows) {
		return p, vigil.NotFound("no pinned tool %q on MCP server %q", tool, server)
	}
	if err != nil {
		return p, fmt.Errorf("couldn't read the pin of %s/%s: %w", server, tool, err)
	}
	return p, nil
}

func (s *pinStore) CreatePin(ctx context.Context, p pins.Pin) error {
	_, err := s.db.writes.ExecContext(ctx, `INSERT INTO mcp_tool_pins (server, tool, hash, definition, seen_at, approved_by, approved_at) VALUES (?,?,?,?,?,?,?)`,
		p.Server, p.Tool, p.Approved.Hash, string(p.Approved.Definition), micros(p.Approved.SeenAt), p.ApprovedBy, micros(p.ApprovedAt))
	if isUnique(err) {
		return vigil.Conflict("tool %q of MCP server %q is already pinned", p.Tool, p.Server)
	}
	if err != nil {
		return fmt.Errorf("couldn't pin %s/%s: %w", p.Server, p.Tool, err)
	}
	return nil
}

func (s *pinStore) SetPending(ctx context.Context, server, tool string, v pins.Version) (bool, error) {
	res, err := s.db.writes.ExecContext(ctx, `UPDATE mcp_tool_pins SET pending_hash = ?, pending_definition = ?, pending_seen_at = ?
		WHERE server = ? AND tool = ? AND pending_hash IS NOT ?`,
		v.Hash, string(v.Definition), micros(v.SeenAt), server, tool, v.Hash)
	if err != nil {
		return false, fmt.Errorf("couldn't record the change of %s/%s: %w", server, tool, err)
	}
	if n, _ := res.RowsAffected(); n > 0 {
		return true, nil
	}
	if _, err := s.Pin(ctx, server, tool); err != nil {
		return false, err
	}
	return false, nil
}

func (s *pinStore) Approve(ctx context.Context, server, tool, hash, by string, at time.Time) (pins.Pin, error) {
	var p pins.Pin
	err := s.db.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE mcp_tool_pins SET hash = pending_hash, definition = pending_definition, seen_at = pending_seen_at,
			approved_by = ?, approved_at = ?, pending_hash = NULL, pending_definition = NULL, pending_seen_at = NULL
			WHERE server = ? AND tool = ? AND pending_hash = ?`, by, micros(at), server, tool, hash)
		if err != nil {
			return err
		}
		p, err = scanPin(tx.QueryRowContext(ctx, `SELECT `+pinCols+` FROM mcp_tool_pins WHERE server = ? AND tool = ?`, server, tool))
		if errors.Is(err, sql.ErrNoRows) {
			return vigil.NotFound("no pinned tool %q on MCP server %q", tool, server)
		}
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return vigil.Conflict("tool %q of MCP server %q has no pending version %s", tool, server, hash)
		}
		return nil
	})
	var ve *vigil.Error
	if err != nil && !errors.As(err, &ve) {
		return pins.Pin{}, fmt.Errorf("couldn't approve %s/%s: %w", server, tool, err)
	}
	return p, err
}
