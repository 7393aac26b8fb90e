// Trigger: INSERT on orders table
export async function onOrderCreated(order) {
  // Update inventory
  await db.query("UPDATE products SET stock = stock - $1 WHERE id = $2",
    [order.quantity, order.product_id]);
  // Notify warehouse
  await http.post("https://warehouse.example.com/ship", order);
}
