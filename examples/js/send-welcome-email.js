// POST /functions/v1/send-welcome-email
export async function handler(event) {
  const user = await db.query("SELECT * FROM users WHERE id = $1", [event.user_id]);
  await email.send(user.email, "Welcome to AeroDB!");
  return { status: "sent" };
}
