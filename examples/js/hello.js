// functions/hello.js
export async function handler(request) {
  return {
    statusCode: 200,
    body: JSON.stringify({ message: `Hello, ${request.name}!` })
  };
}
