'use strict'

// Which object store the Rust core uses for a database: S3 directly (same
// endpoint, bucket, prefix and credentials as db.client), or a bridge that
// drives db.client itself (memory://, file://, anything else).

function s3Spec(client) {
  const c = client && client.config
  const sdk = client && client.client
  if (!c || !sdk || typeof sdk.send !== 'function' || !c.bucket || !c.accessKeyId) return null
  return {
    kind: 's3',
    endpoint: typeof c.endpoint === 'string' && c.endpoint ? c.endpoint : undefined,
    region: c.region || 'us-east-1',
    bucket: c.bucket,
    accessKeyId: c.accessKeyId,
    secretAccessKey: c.secretAccessKey,
    sessionToken: c.sessionToken || undefined,
    forcePathStyle: Boolean(c.forcePathStyle),
    keyPrefix: c.keyPrefix || '',
  }
}

function storeSpecFor(client) {
  return s3Spec(client) || { kind: 'bridge' }
}

module.exports = { storeSpecFor }
