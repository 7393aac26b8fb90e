// The seed's Example 2. Trigger: INSERT on users. The argument is the new
// row (user.id, user.email), with the event's fields (user.table,
// user.operation...) behind it.
export async function onUserCreated(user: AerofnEvent & { id: unknown; email: string }) {
  // Automatically create user profile
  await db.query(
    "INSERT INTO profiles (user_id, display_name) VALUES ($1, $2)",
    [user.id, user.email.split('@')[0]]
  );
}
