package cluster

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Querier runs a query: a pool, a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// LiveNode is a node whose session holds its liveness lock.
type LiveNode struct {
	// Name is the node's name as its session shows it: PostgreSQL keeps
	// 63 bytes of application_name and replaces what is not printable
	// ASCII, so a long or unusual name is not Node.Name() exactly.
	Name string
	// Keys are its liveness keys (Node.Key()), one per session of the node
	// that holds one.
	Keys []int32
}

// LiveNodes returns the nodes of the current database whose session holds
// a liveness lock (NodeSpace, key) now, by name. A node that was killed
// leaves the list as soon as PostgreSQL sees its session end; a frozen one
// stays until its session is ended (locks.go, failure modes).
func LiveNodes(ctx context.Context, q Querier) ([]LiveNode, error) {
	rows, err := q.Query(ctx, `SELECT substr(a.application_name, length($3) + 1), array_agg(l.objid::int8::int4 ORDER BY l.objid)
		FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
		WHERE l.locktype = 'advisory' AND l.granted AND l.classid::int8 = $1 AND l.objsubid = 2 AND l.objid::int8 <> $2
			AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
			AND starts_with(a.application_name, $3)
		GROUP BY a.application_name ORDER BY 1`, int64(uint32(NodeSpace)), int64(TickerObject), ApplicationNamePrefix)
	if err != nil {
		return nil, fmt.Errorf("listing live nodes: %w", err)
	}
	nodes, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (LiveNode, error) {
		var n LiveNode
		err := row.Scan(&n.Name, &n.Keys)
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("listing live nodes: %w", err)
	}
	return nodes, nil
}
