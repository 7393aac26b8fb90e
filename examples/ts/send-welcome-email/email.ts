// A small mail client over http_fetch: MAIL_API_URL (in the function's env
// whitelist) receives {to, subject}; its host must be in allowed_hosts.
export async function send(to: string, subject: string): Promise<void> {
  const url = env("MAIL_API_URL");
  if (!url) throw new Error("MAIL_API_URL is not set");
  const res = await http.post(url, { to, subject });
  if (!res.ok) throw new Error(`mail API answered ${res.status}: ${res.body}`);
}
