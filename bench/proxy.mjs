// A counting proxy in front of the S3 server, run as its own process so its
// work never shows in the benchmark's event-loop figures. Both plugins (and
// s3db.js itself) are pointed at it, so every request is counted the same way.
//
//   node bench/proxy.mjs <upstream-url>     prints "PROXY_READY <port>"
//   GET  /__counts    -> { PutObject, GetObject, HeadObject, DeleteObject, DeleteObjects, ListObjectsV2, other, total }
//   POST /__reset     -> zeroes the counters
import http from 'node:http'

const upstream = new URL(process.argv[2])
const zero = () => ({ PutObject: 0, GetObject: 0, HeadObject: 0, DeleteObject: 0, DeleteObjects: 0, ListObjectsV2: 0, other: 0 })
let counts = zero()

function kind(req) {
  const url = new URL(req.url, 'http://x')
  const path = url.pathname.split('/').filter(Boolean)
  const objectPath = path.length >= 2
  if (req.method === 'GET' && url.searchParams.get('list-type') === '2') return 'ListObjectsV2'
  if (req.method === 'POST' && url.searchParams.has('delete')) return 'DeleteObjects'
  if (objectPath && req.method === 'PUT') return 'PutObject'
  if (objectPath && req.method === 'GET') return 'GetObject'
  if (objectPath && req.method === 'HEAD') return 'HeadObject'
  if (objectPath && req.method === 'DELETE') return 'DeleteObject'
  return 'other'
}

const server = http.createServer((req, res) => {
  if (req.url === '/__counts') {
    const total = Object.values(counts).reduce((a, b) => a + b, 0)
    res.writeHead(200, { 'content-type': 'application/json' })
    return res.end(JSON.stringify({ ...counts, total }))
  }
  if (req.url === '/__reset') {
    counts = zero()
    res.writeHead(204)
    return res.end()
  }
  counts[kind(req)]++
  const forward = http.request(
    { host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers, agent: false },
    (up) => {
      res.writeHead(up.statusCode, up.headers)
      up.pipe(res)
    },
  )
  forward.on('error', () => {
    res.destroy()
  })
  req.pipe(forward)
})
server.keepAliveTimeout = 5000
server.listen(0, '127.0.0.1', () => console.log(`PROXY_READY ${server.address().port}`))
process.stdin.on('end', () => process.exit(0))
process.stdin.resume()
