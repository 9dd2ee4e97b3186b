package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/vigil-gateway/vigil/internal/mcpproxy/pins"
	"github.com/vigil-gateway/vigil/internal/vigil"
)

var _ pins.Store = (*pinStore)(nil)

// pinStore implements pins.Store.
type pinStore struct{ db *DB }

// MCPPins returns the store of pinned MCP tool definitions.
func (db *DB) MCPPins() pins.Store { return &pinStore{db} }

const pinCols = `server, tool, hash, definition, seen_at, approved_by, approved_at, pending_hash, pending_definition, pending_seen_at`

func scanPin(row pgx.Row) (pins.Pin, error) {
	var p pins.Pin
	var def string
	var pHash, pDef *string
	var pSeen *time.Time
	if err := row.Scan(&p.Server, &p.Tool, &p.Approved.Hash, &def, &p.Approved.SeenAt, &p.ApprovedBy, &p.ApprovedAt, &pHash, &pDef, &pSeen); err != nil {
		return p, err
	}
	p.Approved.Definition = []byte(def)
	p.Approved.SeenAt, p.ApprovedAt = utc(p.Approved.SeenAt), utc(p.ApprovedAt)
	if pHash != nil && pDef != nil && pSeen != nil {
		p.Pending = &pins.Version{Hash: *pHash, Definition: []byte(*pDef), SeenAt: utc(*pSeen)}
	}
	return p, nil
}

func (s *pinStore) ListPins(ctx context.Context, server string) ([]pins.Pin, error) {
	rows, err := s.db.pool.Query(ctx, `SELECT `+pinCols+` FROM mcp_tool_pins WHERE $1 = '' OR server = $1 ORDER BY server, tool`, server)
	if err != nil {
		return nil, fmt.Errorf("couldn't list tool pins: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (pins.Pin, error) { return scanPin(r) })
	if err != nil {
		return nil, fmt.Errorf("couldn't read tool pins: %w", err)
	}
	return out, nil
}

func (s *pinStore) Pin(ctx context.Context, server, tool string) (pins.Pin, error) {
	p, err := scanPin(s.db.pool.QueryRow(ctx, `SELECT `+pinCols+` FROM mcp_tool_pins WHERE server = $1 AND tool = $2`, server, tool))
	if errors.Is(err, pgx.ErrNoRows) {
		return p, vigil.NotFound("no pinned tool %q on MCP server %q", tool, server)
	}
	if err != nil {
		return p, fmt.Errorf("couldn't read the pin of %s/%s: %w", server, tool, err)
	}
	return p, nil
}

func (s *pinStore) CreatePin(ctx context.Context, p pins.Pin) error {
	_, err := s.db.pool.Exec(ctx, `INSERT INTO mcp_tool_pins (server, tool, hash, definition, seen_at, approved_by, approved_at) VALUES ($1,$2,$3,$4,$5,$6,$7)`,
		p.Server, p.Tool, p.Approved.Hash, string(p.Approved.Definition), p.Approved.SeenAt, p.ApprovedBy, p.ApprovedAt)
	if isUnique(err) {
		return vigil.Conflict("tool %q of MCP server %q is already pinned", p.Tool, p.Server)
	}
	if err != nil {
		return fmt.Errorf("couldn't pin %s/%s: %w", p.Server, p.Tool, err)
	}
	return nil
}

func (s *pinStore) SetPending(ctx context.Context, server, tool string, v pins.Version) (bool, error) {
	tag, err := s.db.pool.Exec(ctx, `UPDATE mcp_tool_pins SET pending_hash = $3, pending_definition = $4, pending_seen_at = $5
		WHERE server = $1 AND tool = $2 AND pending_hash IS DISTINCT FROM $3`,
		server, tool, v.Hash, string(v.Definition), v.SeenAt)
	if err != nil {
		return false, fmt.Errorf("couldn't record the change of %s/%s: %w", server, tool, err)
	}
	if tag.RowsAffected() > 0 {
		return true, nil
	}
	if _, err := s.Pin(ctx, server, tool); err != nil {
		return false, err
	}
	return false, nil
}

func (s *pinStore) Approve(ctx context.Context, server, tool, hash, by string, at time.Time) (pins.Pin, error) {
	p, err := scanPin(s.db.pool.QueryRow(ctx, `UPDATE mcp_tool_pins SET hash = pending_hash, definition = pending_definition, seen_at = pending_seen_at,
		approved_by = $4, approved_at = $5, pending_hash = NULL, pending_definition = NULL, pending_seen_at = NULL
		WHERE server = $1 AND tool = $2 AND pending_hash = $3 RETURNING `+pinCols, server, tool, hash, by, at))
	if errors.Is(err, pgx.ErrNoRows) {
		if _, err := s.Pin(ctx, server, tool); err != nil {
			return pins.Pin{}, err
		}
		return pins.Pin{}, vigil.Conflict("tool %q of MCP server %q has no pending version %s", tool, server, hash)
	}
	if err != nil {
		return pins.Pin{}, fmt.Errorf("couldn't approve %s/%s: %w", server, tool, err)
	}
	return p, nil
}
