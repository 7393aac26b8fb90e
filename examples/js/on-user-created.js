// Trigger: INSERT on users table
export async function onUserCreated(user) {
  // Automatically create user profile
  await db.query(
    "INSERT INTO profiles (user_id, display_name) VALUES ($1, $2)",
    [user.id, user.email.split('@')[0]]
  );
}
