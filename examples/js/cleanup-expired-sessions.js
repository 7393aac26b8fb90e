// Schedule: "0 2 * * *" (daily at 2 AM)
export async function cleanupExpiredSessions() {
  await db.query("DELETE FROM sessions WHERE expires_at < NOW()");
  console.log("Cleaned up expired sessions");
}
