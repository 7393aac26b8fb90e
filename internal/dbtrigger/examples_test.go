package dbtrigger_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/aerodb/aerofn/internal/testenv"
)

// TestExampleNewUserGetsProfile is the seed's Example 2 end to end: a new
// users row creates a profiles row, through the Go-SDK function
// examples/on-user-created on a database trigger.
func TestExampleNewUserGetsProfile(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	sqlExec(t, e, `CREATE TABLE users (id uuid PRIMARY KEY DEFAULT gen_random_uuid(), email text);
		CREATE TABLE profiles (user_id uuid PRIMARY KEY REFERENCES users (id), display_name text);
		GRANT INSERT ON profiles TO service_role`)
	deployOn(t, e, "on-user-created", testenv.Example(t, "on-user-created"), map[string]any{
		"run_as": "service_role", "triggers": []any{dbTrigger("public.users", "INSERT")}})
	sqlExec(t, e, `INSERT INTO users (email) VALUES ('ada@example.com'), ('grace@example.org')`)
	eventually(t, 10*time.Second, "profiles for both users", func() (bool, string) {
		n := queryInt(t, e, `SELECT count(*) FROM profiles p JOIN users u ON u.id = p.user_id
			WHERE p.display_name = split_part(u.email, '@', 1)`)
		return n == 2, fmt.Sprintf("%d profiles", n)
	})
}

// TestUseCaseOrderTakesStock is the seed's use case 2 end to end: a new
// orders row takes its quantity from products.stock, through the Go-SDK
// function examples/on-order-created.
func TestUseCaseOrderTakesStock(t *testing.T) {
	t.Parallel()
	e := testenv.Start(t)
	sqlExec(t, e, `CREATE TABLE products (id bigint PRIMARY KEY, stock int NOT NULL);
		CREATE TABLE orders (id bigserial PRIMARY KEY, product_id bigint REFERENCES products (id), quantity int NOT NULL);
		INSERT INTO products VALUES (1, 100), (2, 50);
		GRANT SELECT, UPDATE ON products TO service_role`)
	deployOn(t, e, "on-order-created", testenv.Example(t, "on-order-created"), map[string]any{
		"run_as": "service_role", "triggers": []any{dbTrigger("public.orders", "INSERT")}})
	sqlExec(t, e, `INSERT INTO orders (product_id, quantity) VALUES (1, 3), (1, 4), (2, 10)`)
	eventually(t, 10*time.Second, "stock taken", func() (bool, string) {
		a := queryInt(t, e, `SELECT stock FROM products WHERE id = 1`)
		b := queryInt(t, e, `SELECT stock FROM products WHERE id = 2`)
		return a == 93 && b == 40, fmt.Sprintf("stock %d, %d", a, b)
	})
	eventually(t, 5*time.Second, "three recorded successes", func() (bool, string) {
		total, distinct := successes(t, e, "on-order-created")
		return total == 3 && distinct == 3, fmt.Sprintf("%d successes for %d events", total, distinct)
	})
}
