// Command on-order-created takes an order's quantity out of its product's
// stock (the seed's second use case). Deploy it with a database trigger on
// INSERT into orders.
//
// When the function's env whitelist has WAREHOUSE_URL (and its allow-list
// that host), the order is also POSTed there, as the seed's version notifies
// a warehouse.
//
// Delivery is at least once, and the stock update is not idempotent: a
// production version would record ev.EventID in the same statement (for
// example a CTE inserting into a processed_events table with a unique key)
// so a redelivered event cannot take the stock twice.
package main

import (
	"encoding/json"
	"errors"
	"fmt"

	aerofn "github.com/aerodb/aerofn/sdk/go"
)

func init() {
	aerofn.Handle(onOrderCreated)
}

type order struct {
	ID        json.RawMessage `json:"id"`
	ProductID json.RawMessage `json:"product_id"`
	Quantity  int64           `json:"quantity"`
}

func onOrderCreated(ev aerofn.Event) (any, error) {
	if ev.Trigger != aerofn.TriggerDatabase || ev.Operation != aerofn.Insert {
		aerofn.Logf(aerofn.LevelWarn, "ignoring %s event (%s): want INSERT on orders", ev.Trigger, ev.Operation)
		return nil, nil
	}
	var o order
	if err := ev.DecodeNew(&o); err != nil {
		return nil, err
	}
	if len(o.ProductID) == 0 || string(o.ProductID) == "null" {
		return nil, errors.New("new order has no product_id")
	}
	if o.Quantity <= 0 {
		return nil, fmt.Errorf("order %s has quantity %d; want a positive number", o.ID, o.Quantity)
	}

	res, err := aerofn.Query("UPDATE products SET stock = stock - $1 WHERE id = $2", o.Quantity, o.ProductID)
	if err != nil {
		return nil, fmt.Errorf("taking %d of product %s from stock: %w", o.Quantity, o.ProductID, err)
	}
	if res.RowCount == 0 {
		return nil, fmt.Errorf("taking %d of product %s from stock: no such product", o.Quantity, o.ProductID)
	}

	notified := notifyWarehouse(ev.New)
	return map[string]any{"product_id": o.ProductID, "taken": o.Quantity, "warehouse_notified": notified}, nil
}

// notifyWarehouse POSTs the order row to WAREHOUSE_URL when one is
// configured. A failure is logged, not returned: returning it would have the
// event retried, and the retry would take the stock a second time.
func notifyWarehouse(row json.RawMessage) bool {
	url, ok := aerofn.Env("WAREHOUSE_URL")
	if !ok || url == "" {
		return false
	}
	resp, err := aerofn.Fetch(aerofn.FetchRequest{
		URL:     url,
		Method:  "POST",
		Headers: map[string]string{"content-type": "application/json"},
		Body:    string(row),
	})
	if err != nil {
		aerofn.Logf(aerofn.LevelWarn, "notifying warehouse: %v", err)
		return false
	}
	if resp.Status/100 != 2 {
		aerofn.Logf(aerofn.LevelWarn, "notifying warehouse: status %d", resp.Status)
		return false
	}
	return true
}

func main() {}
