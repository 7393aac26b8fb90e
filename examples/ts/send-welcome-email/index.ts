// The seed's use case 1: POST /functions/v1/send-welcome-email
// {"user_id": 7}. A directory deploy: email.ts is a local import, bundled
// with this file. db.query resolves to {rows, rowCount, command}; the user
// is its first row (the result's prototype is that row too, so the seed's
// examples/js/send-welcome-email.js reads the result as the user).
import * as email from "./email";

export async function handler(event: AerofnEvent & { user_id: number }) {
  const { rows: [user] } = await db.query("SELECT * FROM users WHERE id = $1", [event.user_id]);
  if (!user) return { statusCode: 404, body: { error: "no such user" } };
  await email.send(user.email, "Welcome to AeroDB!");
  return { status: "sent" };
}
