// Command sql-proxy hands the HTTP body to db_query as it is and returns the
// host's reply unchanged, errors included:
//
//	POST /functions/v1/sql-proxy {"sql": "SELECT * FROM todos WHERE id = $1", "params": [1]}
//	→ 200 {"rows": [...], "rowCount": 1, "command": "SELECT"}
//	→ 200 {"error": {"code": "42501", "message": "permission denied for table todos"}}
//
// The attack suite uses it to send arbitrary SQL (and malformed requests)
// through the host's statement guard and row-level security, as a hostile
// function would. Never deploy it anywhere real: it lets any caller run any
// SQL their role allows.
package main

import aerofn "github.com/aerodb/aerofn/sdk/go"

func init() {
	aerofn.Handle(func(ev aerofn.Event) (any, error) {
		// BodyBytes also accepts the request posted as text, so the suite
		// need not set a content type.
		req, err := ev.BodyBytes()
		if err != nil {
			return nil, err
		}
		return aerofn.QueryRaw(req), nil
	})
}

func main() {}
