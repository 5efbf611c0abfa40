"""The tamper-evident audit log: events as leaves of an RFC 6962 Merkle tree, signed C2SP
checkpoints, exports that verify offline."""
