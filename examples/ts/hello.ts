// The seed's Example 1, as written (TypeScript): POST {"name": "World"} →
// {"message": "Hello, World!"}. The handler gets the JSON body's fields
// (request.name), with the event's (request.method, request.headers...)
// behind them.
export async function handler(request: AerofnEvent & { name?: string }) {
  return {
    statusCode: 200,
    body: JSON.stringify({ message: `Hello, ${request.name}!` }),
  };
}
