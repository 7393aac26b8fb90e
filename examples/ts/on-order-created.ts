// The seed's use case 2. Trigger: INSERT on orders. The warehouse's URL is
// read from the function's environment (the seed writes it inline), so it
// can be pointed at a test server; its host must be in allowed_hosts.
const warehouse = () => env("WAREHOUSE_URL") ?? "https://warehouse.example.com";

export async function onOrderCreated(order: AerofnEvent & { quantity: number; product_id: number }) {
  // Update inventory
  await db.query("UPDATE products SET stock = stock - $1 WHERE id = $2",
    [order.quantity, order.product_id]);
  // Notify warehouse
  await http.post(`${warehouse()}/ship`, order);
}
