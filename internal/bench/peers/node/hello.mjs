// The benchmark's hello handler on plain Node.js (node:http). Usage:
// node hello.mjs PORT
import http from "node:http";

const port = Number(process.argv[2]);
http
  .createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      let name;
      try {
        ({ name } = JSON.parse(Buffer.concat(chunks).toString()));
      } catch {
        res.writeHead(400).end();
        return;
      }
      const body = JSON.stringify({ message: `Hello, ${name || "World"}!` });
      res.writeHead(200, { "Content-Type": "application/json" }).end(body);
    });
  })
  .listen(port, "127.0.0.1");
