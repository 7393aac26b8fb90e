// The benchmark's hello handler on Deno.serve. Usage:
// deno run --allow-net=127.0.0.1 hello.ts PORT
const port = Number(Deno.args[0]);
Deno.serve({ hostname: "127.0.0.1", port, onListen() {} }, async (req) => {
  const { name } = await req.json();
  return Response.json({ message: `Hello, ${name || "World"}!` });
});
