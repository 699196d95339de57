"""Node-to-node transport: mutual TLS over asyncio TCP, length-prefixed frames."""
