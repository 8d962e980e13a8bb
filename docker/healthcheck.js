// HEALTHCHECK of every app image: `node healthcheck.js <PORT_VARIABLE> <default port>`.
// Exit 0 when the app's /health/ready answers 2xx within 3 s, else 1. (The slim Node image has no
// curl; Node 20's fetch does the job.)
const [portVar, fallback] = process.argv.slice(2);
const port = process.env[portVar] || fallback;
fetch(`http://127.0.0.1:${port}/health/ready`, { signal: AbortSignal.timeout(3000) }).then(
  (res) => process.exit(res.ok ? 0 : 1),
  () => process.exit(1),
);
