// The benchmark's hello handler as a Cloudflare Worker.
export default {
  async fetch(request) {
    const { name } = await request.json();
    return Response.json({ message: `Hello, ${name || "World"}!` });
  },
};
