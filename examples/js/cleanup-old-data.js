// Schedule: "0 3 * * *" (daily at 3 AM)
export async function cleanupOldData() {
  const result = await db.query(
    "DELETE FROM logs WHERE created_at < NOW() - INTERVAL '30 days'"
  );
  console.log(`Deleted ${result.rowCount} old log entries`);
}
